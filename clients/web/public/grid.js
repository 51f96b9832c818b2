/**
 * The teacher's live progress grid: a row per student, a column per step of
 * the challenge (✓ done, ● the current step with the time spent on it, a
 * small number for the mistakes made there), the student's station with a
 * control to move them to another one, and a table of the stations in use
 * (members, score, finished or which step).
 *
 * Filled from the room state: the snapshot's stations and progress, then the
 * challenge events as they come. Rows are kept per student and updated in
 * place, so the station selector a teacher is using is not rebuilt under
 * their pointer, and the times tick once a second without a redraw.
 *
 * @module grid
 */

import { messages } from './protocol.js';
import { formatDuration } from './format.js';

export class ProgressGrid {
  /**
   * @param {HTMLElement} root the panel element (index.html `#grid-panel`)
   * @param {import('./state.js').RoomState} state
   * @param {import('./connection.js').Connection} connection
   */
  constructor(root, state, connection) {
    this.root = root;
    this.state = state;
    this.connection = connection;
    this.table = root.querySelector('#grid');
    this.stationTable = root.querySelector('#stations');
    this.collapse = root.querySelector('#grid-toggle');
    this.collapse.addEventListener('click', () => {
      const folded = this.root.classList.toggle('folded');
      this.collapse.setAttribute('aria-expanded', String(!folded));
      this.collapse.textContent = folded ? 'Show' : 'Hide';
    });
    /** @type {Map<string, {row: HTMLTableRowElement, select: HTMLSelectElement}>} */
    this.rows = new Map();
    this.builtFor = null;
    this.table.addEventListener('change', (event) => {
      const select = event.target.closest('select[data-assign]');
      if (!select) return;
      const station = select.value === '' ? null : Number(select.value);
      this.connection.send(messages.assignStation(select.dataset.assign, station));
    });
    setInterval(() => this.tick(), 1000);
  }

  get active() {
    return this.state.isTeacher() && Boolean(this.state.challenge || this.state.stationRules.declared);
  }

  show() {
    this.root.hidden = !this.active;
    this.render();
  }

