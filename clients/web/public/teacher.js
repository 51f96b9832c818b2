/**
 * The teacher's panel: who is in the practical, and the controls that steer
 * it (remove a student, lock the door, pause interaction, gather everyone,
 * reset the equipment, end the practical), and the voice controls: mute a
 * student or everyone, and broadcast the teacher's voice to every zone.
 *
 * The panel only sends requests; the server checks the teacher's role and
 * answers with events, and the panel redraws from the room state, so what it
 * shows is what the room did, not what was clicked.
 *
 * @module teacher
 */

import { messages } from './protocol.js';
import { SPEAKING_LEVEL } from './voicebar.js';

/** How long "End practical" waits for the confirming second click. */
const CONFIRM_MS = 4000;

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
    this.buttons = Object.fromEntries([...root.querySelectorAll('button[data-action]')].map((b) => [b.dataset.action, b]));
    this.endArmedUntil = 0;
    const send = (message) => connection.send(message);
    const actions = {
      lock: () => send(messages.lock(!state.locked)),
      freeze: () => send(messages.freeze(!state.frozen)),
      summon: () => send(messages.summon(rig.floorPoint())),
      reset: () => send(messages.reset()),
      // The server takes one participant per mute message.
      muteAll: () => {
        for (const p of this.students()) if (!p.forced_muted) send(messages.mute(true, p.id));
      },
      broadcast: () => send(messages.broadcast(!state.broadcast.has(state.me.id))),
      end: () => {
        // A misclick must not end a class: the first click only arms the button.
        if (performance.now() < this.endArmedUntil) {
          send(messages.end());
        } else {
          this.endArmedUntil = performance.now() + CONFIRM_MS;
          setTimeout(() => this.render(), CONFIRM_MS);
        }
        this.render();
      },
    };
    for (const [action, button] of Object.entries(this.buttons)) button.addEventListener('click', actions[action]);
    this.roster.addEventListener('click', (event) => {
      const { kick, mute } = event.target.closest('button')?.dataset ?? {};
      if (kick) send(messages.kick(kick));
      if (mute) send(messages.mute(!state.participants[mute]?.forced_muted, mute));
    });
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
    this.buttons.end.textContent = performance.now() < this.endArmedUntil ? 'Click again to end' : 'End practical';
    const rows = Object.values(this.state.participants)
      .sort((a, b) => (a.role === 'teacher') - (b.role === 'teacher') || a.name.localeCompare(b.name))
      .map((participant) => this.row(participant));
    this.roster.replaceChildren(...rows);
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
