/**
 * A course's roster: one row per student with their XP, level, badges and
 * practicals; add one student, import a CSV file, give one student a new
 * code, or take a student off (after a confirm saying their XP and badges in
 * the course go).
 *
 * Codes are stored hashed on the server, so they are shown only in the answer
 * that made them: here, once, in the "new codes" box, until it is closed.
 * A CSV import is all or nothing; a refused one shows the server's report,
 * each bad row by its line.
 *
 * @module dashboard-roster
 */

import { ConfirmStrip, button, el, plural, row, statusLine, table } from './dashboard-ui.js';
import { groupSigninCode } from './format.js';

export class RosterView {
  /** @param {import('./dashboard-course.js').CourseView} ctx */
  constructor(ctx) {
    this.tab = true;
    this.ctx = ctx;
    this.confirm = new ConfirmStrip();
    this.status = statusLine();
    this.codes = el('section', { id: 'new-codes', class: 'codes', 'aria-labelledby': 'new-codes-title', tabindex: -1 });
    this.codes.hidden = true;
    this.report = el('div', { id: 'import-report', class: 'report', role: 'alert' });
    this.report.hidden = true;
    this.list = el('div', { class: 'roster-table' });
    this.heading = el('h3', {});
    // Folded once there is a roster, so the table comes first; open while it is empty.
    const empty = ctx.data.course.roster.length === 0;
    this.root = el(
      'div',
      { class: 'view roster' },
      this.heading,
      el('div', { class: 'tools' }, tool('Add a student', this.addForm(), empty), tool('Import a roster (CSV)', this.importForm(), empty)),
      this.report,
      this.codes,
      this.confirm.root,
      this.status,
      this.list,
    );
    this.update(ctx.data);
  }

  get base() {
    return `/api/courses/${encodeURIComponent(this.ctx.id)}`;
  }

