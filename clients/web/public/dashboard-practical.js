/**
 * A course's practicals: the list (from the course dashboard), opening a new
 * one, and one practical's results (GET /api/sessions/{id}/results, docs/
 * operations.md "Results") as a station grid and a table per student, with
 * its CSV download.
 *
 * While a practical is open its view can run **live**: it reads the results
 * again every 3 s (the node writes records as they happen) and shows who is at
 * which station, the steps each station has done (✓) out of the challenge's,
 * mistakes, score and the time since the station started. It stops when the
 * view is left or the practical ends. Polls never overlap: the next one is
 * set only once the last has answered.
 *
 * @module dashboard-practical
 */

import { button, el, formatDate, formatDuration, formatTime, plural, row, statusLine, table, yesNo } from './dashboard-ui.js';

/** How often the live view reads the results again, ms (the page says so). */
export const LIVE_EVERY_MS = 3000;

export class PracticalList {
  /** @param {import('./dashboard-course.js').CourseView} ctx */
  constructor(ctx) {
    this.tab = true;
    this.ctx = ctx;
    this.list = el('div', {});
    this.opened = el('div', { class: 'opened', role: 'status' });
    this.status = statusLine();
    this.root = el('div', { class: 'view' }, el('h3', {}, 'Practicals'), this.openForm(), this.opened, this.status, this.list);
    this.update(ctx.data);
  }

  openForm() {
    const title = el('input', { id: 'open-title', name: 'title', maxlength: 120, autocomplete: 'off', placeholder: 'Week 3: heating' });
    const scene = el('select', { id: 'open-scene', name: 'scene' }, el('option', { value: '' }, 'The demo lab'));
    this.ctx.api
      .call('/api/scenes')
      .then((scenes) => scene.append(...scenes.map((s) => el('option', { value: s.package_id }, `${s.title} (${s.package_id} v${s.version})`))))
      .catch(() => {}); // the demo lab still works
    const form = el(
      'form',
      { id: 'open-practical', class: 'card inline-form', 'aria-labelledby': 'open-practical-title' },
      el('h4', { id: 'open-practical-title' }, 'Open a practical for this course'),
      el('div', { class: 'field' }, el('label', { for: title.id }, 'Title'), title),
      el('div', { class: 'field' }, el('label', { for: scene.id }, 'Lab'), scene),
      el('button', { type: 'submit' }, 'Open practical'),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = { course: this.ctx.id, ...(title.value.trim() ? { title: title.value.trim() } : {}), ...(scene.value ? { scene: scene.value } : {}) };
      try {
        const session = await this.ctx.api.call('/api/sessions', { method: 'POST', json: body });
        form.reset();
        this.status.clear();
        this.opened.replaceChildren(
          el('p', {}, `${session.title ?? 'The practical'} is open. Students sign in with their codes; guests join with the code `, el('code', { class: 'code' }, session.join_code), '. '),
          el('a', { href: session.teacher_url, target: '_blank', rel: 'noopener', class: 'button-link' }, 'Enter the room as teacher'),
        );
        await this.ctx.refresh();
      } catch (error) {
        this.status.show(error.message, 'error');
      }
    });
    return form;
  }

  update(data) {
    const practicals = [...data.board.practicals].reverse(); // newest first
    if (!practicals.length) {
      this.list.replaceChildren(el('p', { class: 'hint' }, 'No practicals in this course yet.'));
      return;
    }
    const rows = practicals.map((p) => {
      const actions = el(
        'div',
        { class: 'row-actions' },
        p.status === 'open' ? button('Live', () => this.ctx.openPractical(p.id, true), { 'aria-label': `Live: ${p.title ?? p.id}` }) : null,
        button('Results', () => this.ctx.openPractical(p.id, false), { class: 'quiet', 'aria-label': `Results: ${p.title ?? p.id}` }),
      );
      const state = p.status === 'open' ? el('strong', { class: 'live-dot' }, 'open') : p.status;
      return row(
        [p.title ?? '(untitled)', p.scene, formatDate(p.created), state, { text: p.students, class: 'num' }, { text: p.finished, class: 'num' }, { text: p.mean_points ?? '', class: 'num' }, actions],
        { data: { session: p.id } },
      );
    });
    const num = (text) => ({ text, class: 'num' });
    this.list.replaceChildren(
      table('Practicals', ['Title', 'Lab', 'Opened', 'Status', num('Students'), num('Finished'), num('Mean points'), { text: 'Actions', sr: true }], rows, {
        id: 'practicals',
        class: 'data',
      }),
    );
  }
}

