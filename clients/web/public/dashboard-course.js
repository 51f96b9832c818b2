/**
 * One course on the dashboard: its header (rename, delete, the printable
 * sign-in sheet, the term's CSV), and tabs for the roster, the practicals,
 * the skills heat map, the full ladder and the settings. A student's term and a practical's
 * results open in the tab area, with a way back.
 *
 * The course's data is GET /api/courses/{id} (the roster) and
 * GET /api/courses/{id}/dashboard (XP, levels, badges, practicals), read
 * again after every change, so the page shows what the server holds.
 *
 * @module dashboard-course
 */

import { PracticalList, PracticalView } from './dashboard-practical.js';
import { RosterView } from './dashboard-roster.js';
import { SettingsView } from './dashboard-settings.js';
import { showSheet } from './dashboard-sheet.js';
import { SkillsView } from './dashboard-skills.js';
import { TermView } from './dashboard-term.js';
import { ConfirmStrip, button, el, formatDate, plural, row, statusLine, table } from './dashboard-ui.js';

const TABS = [
  ['students', 'Students'],
  ['practicals', 'Practicals'],
  ['skills', 'Skills'],
  ['ladder', 'Ladder'],
  ['settings', 'Settings'],
];

export class CourseView {
  /**
   * @param {import('./dashboard-api.js').Api} api
   * @param {string} id the course id
   * @param {HTMLElement} root `#course`
   * @param {{changed: () => void, deleted: () => void}} hooks what the course list does after a change
   */
  constructor(api, id, root, hooks) {
    this.api = api;
    this.id = id;
    this.root = root;
    this.hooks = hooks;
    /** @type {{course: any, board: any} | null} */
    this.data = null;
    /** the view in the tab area: has `root`, maybe `leave()` (a live grid stops polling) */
    this.current = null;
    this.tab = 'students';
    this.confirm = new ConfirmStrip();
    this.status = statusLine({ class: 'status course-status' });
    this.panel = el('div', { id: 'course-panel', role: 'tabpanel', tabindex: -1 });
    this.left = false;
  }