  addForm() {
    const field = (name, label, props = {}) => {
      const input = el('input', { id: `add-${name}`, name, autocomplete: 'off', ...props });
      return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
    };
    const form = el(
      'form',
      { id: 'add-student', 'aria-label': 'Add a student' },
      field('name', 'Name', { required: true, maxlength: 40 }),
      field('email', 'Email (optional)', { type: 'email', maxlength: 254 }),
      field('student_number', 'Student number (optional)', { maxlength: 40 }),
      el('button', { type: 'submit' }, 'Add student'),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { name: form.elements.namedItem('name').value };
      for (const name of ['email', 'student_number']) {
        const value = form.elements.namedItem(name).value.trim();
        if (value) body[name] = value;
      }
      try {
        const student = await this.ctx.api.call(`${this.base}/students`, { method: 'POST', json: body });
        form.reset();
        this.status.clear();
        this.showCodes([student], `${student.name} is on the roster.`);
        await this.ctx.refresh();
      } catch (error) {
        this.status.show(error.message, 'error');
      }
    });
    return form;
  }

  importForm() {
    const file = el('input', { id: 'roster-file', type: 'file', accept: '.csv,text/csv,.txt', required: true });
    const form = el(
      'form',
      { id: 'import-roster', 'aria-label': 'Import a roster' },
      el('p', { class: 'hint' }, 'A CSV file with a header row: name (required), email, student_number. All rows or none are imported.'),
      el('div', { class: 'field' }, el('label', { for: file.id }, 'CSV file'), file),
      el('button', { type: 'submit' }, 'Import'),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const chosen = file.files[0];
      if (!chosen) return;
      this.report.hidden = true;
      try {
        const bytes = await chosen.arrayBuffer();
        const answer = await this.ctx.api.call(`${this.base}/roster`, { method: 'POST', body: bytes, type: 'text/csv' });
        form.reset();
        this.status.clear();
        this.showCodes(answer.students, `Imported ${plural(answer.imported, 'student')} from ${chosen.name}.`);
        await this.ctx.refresh();
      } catch (error) {
        this.showReport(error, chosen.name);
      }
    });
    return form;
  }

  /** A refused import: the server's sentence, then each bad row by its line. */
  showReport(error, filename) {
    const items = error.problems.map((p) => el('li', {}, el('strong', {}, `Line ${p.line}: `), p.problem));
    this.report.replaceChildren(
      el('h4', {}, `${filename} was not imported`),
      el('p', {}, error.message),
      items.length ? el('ul', {}, items) : null,
      button('Close', () => (this.report.hidden = true), { class: 'quiet' }),
    );
    this.report.hidden = false;
    this.codes.hidden = true;
  }

  /** New codes, shown this once: the server keeps only their hashes. */
  showCodes(students, intro) {
    this.report.hidden = true;
    const rows = students.map((s) => row([s.name, { node: el('code', { class: 'code' }, groupSigninCode(s.code)), class: 'code-cell' }], { data: { student: s.id } }));
    this.codes.replaceChildren(
      el('h4', { id: 'new-codes-title' }, intro),
      el('p', {}, el('strong', {}, 'Write these sign-in codes down or hand them out now: they are shown only this once.'), ' A lost code is replaced with "New code".'),
      table('New sign-in codes', ['Student', 'Sign-in code'], rows, { class: 'data' }),
      button('I have noted them: hide the codes', () => (this.codes.hidden = true), { class: 'quiet' }),
    );
    this.codes.hidden = false;
    this.codes.focus();
  }

  update(data) {
    const { course, board } = data;
    const stats = new Map(board.students.map((s) => [s.id, s]));
    this.heading.textContent = `Students (${course.roster.length})`;
    if (!course.roster.length) {
      this.list.replaceChildren(el('p', { class: 'hint' }, 'Nobody on the roster yet: add students one by one or import a CSV file.'));
      return;
    }
    const rows = course.roster.map((student) => {
      const s = stats.get(student.id) ?? { xp: 0, level: 1, badges: [], practicals: 0, finished: 0 };
      const open = button(student.name, () => this.ctx.openStudent(student.id), { class: 'link', title: `${student.name}: the term` });
      const actions = el(
        'div',
        { class: 'row-actions' },
        button('New code', () => this.askRotate(student), { class: 'quiet small', 'aria-label': `New code for ${student.name}` }),
        button('Remove', () => this.askRemove(student, s), { class: 'danger small', 'aria-label': `Remove ${student.name}` }),
      );
      return row(
        [
          { node: open, class: 'name' },
          student.email ?? '',
          student.student_number ?? '',
          { text: s.xp, class: 'num xp' },
          { text: s.level, class: 'num' },
          { text: s.badges.join(', '), class: 'badges' },
          { text: s.practicals, class: 'num' },
          { text: s.finished, class: 'num' },
          actions,
        ],
        { data: { student: student.id } },
      );
    });
    this.list.replaceChildren(
      table('Roster', ['Name', 'Email', 'Number', { text: 'XP', class: 'num' }, { text: 'Level', class: 'num' }, 'Badges', { text: 'Practicals', class: 'num' }, { text: 'Finished', class: 'num' }, { text: 'Actions', sr: true }], rows, {
        id: 'roster',
        class: 'data sticky-first',
      }),
    );
  }

  askRotate(student) {
    this.confirm.ask(`Give ${student.name} a new sign-in code? Their old code stops working at once.`, 'Make a new code', async () => {
      try {
        const fresh = await this.ctx.api.call(`${this.base}/students/${encodeURIComponent(student.id)}/code`, { method: 'POST' });
        this.status.clear();
        this.showCodes([fresh], `A new code for ${fresh.name}.`);
      } catch (error) {
        this.status.show(error.message, 'error');
      }
    });
  }

  askRemove(student, stats) {
    const badges = stats.badges.length ? `badges (${stats.badges.join(', ')})` : 'badges';
    this.confirm.ask(
      `Remove ${student.name} from the course? Their sign-in code stops working, and their ${stats.xp} XP and ${badges} in this course go. What they did in past practicals stays in those practicals' results.`,
      `Remove ${student.name}`,
      async () => {
        try {
          await this.ctx.api.call(`${this.base}/students/${encodeURIComponent(student.id)}`, { method: 'DELETE' });
          this.status.show(`${student.name} is off the roster.`, 'ok');
          await this.ctx.refresh();
        } catch (error) {
          this.status.show(error.message, 'error');
        }
      },
    );
  }
}

/** A tool in a fold of its own: its summary is a real, focusable toggle. */
function tool(title, form, open) {
  return el('details', { class: 'card tool', open }, el('summary', {}, title), form);
}