export class PracticalView {
  /**
   * @param {import('./dashboard-course.js').CourseView} ctx
   * @param {string} sessionId
   * @param {boolean} live poll every 3 s while it is open
   */
  constructor(ctx, sessionId, live) {
    this.ctx = ctx;
    this.id = sessionId;
    this.live = live;
    this.timer = null;
    this.stopped = false;
    /** the practical's state the header was drawn for */
    this.headFor = null;
    this.head = el('div', { class: 'practical-head' });
    this.note = el('p', { class: 'live-note', id: 'live-note' });
    this.note.hidden = !live;
    this.status = statusLine();
    this.body = el('div', {}, el('p', { class: 'hint' }, 'Loading the results…'));
    this.root = el('div', { class: `view practical${live ? ' live' : ''}`, id: 'practical' }, ctx.back('practicals', '← Back to practicals'), this.head, this.note, this.status, this.body);
    this.poll();
  }

  get path() {
    return `/api/sessions/${encodeURIComponent(this.id)}/results`;
  }

  async poll() {
    this.timer = null;
    let results;
    try {
      results = await this.ctx.api.call(this.path);
    } catch (error) {
      if (this.stopped) return;
      this.status.show(error.message, 'error');
      if (this.live && error.status === 0) this.timer = setTimeout(() => this.poll(), LIVE_EVERY_MS); // the network may come back
      else this.stop();
      return;
    }
    if (this.stopped) return;
    this.status.clear();
    this.results = results;
    this.render(results);
    if (!this.live) return;
    if (results.session.status === 'open') {
      this.note.textContent = `Live: refreshes every ${LIVE_EVERY_MS / 1000} s · last update ${formatTime()}`;
      this.timer = setTimeout(() => this.poll(), LIVE_EVERY_MS);
    } else {
      this.note.textContent = 'This practical has ended: these are its final results.';
      this.stop();
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Leaving the view stops the polling. */
  leave() {
    this.stop();
  }

  /** Whether it still reads the results (for tests). */
  get polling() {
    return !this.stopped && this.live;
  }

  /**
   * Draw the results. The header is rebuilt only when the practical's state changes, so a
   * button a keyboard user is on keeps its focus across polls; the tables are redrawn, each
   * scrolled sideways as far as it was.
   */
  render(results) {
    const { session, challenge } = results;
    const steps = challenge?.steps ?? [];
    if (this.headFor !== session.status) this.renderHead(session);
    this.headFor = session.status;
    const scrolled = new Map([...this.body.querySelectorAll('.scroll')].map((box) => [box.getAttribute('aria-label'), box.scrollLeft]));
    const names = new Map(results.students.map((s) => [s.participant, s.name]));
    const legend = steps.length
      ? el('ol', { class: 'steps-legend', 'aria-label': 'Steps of the challenge' }, steps.map((s) => el('li', {}, `${s.text} (${s.points} points)`)))
      : el('p', { class: 'hint' }, 'This practical has no challenge.');
    this.body.replaceChildren(
      el('h4', {}, challenge ? `${challenge.title}: ${plural(steps.length, 'step')}` : 'No challenge'),
      legend,
      el('h4', {}, 'Stations'),
      this.stationGrid(results, steps, names),
      el('h4', {}, 'Students'),
      this.studentTable(results, steps),
    );
    for (const box of this.body.querySelectorAll('.scroll')) box.scrollLeft = scrolled.get(box.getAttribute('aria-label')) ?? 0;
  }

  renderHead(session) {
    const download = button('Download results CSV', () => this.downloadCsv(), { id: 'results-csv' });
    const watch = !this.live && session.status === 'open' ? button('Watch live', () => this.ctx.openPractical(this.id, true)) : null;
    const refresh = !this.live ? button('Refresh', () => ((this.stopped = false), this.poll()), { class: 'quiet' }) : null;
    this.head.replaceChildren(
      el('h3', { id: 'practical-title' }, session.title ?? '(untitled practical)'),
      el(
        'p',
        { class: 'meta' },
        `${session.scene} v${session.scene_version} · opened ${formatDate(session.created)} · `,
        session.status === 'open' ? el('strong', { class: 'live-dot' }, 'open now') : 'ended',
      ),
      el('div', { class: 'actions' }, watch, download, refresh),
    );
  }

  stationGrid(results, steps, names) {
    if (!results.stations.length) return el('p', { class: 'hint', id: 'stations-empty' }, 'Nobody is at a station yet.');
    const now = Date.now() / 1000;
    const done = new Map(); // station → step ids done there
    for (const student of results.students) for (const step of student.steps) (done.get(step.station) ?? done.set(step.station, new Set()).get(step.station)).add(step.step);
    const rows = results.stations.map((station) => {
      const here = results.students.filter((s) => s.station === station.station).map((s) => s.name);
      const time = station.started === null ? 'not started' : station.finished !== null ? `${formatDuration(station.elapsed)} · finished` : formatDuration(now - station.started);
      return row(
        [
          { text: station.station, class: 'num' },
          here.join(', ') || station.members.map((id) => names.get(id) ?? id).join(', '),
          ...stepCells(steps, done.get(station.station) ?? new Set()),
          { text: `${station.steps_done} of ${steps.length}`, class: 'num' },
          { text: station.mistakes, class: 'num' },
          { text: station.score, class: 'num' },
          { text: time, class: 'num time' },
        ],
        { data: { station: station.station }, class: station.finished !== null ? 'finished' : '' },
      );
    });
    const num = (text) => ({ text, class: 'num' });
    return table('Stations', [num('Station'), 'Students', ...stepHeads(steps), num('Done'), num('Mistakes'), num('Score'), num('Time')], rows, { id: 'live-stations', class: 'data grid sticky-first' });
  }

  studentTable(results, steps) {
    if (!results.students.length) return el('p', { class: 'hint' }, 'No student has been placed at a station yet.');
    const rows = results.students.map((s) => {
      const done = new Set(s.steps.map((step) => step.step));
      const time = s.elapsed !== null ? formatDuration(s.elapsed) : s.started !== null && this.results.session.status === 'open' ? formatDuration(Date.now() / 1000 - s.started) : '';
      return row(
        [
          { text: s.name, class: 'name' },
          { text: s.stations.join(', '), class: 'num' },
          ...stepCells(steps, done),
          { text: s.mistakes.length, class: 'num' },
          { text: s.score, class: 'num score' },
          yesNo(s.done),
          { text: time, class: 'num' },
        ],
        { data: { participant: s.participant }, class: s.done ? 'finished' : '' },
      );
    });
    const num = (text) => ({ text, class: 'num' });
    return table('Students', ['Student', num('Station'), ...stepHeads(steps), num('Mistakes'), num('Score'), 'Finished', num('Time')], rows, { id: 'results-students', class: 'data grid sticky-first' });
  }

  async downloadCsv() {
    try {
      await this.ctx.api.download(`${this.path}.csv`, `amaliy-${this.id}-results.csv`);
    } catch (error) {
      this.status.show(error.message, 'error');
    }
  }
}

function stepHeads(steps) {
  return steps.map((step, i) => ({ text: String(i + 1), class: 'step', title: step.text }));
}

/** One cell a step: ✓ when done (with words for screen readers), else empty. */
function stepCells(steps, done) {
  return steps.map((step) => {
    const yes = done.has(step.id);
    const node = el('span', {}, el('span', { 'aria-hidden': 'true' }, yes ? '✓' : '○'), el('span', { class: 'sr' }, yes ? 'done' : 'not done'));
    return { node, class: `step ${yes ? 'done' : 'todo'}`, title: `${step.text}: ${yes ? 'done' : 'not done'}`, data: { step: step.id } };
  });
}
