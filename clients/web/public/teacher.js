/**
 * The teacher's panel: who is in the practical, and the controls that steer
 * it (remove a student, lock the door, pause interaction, gather everyone,
 * reset the equipment, end the practical), the voice controls: mute a
 * student or everyone, unmute everyone, and broadcast the teacher's voice to
 * every zone; a hint in the teacher's own words to every group at once (in
 * a practical with a challenge; a hint to one student or station is in the
 * progress grid, grid.js); and the people removed, each with "Let back in".
 *
 * What cannot be undone with one click (reset the scene, end the practical,
 * remove a student, mute everyone) first asks in a small confirm strip in the
 * panel, saying what will happen; only its button sends the request.
 *
 * The panel only sends requests; the server checks the teacher's role and
 * answers with events, and the panel redraws from the room state, so what it
 * shows is what the room did, not what was clicked.
 *
 * @module teacher
 */

import { ConfirmStrip } from './confirm.js';
import { messages } from './protocol.js';
import { SPEAKING_LEVEL } from './voicebar.js';

export class TeacherPanel {
  /**
   * @param {HTMLElement} root the panel element from index.html
   * @param {import('./state.js').RoomState} state
   * @param {import('./connection.js').Connection} connection
   * @param {import('./rig.js').Rig} rig the teacher's own rig, for "summon here"
   */
  constructor(root, state, connection, rig) {
    /** @type {Record<string, number>} newest voice levels, for the speaking dots */
    this.levels = {};
    this.root = root;
    this.state = state;
    this.roster = root.querySelector('#roster tbody');
    this.removedBox = root.querySelector('#removed');
    this.removedList = root.querySelector('#removed ul');
    this.confirm = new ConfirmStrip(root.querySelector('#teacher-confirm'));
    this.hintAll = root.querySelector('#hint-all');
    this.hintAllStatus = root.querySelector('#hint-all-status');
    /** @type {string|null} id of the "hint to everyone" sent and not yet answered */
    this.hintAllPending = null;
    this.hintAllSent = 0;
    this.buttons = Object.fromEntries([...root.querySelectorAll('button[data-action]')].map((b) => [b.dataset.action, b]));
    const send = (message) => connection.send(message);
    const actions = {
      lock: () => send(messages.lock(!state.locked)),
      freeze: () => send(messages.freeze(!state.frozen)),
      summon: () => send(messages.summon(rig.floorPoint())),
      reset: () =>
        this.confirm.ask('Reset the scene? Every piece of equipment goes back to where it started, and what students hold is dropped.', 'Reset scene', () =>
          send(messages.reset()),
        ),
      // The server takes one participant per mute message.
      muteAll: () =>
        this.confirm.ask('Mute every student? They cannot unmute themselves until you unmute them.', 'Mute all', () => {
          for (const p of this.students()) if (!p.forced_muted) send(messages.mute(true, p.id));
        }),
      unmuteAll: () => {
        for (const p of this.students()) if (p.forced_muted) send(messages.mute(false, p.id));
      },
      broadcast: () => send(messages.broadcast(!state.broadcast.has(state.me.id))),
      end: () => this.confirm.ask('End the practical for everyone? Nobody can join or work in it afterwards.', 'End practical', () => send(messages.end())),
    };
    for (const [action, button] of Object.entries(this.buttons)) button.addEventListener('click', actions[action]);
    this.roster.addEventListener('click', (event) => {
      const { kick, mute } = event.target.closest('button')?.dataset ?? {};
      if (kick) {
        const name = state.participants[kick]?.name ?? 'this student';
        this.confirm.ask(`Remove ${name} from the practical? They stay out, from this device too, until you let them back in.`, 'Remove', () =>
          send(messages.kick(kick)),
        );
      }
      if (mute) send(messages.mute(!state.participants[mute]?.forced_muted, mute));
    });
    this.hintAll.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = this.hintAll.elements.namedItem('text');
      const text = input.value.trim();
      if (!text) return;
      this.hintAllPending = `hint-all-${++this.hintAllSent}`;
      this.sayHintAll('Sending…', '');
      send({ ...messages.pushHint({ all: true }, null, text.slice(0, 300)), id: this.hintAllPending });
    });
    // The answer to a hint to everyone: the room's events and refusals, heard here directly.
    connection.addEventListener('event', ({ detail }) => this.onEvent(detail));
    connection.addEventListener('servererror', ({ detail }) => this.refused(detail));
    this.removedList.addEventListener('click', (event) => {
      const id = event.target.closest('button')?.dataset.unkick;
      if (id) send(messages.unkick(id));
    });
  }

  sayHintAll(text, kind) {
    this.hintAllStatus.textContent = text; // the server's sentence: text only
    this.hintAllStatus.dataset.kind = kind;
  }

  /** Room events this panel answers itself: our hint to everyone arrived (one `hint` per station). */
  onEvent(event) {
    if (event.type !== 'hint' || event.by !== this.state.me?.id || event.reason !== 'teacher' || !this.hintAllPending) return;
    this.hintAllPending = null;
    this.hintAll.elements.namedItem('text').value = '';
    this.sayHintAll('Sent to every group.', 'ok');
  }

  /** A refusal of our hint to everyone (nobody at a station, say), in the server's words. */
  refused(error) {
    if (!this.hintAllPending || error.re !== this.hintAllPending) return false;
    this.hintAllPending = null;
    this.sayHintAll(error.message, 'error');
    return true;
  }

  show() {
    this.root.hidden = false;
    this.render();
  }

  /** Redraw from the room state (after any event that changes it). */
  render() {
    if (this.root.hidden) return;
    const { locked, frozen } = this.state;
    this.buttons.lock.textContent = locked ? 'Unlock' : 'Lock';
    this.buttons.lock.setAttribute('aria-pressed', String(locked));
    this.buttons.freeze.textContent = frozen ? 'Unfreeze' : 'Freeze';
    this.buttons.freeze.setAttribute('aria-pressed', String(frozen));
    const broadcasting = this.state.broadcast.has(this.state.me.id);
    this.buttons.broadcast.textContent = broadcasting ? 'Stop broadcast' : 'Broadcast voice';
    this.buttons.broadcast.setAttribute('aria-pressed', String(broadcasting));
    const students = this.students();
    this.buttons.muteAll.disabled = !students.some((p) => !p.forced_muted);
    this.buttons.unmuteAll.disabled = !students.some((p) => p.forced_muted);
    this.hintAll.hidden = !this.state.challenge;
    const rows = Object.values(this.state.participants)
      .sort((a, b) => (a.role === 'teacher') - (b.role === 'teacher') || a.name.localeCompare(b.name))
      .map((participant) => this.row(participant));
    this.roster.replaceChildren(...rows);
    const removed = Object.values(this.state.removed).sort((a, b) => a.name.localeCompare(b.name));
    this.removedBox.hidden = removed.length === 0;
    this.removedList.replaceChildren(...removed.map((gone) => this.removedRow(gone)));
  }

  removedRow(gone) {
    const item = document.createElement('li');
    item.dataset.removed = gone.id;
    const name = document.createElement('span');
    name.textContent = gone.name;
    name.title = gone.name;
    const back = document.createElement('button');
    back.type = 'button';
    back.textContent = 'Let back in';
    back.dataset.unkick = gone.id;
    back.title = `Let ${gone.name} join this practical again`;
    item.append(name, back);
    return item;
  }

  /** Mark who speaks now on the roster, without rebuilding it (levels come 5 times a second). */
  showLevels(levels) {
    this.levels = levels;
    for (const row of this.roster.children) row.classList.toggle('speaking', this.speaking(row.dataset.participant));
  }

  speaking(id) {
    return (this.levels[id] ?? 0) > SPEAKING_LEVEL;
  }

  students() {
    return Object.values(this.state.participants).filter((p) => p.role === 'student');
  }

  row(participant) {
    const row = document.createElement('tr');
    row.dataset.participant = participant.id;
    row.classList.toggle('away', !participant.connected);
    row.classList.toggle('speaking', this.speaking(participant.id));
    const presence = `${participant.connected ? 'connected' : 'reconnecting'}${participant.muted ? ' · muted' : ''}`;
    for (const text of [participant.name, participant.role, presence]) {
      const cell = document.createElement('td');
      cell.textContent = text; // names are typed by students: never innerHTML
      row.append(cell);
    }
    row.firstElementChild.title = participant.name; // a long name is cut with an ellipsis (style.css)
    const cell = document.createElement('td');
    if (participant.role === 'student') {
      const mute = document.createElement('button');
      mute.textContent = participant.forced_muted ? 'Unmute' : 'Mute';
      mute.dataset.mute = participant.id;
      mute.setAttribute('aria-pressed', String(participant.forced_muted));
      mute.title = participant.forced_muted ? `Let ${participant.name} speak again` : `Mute ${participant.name}`;
      cell.append(mute);
    }
    if (participant.role !== 'teacher') {
      const kick = document.createElement('button');
      kick.textContent = 'Kick';
      kick.dataset.kick = participant.id;
      kick.title = `Remove ${participant.name} from the practical`;
      cell.append(kick);
    }
    row.append(cell);
    return row;
  }
}
