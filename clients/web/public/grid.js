/**
 * The teacher's live progress grid: a row per student, a column per step of
 * the challenge (✓ done, ● the current step with the time spent on it, a
 * small number for the mistakes made there), the student's station with a
 * control to move them to another one, and a table of the stations in use
 * (members, score, finished or which step).
 *
 * A student the room finds stuck (`stuck`, docs/protocol.md §15.4) is marked
 * amber, or red when wheel-spinning, and the reasons the room gives are
 * written under their row ("Stuck: idle 90 s on step 3"), since a colour
 * alone says nothing to a teacher who cannot tell amber from red; `unstuck`
 * clears it. Each row's Hint button opens a small form under it: push a rung
 * of the ladder (Nudge, Hint, Show me) or the teacher's own words, to that
 * student or their whole station. The room's refusals (no such rung, no open
 * step, not at a station) show in the form in the server's sentence.
 *
 * Filled from the room state: the snapshot's stations, progress and stuck
 * flags, then the challenge events as they come. Rows are kept per student and
 * updated in place, so the station selector or hint form a teacher is using is
 * not rebuilt under their pointer, and the times tick once a second without a
 * redraw.
 *
 * @module grid
 */

import { messages } from './protocol.js';
import { formatDuration } from './format.js';
import { RUNGS } from './hints.js';