  async load() {
    this.root.replaceChildren(el('p', { class: 'hint' }, 'Loading the course…'));
    try {
      await this.fetch();
    } catch (error) {
      this.root.replaceChildren(el('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, error.message));
      return;
    }
    this.renderFrame();
    this.showTab(this.tab, true);
  }

  async fetch() {
    const [course, board] = await Promise.all([
      this.api.call(`/api/courses/${encodeURIComponent(this.id)}`),
      this.api.call(`/api/courses/${encodeURIComponent(this.id)}/dashboard`),
    ]);
    this.data = { course, board };
  }

  /** Read the course again and redraw the header and the open tab (after any change). */
  async refresh() {
    try {
      await this.fetch();
    } catch (error) {
      this.status.show(error.message, 'error');
      return;
    }
    if (this.left) return;
    this.renderHeader();
    this.hooks.changed();
    if (this.current?.tab) this.current.update?.(this.data);
  }

  renderFrame() {
    this.header = el('header', { class: 'course-head' });
    this.tabs = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Course' });
    for (const [key, label] of TABS) {
      const tab = el('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': 'course-panel', data: { tab: key } }, label);
      tab.addEventListener('click', () => this.showTab(key));
      this.tabs.append(tab);
    }
    this.tabs.addEventListener('keydown', (event) => {
      const order = TABS.map(([key]) => key);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = order[(order.indexOf(this.tab) + step + order.length) % order.length];
      this.showTab(next);
      this.tabs.querySelector(`[data-tab="${next}"]`).focus();
    });
    this.root.replaceChildren(this.header, this.confirm.root, this.status, this.tabs, this.panel);
    this.renderHeader();
  }

  renderHeader() {
    const { course } = this.data;
    const live = course.open_practicals.length;
    const title = el('h2', { id: 'course-title' }, course.name);
    const meta = el(
      'p',
      { class: 'meta' },
      `${plural(course.students, 'student')} · created ${formatDate(course.created)}`,
      live ? ' · ' : null,
      live ? el('strong', { class: 'live-dot' }, `${plural(live, 'practical')} open now`) : null,
    );
    const actions = el(
      'div',
      { class: 'actions' },
      button('Print sign-in sheet', () => this.askSheet(), { id: 'print-sheet' }),
      button('Download term CSV', () => this.downloadTerm(), { id: 'term-csv' }),
      button('Refresh', () => this.refresh(), { class: 'quiet' }),
      button('Rename', () => this.startRename(), { class: 'quiet', id: 'rename-course' }),
      button('Delete course', () => this.askDelete(), { class: 'danger', id: 'delete-course' }),
    );
    this.header.replaceChildren(el('div', { class: 'title' }, title, meta), actions);
  }

  startRename() {
    const input = el('input', { id: 'rename-input', required: true, maxlength: 120, autocomplete: 'off' });
    input.value = this.data.course.name;
    const form = el(
      'form',
      { class: 'rename' },
      el('label', { for: 'rename-input' }, 'Course name'),
      el('div', { class: 'inline' }, input, el('button', { type: 'submit' }, 'Save name'), button('Cancel', () => this.renderHeader(), { class: 'quiet' })),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        await this.api.call(`/api/courses/${encodeURIComponent(this.id)}`, { method: 'PATCH', json: { name: input.value } });
        this.status.clear();
        await this.refresh();
      } catch (error) {
        this.status.show(error.message, 'error');
      }
    });
    this.header.replaceChildren(form);
    input.focus();
    input.select();
  }

  askDelete() {
    this.confirm.ask(`Delete the course ${this.data.course.name}? This cannot be undone.`, 'Delete course', async () => {
      try {
        await this.api.call(`/api/courses/${encodeURIComponent(this.id)}`, { method: 'DELETE' });
        this.hooks.deleted();
      } catch (error) {
        this.status.show(error.message, 'error'); // 409: it still has students or practicals
      }
    });
  }

  askSheet() {
    const n = this.data.course.students;
    if (!n) {
      this.status.show('The roster is empty: add or import students first.', 'error');
      return;
    }
    this.confirm.ask(
      `Print a sign-in sheet for ${plural(n, 'student')}? Every student gets a NEW code, and the codes they have now stop working at once.`,
      'Make new codes',
      async () => {
        try {
          await showSheet(this.api, this.id);
          this.status.clear();
        } catch (error) {
          this.status.show(error.message, 'error');
        }
      },
    );
  }

  async downloadTerm() {
    try {
      await this.api.download(`/api/courses/${encodeURIComponent(this.id)}/dashboard.csv`, `amaliy-${this.id}-term.csv`);
    } catch (error) {
      this.status.show(error.message, 'error');
    }
  }

  /** Show a tab; its data is read again unless it was just read (`fresh`). */
  showTab(key, fresh = false) {
    this.tab = key;
    for (const tab of this.tabs.children) {
      tab.setAttribute('aria-selected', String(tab.dataset.tab === key));
      tab.tabIndex = tab.dataset.tab === key ? 0 : -1; // one stop in the Tab order; arrows move between tabs
    }
    this.panel.setAttribute('aria-labelledby', `tab-${key}`);
    const views = {
      students: () => new RosterView(this),
      practicals: () => new PracticalList(this),
      skills: () => new SkillsView(this),
      ladder: () => new LadderView(this),
      settings: () => new SettingsView(this),
    };
    this.show(views[key]());
    if (!fresh) this.refresh();
  }

  /** Put a view in the tab area; the one before is left (and stops what it runs). */
  show(view) {
    this.current?.leave?.();
    this.current = view;
    this.panel.replaceChildren(view.root);
  }

  openStudent(studentId) {
    this.show(new TermView(this, studentId));
    this.panel.focus();
  }

  openPractical(sessionId, live) {
    this.show(new PracticalView(this, sessionId, live));
    this.panel.focus();
  }

  /** A button back to the tab a sub-view came from. */
  back(tab, text) {
    return button(text, () => this.showTab(tab), { class: 'quiet back' });
  }

  leave() {
    this.left = true;
    this.current?.leave?.();
    this.current = null;
  }
}

/** The full ladder: the teacher always sees every student, ranked, with names. */
class LadderView {
  constructor(ctx) {
    this.tab = true;
    this.ctx = ctx;
    this.root = el('div', { class: 'view' }, el('p', { class: 'hint' }, 'Loading the ladder…'));
    this.load();
  }

  async load() {
    const mode = { relative: 'only their neighbours, without names', full: 'everyone, with names', off: 'no ladder' }[this.ctx.data.board.settings.ladder];
    try {
      const ladder = await this.ctx.api.call(`/api/courses/${encodeURIComponent(this.ctx.id)}/ladder`);
      const rows = (ladder.ladder ?? []).map((e) => row([e.rank, e.name, e.xp, e.level], { data: { student: e.student } }));
      this.root.replaceChildren(
        el('h3', {}, 'Ladder'),
        el('p', { class: 'hint' }, `You see the whole ladder. Students see ${mode} (change it in Settings).`),
        rows.length ? table('Course ladder', ['Rank', 'Name', 'XP', 'Level'], rows, { id: 'ladder', class: 'data' }) : el('p', {}, 'No students yet.'),
      );
    } catch (error) {
      this.root.replaceChildren(el('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, error.message));
    }
  }

  update() {
    this.load();
  }
}