  /** Rebuild the header when the challenge changes, then update every row (after any event). */
  render() {
    if (!this.active) {
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    const steps = this.state.challenge?.steps ?? [];
    const key = `${this.state.challenge?.id}|${steps.map((s) => s.id).join(',')}|${[...this.state.stations.keys()].join(',')}`;
    if (key !== this.builtFor) this.buildHead(steps);
    this.builtFor = key;
    const body = this.table.tBodies[0];
    const students = Object.values(this.state.participants)
      .filter((p) => p.role === 'student')
      .sort((a, b) => (this.state.stationOf(a.id) ?? 99) - (this.state.stationOf(b.id) ?? 99) || a.name.localeCompare(b.name));
    for (const [id, { row }] of this.rows) {
      if (!this.state.participants[id]) {
        row.remove();
        this.rows.delete(id);
      }
    }
    const ordered = students.map((student) => this.updateRow(student, steps));
    body.replaceChildren(...ordered); // moves the kept rows, selection intact
    if (!students.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = steps.length + 4;
      cell.className = 'empty';
      cell.textContent = 'No students yet.';
    }
    this.renderStations();
  }

  buildHead(steps) {
    const head = this.table.tHead.rows[0] ?? this.table.tHead.insertRow();
    const cells = ['Student', 'Station'].map((text) => th(text));
    steps.forEach((step, i) => {
      const cell = th(String(i + 1));
      cell.title = step.text;
      cell.className = 'step';
      cells.push(cell);
    });
    cells.push(th('✗', 'Mistakes'), th('Score'));
    head.replaceChildren(...cells);
    for (const { row } of this.rows.values()) row.remove();
    this.rows.clear();
  }

  /** Make (once) and fill one student's row. */
  updateRow(student, steps) {
    let entry = this.rows.get(student.id);
    if (!entry) {
      const row = document.createElement('tr');
      row.dataset.participant = student.id;
      row.insertCell().className = 'name';
      const select = document.createElement('select');
      select.dataset.assign = student.id;
      select.append(new Option('—', ''));
      for (const station of this.state.stations.values()) select.append(new Option(String(station.number), String(station.number)));
      const where = row.insertCell();
      where.className = 'where';
      where.append(select);
      for (const step of steps) {
        const cell = row.insertCell();
        cell.className = 'step';
        cell.dataset.step = step.id;
      }
      row.insertCell().className = 'mistakes';
      row.insertCell().className = 'score';
      entry = { row, select };
      this.rows.set(student.id, entry);
    }
    const { row, select } = entry;
    const number = this.state.stationOf(student.id);
    const station = this.state.stations.get(number);
    row.cells[0].textContent = student.name;
    row.classList.toggle('away', !student.connected);
    select.title = `Move ${student.name} to another station`;
    select.setAttribute('aria-label', select.title);
    if (document.activeElement !== select) select.value = number === null ? '' : String(number);
    const current = this.state.currentStep(number);
    const progress = station?.progress;
    steps.forEach((step, i) => {
      const cell = row.cells[2 + i];
      const done = progress?.done[step.id];
      const slips = progress?.mistakes[step.id] ?? 0;
      const status = done ? 'done' : current?.id === step.id ? 'current' : progress && step.id in progress.opened ? 'open' : 'todo';
      cell.dataset.status = status;
      cell.dataset.overdue = String(Boolean(station?.overdue.has(step.id)));
      const mark = document.createElement('span');
      mark.className = 'mark';
      mark.textContent = status === 'done' ? '✓' : status === 'current' ? '●' : '';
      const parts = [mark];
      if (status === 'current') {
        const time = document.createElement('span');
        time.className = 'time';
        parts.push(time);
      }
      if (slips) {
        const count = document.createElement('sup');
        count.className = 'slips';
        count.textContent = String(slips);
        parts.push(count);
      }
      cell.replaceChildren(...parts);
      cell.title = `${step.text}${done ? ` — done, +${done.points}` : ''}${slips ? ` — ${slips} mistake${slips === 1 ? '' : 's'}` : ''}`;
    });
    const mistakes = progress ? Object.values(progress.mistakes).reduce((a, b) => a + b, 0) : 0;
    row.cells[2 + steps.length].textContent = station ? String(mistakes) : '';
    row.cells[3 + steps.length].textContent = station ? String(station.scores[student.id] ?? 0) : '';
    row.classList.toggle('finished', Boolean(progress?.finished));
    this.tickRow(row, number);
    return row;
  }

  /** The stations that have students: who, the score, and how far they are. */
  renderStations() {
    const steps = this.state.challenge?.steps ?? [];
    const rows = [];
    let empty = 0;
    for (const station of this.state.stations.values()) {
      if (!station.members.length && station.progress.started === null) {
        empty += 1;
        continue;
      }
      const row = document.createElement('tr');
      row.dataset.station = String(station.number);
      const names = station.members.map((id) => this.state.participants[id]?.name ?? '?').join(', ') || '(nobody now)';
      const done = Object.keys(station.progress.done).length;
      const status = station.progress.finished !== null ? 'finished' : steps.length ? `step ${Math.min(done + 1, steps.length)} of ${steps.length}` : '';
      for (const [text, name] of [[station.title, 'title'], [names, 'members'], [String(station.progress.score), 'score'], [status, 'status']]) {
        const cell = row.insertCell();
        cell.className = name;
        cell.textContent = text;
      }
      row.classList.toggle('finished', station.progress.finished !== null);
      rows.push(row);
    }
    this.stationTable.tBodies[0].replaceChildren(...rows);
    this.root.querySelector('#stations-empty').textContent = empty ? `${empty} station${empty === 1 ? '' : 's'} free` : '';
  }

  /** Time on the current step, in every row (once a second). */
  tick() {
    if (!this.active) return;
    for (const [id, { row }] of this.rows) this.tickRow(row, this.state.stationOf(id));
  }

  tickRow(row, number) {
    const time = row.querySelector('td[data-status="current"] .time');
    const progress = this.state.stations.get(number)?.progress;
    const current = this.state.currentStep(number);
    if (!time || !progress || !current) return;
    time.textContent = formatDuration(this.state.roomNow() - (progress.opened[current.id] ?? progress.started));
  }

  /** The grid as data, for tests: one entry per student, and per station. */
  view() {
    const steps = this.state.challenge?.steps ?? [];
    const students = Object.values(this.state.participants).filter((p) => p.role === 'student');
    return {
      steps: steps.map((s) => s.id),
      rows: students.map((student) => {
        const number = this.state.stationOf(student.id);
        const station = this.state.stations.get(number);
        const current = this.state.currentStep(number);
        const progress = station?.progress;
        return {
          participant: student.id,
          name: student.name,
          station: number,
          current: current?.id ?? null,
          steps: Object.fromEntries(
            steps.map((s) => [s.id, progress?.done[s.id] ? 'done' : current?.id === s.id ? 'current' : 'todo']),
          ),
          mistakes: progress ? Object.values(progress.mistakes).reduce((a, b) => a + b, 0) : 0,
          onStepSeconds: current && progress ? this.state.roomNow() - (progress.opened[current.id] ?? progress.started) : null,
          score: station ? (station.scores[student.id] ?? 0) : null,
        };
      }),
      stations: [...this.state.stations.values()].map((s) => ({
        number: s.number,
        members: [...s.members],
        score: s.progress.score,
        finished: s.progress.finished !== null,
        done: Object.keys(s.progress.done),
      })),
    };
  }
}

function th(text, title) {
  const cell = document.createElement('th');
  cell.textContent = text;
  cell.scope = 'col';
  if (title) cell.title = title;
  return cell;
}