/** What a flagged row says before the room's reasons. */
const FLAG_WORDS = { amber: 'Stuck', red: 'Wheel-spinning' };
const HINT_TEXT_MAX = 300;

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
    /**
     * Per student: the row, its station selector, the note row with why they are stuck,
     * and the hint form row (made when first opened).
     * @type {Map<string, {row: HTMLTableRowElement, select: HTMLSelectElement, note: HTMLTableRowElement, form: HTMLTableRowElement|null}>}
     */
    this.rows = new Map();
    this.builtFor = null;
    /** @type {string|null} the student whose hint form is open */
    this.formFor = null;
    this.pushes = 0;
    /** @type {string|null} the student whose form sent the push the room has not shown yet */
    this.awaiting = null;
    /** @type {Map<string, string>} push_hint request id -> the student whose form sent it */
    this.pending = new Map();
    this.table.addEventListener('change', (event) => {
      const select = event.target.closest('select[data-assign]');
      if (!select) return;
      const station = select.value === '' ? null : Number(select.value);
      this.connection.send(messages.assignStation(select.dataset.assign, station));
    });
    this.table.addEventListener('click', (event) => {
      const id = event.target.closest('button[data-hint-for]')?.dataset.hintFor;
      if (id) this.toggleForm(id);
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
    for (const [id, entry] of this.rows) {
      if (!this.state.participants[id]) {
        for (const row of [entry.row, entry.note, entry.form]) row?.remove();
        this.rows.delete(id);
        if (this.formFor === id) this.formFor = null;
      }
    }
    const ordered = students.flatMap((student) => this.updateRow(student, steps));
    body.replaceChildren(...ordered); // moves the kept rows, selection and typing intact
    if (!students.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = steps.length + 5;
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
    const hint = th('', 'Send a hint');
    hint.setAttribute('aria-label', 'Send a hint');
    cells.push(th('✗', 'Mistakes'), th('Score'), hint);
    head.replaceChildren(...cells);
    for (const entry of this.rows.values()) for (const row of [entry.row, entry.note, entry.form]) row?.remove();
    this.rows.clear();
    this.formFor = null;
  }

  get columns() {
    return (this.state.challenge?.steps.length ?? 0) + 5;
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
      const ask = document.createElement('button');
      ask.type = 'button';
      ask.className = 'hint-open';
      ask.dataset.hintFor = student.id;
      ask.textContent = 'Hint';
      ask.setAttribute('aria-expanded', 'false');
      row.insertCell().className = 'hint';
      row.cells[row.cells.length - 1].append(ask);
      const note = document.createElement('tr');
      note.className = 'stuck-note';
      note.dataset.noteFor = student.id;
      const why = note.insertCell();
      why.colSpan = steps.length + 5;
      entry = { row, select, note, form: null };
      this.rows.set(student.id, entry);
    }
    const { row, select, note } = entry;
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
    const ask = row.querySelector('button[data-hint-for]');
    ask.title = `Send ${student.name} a hint`;
    ask.setAttribute('aria-label', ask.title);
    this.tickRow(row, number);
    const flag = this.flagOf(student.id, number);
    row.dataset.stuck = flag?.level ?? '';
    note.dataset.stuck = flag?.level ?? '';
    if (flag) {
      const label = document.createElement('strong');
      label.textContent = `${FLAG_WORDS[flag.level]}: `;
      note.cells[0].replaceChildren(label, flag.reasons.join(' · '));
    }
    const rows = flag ? [row, note] : [row];
    if (this.formFor === student.id) rows.push(this.formRow(student, number));
    return rows;
  }

  /**
   * Whether the room flags this student, and why: the station's flag, with the
   * signals about the whole group and those naming this student.
   * @returns {{level: 'amber'|'red', step: string, reasons: string[]}|null}
   */
  flagOf(participant, number) {
    const flag = number === null ? null : this.state.hints.get(number)?.stuck;
    if (!flag) return null;
    const signals = flag.signals.filter((signal) => !signal.participant || signal.participant === participant);
    if (!signals.length) return null;
    const level = signals.some((signal) => signal.signal === 'wheel_spinning') ? 'red' : 'amber';
    return { level, step: flag.step, reasons: signals.map((signal) => signal.reason) };
  }

  toggleForm(id) {
    this.formFor = this.formFor === id ? null : id;
    for (const [pid, { row }] of this.rows) row.querySelector('button[data-hint-for]').setAttribute('aria-expanded', String(pid === this.formFor));
    this.render();
    if (this.formFor) this.rows.get(id)?.form?.querySelector('button[data-level]')?.focus();
  }

  /** The hint form under a student's row (made once; its target choice follows their station). */
  formRow(student, number) {
    const entry = this.rows.get(student.id);
    if (!entry.form) entry.form = this.buildForm(student.id);
    const form = entry.form.querySelector('form');
    form.setAttribute('aria-label', `Hint for ${student.name}`);
    const target = form.querySelector('select[name="to"]');
    const station = this.state.stations.get(number);
    const names = station ? station.members.map((id) => this.state.participants[id]?.name ?? '?').join(', ') : '';
    target.options[0].textContent = `Only ${student.name}`;
    target.options[1].textContent = station ? `${station.title} (${names})` : 'Their station';
    target.options[1].disabled = !station;
    if (!station) target.value = 'participant';
    entry.form.cells[0].colSpan = this.columns;
    return entry.form;
  }

  buildForm(participant) {
    const row = document.createElement('tr');
    row.className = 'hint-form-row';
    row.dataset.formFor = participant;
    const cell = row.insertCell();
    const form = document.createElement('form');
    form.className = 'push-hint';
    const rungs = document.createElement('div');
    rungs.className = 'rungs';
    rungs.setAttribute('role', 'group');
    rungs.setAttribute('aria-label', 'A rung of the hint ladder');
    for (const [level, name] of Object.entries(RUNGS)) {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.level = level;
      button.textContent = name;
      rungs.append(button);
    }
    const text = document.createElement('input');
    text.name = 'text';
    text.maxLength = HINT_TEXT_MAX;
    text.autocomplete = 'off';
    text.placeholder = 'or your own words';
    text.setAttribute('aria-label', 'Your own hint (up to 300 characters)');
    const send = document.createElement('button');
    send.type = 'submit';
    send.textContent = 'Send';
    const to = document.createElement('select');
    to.name = 'to';
    to.setAttribute('aria-label', 'Send it to');
    to.append(new Option('', 'participant'), new Option('', 'station'));
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'quiet';
    close.textContent = 'Close';
    const own = document.createElement('div');
    own.className = 'own';
    own.append(text, send);
    const status = document.createElement('p');
    status.className = 'push-status';
    status.setAttribute('role', 'status');
    form.append(rungs, own, to, close, status);
    cell.append(form);
    rungs.addEventListener('click', (event) => {
      const level = event.target.closest('button[data-level]')?.dataset.level;
      if (level) this.push(participant, Number(level), null);
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const words = text.value.trim();
      if (!words) {
        this.say(participant, 'Type a hint first, or choose a rung.', 'error');
        return;
      }
      this.push(participant, null, words.slice(0, HINT_TEXT_MAX));
    });
    close.addEventListener('click', () => this.toggleForm(participant));
    return row;
  }

  /** Send a push from a student's form, to them or their station. */
  push(participant, level, text) {
    const form = this.rows.get(participant)?.form;
    if (!form) return;
    const where = form.querySelector('select[name="to"]').value;
    const number = this.state.stationOf(participant);
    const to = where === 'station' && number !== null ? { station: number } : { participant };
    const id = `push-${++this.pushes}`;
    this.pending.set(id, participant);
    this.awaiting = participant;
    this.say(participant, 'Sending…', '');
    this.connection.send({ ...messages.pushHint(to, level, text), id });
  }

  say(participant, text, kind) {
    const status = this.rows.get(participant)?.form?.querySelector('.push-status');
    if (!status) return;
    status.textContent = text;
    status.dataset.kind = kind;
  }

  /** The room showed a hint this teacher pushed: the open form says so (and clears the typed words). */
  onEvent(event) {
    const participant = this.awaiting;
    if (event.type !== 'hint' || event.reason !== 'teacher' || event.by !== this.state.me?.id || !participant) return;
    this.awaiting = null;
    const names = event.to.map((id) => this.state.participants[id]?.name ?? '?').join(', ');
    this.say(participant, `Sent to ${names}: ${event.level ? RUNGS[event.level] : 'your words'}.`, 'ok');
    if (event.level === 0) {
      const input = this.rows.get(participant)?.form?.querySelector('input[name="text"]');
      if (input) input.value = '';
    }
  }

  /** A refusal of a push this grid sent: shown in the server's sentence in that student's form. */
  refused(error) {
    const participant = this.pending.get(error.re);
    if (!participant) return false;
    this.pending.delete(error.re);
    if (this.awaiting === participant) this.awaiting = null;
    this.say(participant, error.message, 'error');
    return true;
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
      const flag = this.state.hints.get(station.number)?.stuck ?? null;
      const progressText = station.progress.finished !== null ? 'finished' : steps.length ? `step ${Math.min(done + 1, steps.length)} of ${steps.length}` : '';
      const status = flag ? `${progressText} · ${FLAG_WORDS[flag.level] ?? 'Stuck'}: ${flag.signals.map((s) => s.reason).join(' · ')}` : progressText;
      row.dataset.stuck = flag?.level ?? '';
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
          stuck: this.flagOf(student.id, number),
          hintForm: this.formFor === student.id,
        };
      }),
      stations: [...this.state.stations.values()].map((s) => ({
        number: s.number,
        members: [...s.members],
        score: s.progress.score,
        finished: s.progress.finished !== null,
        done: Object.keys(s.progress.done),
        stuck: this.state.hints.get(s.number)?.stuck?.level ?? null,
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
