/**
 * This page's mirror of the room: who is here, who holds what, whether the
 * teacher has locked or frozen the practical, and the lab challenge: who works
 * at which station, each station's progress and score, and every object's
 * property values.
 *
 * The server is authoritative; this mirror only ever applies what the server
 * said (the welcome snapshot, then sequenced events, then tick frames), in the
 * order it said it. Rendering reads from here and never writes back.
 *
 * @module state
 */

import { NO_HOLDER } from './protocol.js';

/**
 * @typedef {object} Participant
 * @property {string} id
 * @property {number} slot index of the participant's records in tick frames
 * @property {string} name
 * @property {'teacher'|'student'|'observer'} role
 * @property {boolean} connected
 * @property {boolean} muted effective voice mute (self or forced)
 * @property {boolean} forced_muted muted by a teacher: only a teacher lifts it
 *
 * @typedef {object} LabObject
 * @property {string} id
 * @property {number} index index used in binary frames
 * @property {string} title
 * @property {boolean} interactable
 * @property {number} lease seconds a hold lasts without a move or grab
 * @property {string|null} holder participant id of the holder
 * @property {number[]} transform position xyz + quaternion xyzw
 * @property {number|null} station the station whose equipment it is (null: shared)
 * @property {PropertySpec[]} properties its declared properties
 * @property {{id: string, position: number[], rotation: number[]}[]} snap_points
 *
 * @typedef {object} PropertySpec as scene.json declares it (scenes/challenge_format.py, Property)
 * @property {string} id
 * @property {string} [title]
 * @property {'switch'|'number'|'choice'} kind
 * @property {boolean} [interactive] set with `interact` (default true); else only rules set it
 * @property {number} [min]
 * @property {number} [max]
 * @property {number} [step]
 * @property {string} [unit]
 * @property {string[]} [choices]
 *
 * @typedef {object} Progress one station's way through the challenge (engine.py, Progress.public)
 * @property {number|null} started room clock when its first student arrived
 * @property {Record<string, number>} opened step id -> room clock when it opened
 * @property {Record<string, {by: string|null, t: number, points: number}>} done
 * @property {Record<string, number>} mistakes step id -> mistakes made on it
 * @property {number|null} finished
 * @property {number} bonus time bonus earned at the finish
 * @property {number} score
 *
 * @typedef {object} Station
 * @property {number} number from 1
 * @property {string} title
 * @property {string[]} members participant ids of the students working there
 * @property {Progress} progress
 * @property {Record<string, string[]>} highlight step id -> the station's objects its condition names
 * @property {Record<string, number>} scores each member's own score
 * @property {Set<string>} overdue steps past their time limit
 *
 * @typedef {object} Step (engine.py, public_challenge)
 * @property {string} id
 * @property {string} text
 * @property {number} points
 * @property {string[]} requires steps that must be done before it opens
 * @property {number|null} time_limit_seconds
 * @property {boolean} highlight
 * @property {{question: string, choices?: string[], number?: {unit: string}}} [checkpoint]
 * @property {number[]} [hint_levels] the rungs of its hint ladder (1 nudge, 2 specific, 3 bottom-out), never their text
 * @property {number|null} [expected_seconds]
 *
 * @typedef {object} StationHints one station's hints (docs/protocol.md §15.4; the snapshot's `hints.stations[i]`)
 * @property {Record<string, number>} levels step id -> the highest rung shown there so far
 * @property {number|null} cooldownUntil room time before which no hint is given there
 * @property {object|null} stuck the current `stuck` flag (station, step, participants, level, signals), or null
 * @property {object|null} last the station's last `hint` event's fields, or null
 */

export class RoomState {
  constructor() {
    /** @type {Participant|null} this page's participant */
    this.me = null;
    /** @type {Record<string, Participant>} */
    this.participants = {};
    /** @type {Record<string, LabObject>} */
    this.objects = {};
    /** @type {{id: string, title: string}|null} */
    this.scene = null;
    this.locked = false;
    this.frozen = false;
    this.ended = false;
    /** @type {Set<string>} ids of teachers speaking to every zone */
    this.broadcast = new Set();
    /** @type {Map<number, string>} slot -> participant id, to read tick frames */
    this.slotOwner = new Map();
    /** @type {string[]} object index -> object id */
    this.objectIds = [];
    /**
     * `hints`: what hints cost and when they come ({nudge_cost, specific_cost, bottom_out_cost, cooldown_seconds, idle_seconds, ...}).
     * @type {{id: string, title: string, description: string, steps: Step[], mistake_penalty: number, time_bonus: object|null, hints?: Record<string, number|boolean>}|null}
     */
    this.challenge = null;
    /** How students get to stations: 'auto' | 'teacher' | 'choose'; and whether the scene declares stations. */
    this.stationRules = { declared: false, assignment: 'auto', groupSize: null };
    /** @type {Map<number, Station>} */
    this.stations = new Map();
    /** @type {Record<string, Record<string, boolean|number|string>>} object id -> property id -> value */
    this.properties = {};
    /** @type {Map<number, StationHints>} station number -> its hint ladder, stuck flag and last hint */
    this.hints = new Map();
    /** @type {Record<string, {id: string, name: string, role: string}>} people the teacher removed, until let back in */
    this.removed = {};
    /** Seconds to add to a room clock reading (`t` of events) to get this page's `performance.now()` in seconds. */
    this.clockOffset = 0;
  }

  /** Apply a `welcome`: who we are, and the snapshot when it carries one. */
  applyWelcome(welcome) {
    this.me = welcome.participant;
    if (welcome.snapshot) this.applySnapshot(welcome.snapshot);
    this.addParticipant(welcome.participant);
  }

  applySnapshot(snapshot) {
    this.scene = snapshot.scene;
    this.locked = snapshot.locked;
    this.frozen = snapshot.frozen;
    this.broadcast = new Set(snapshot.broadcast ?? []);
    this.removed = Object.fromEntries((snapshot.removed ?? []).map((gone) => [gone.id, gone]));
    this.participants = {};
    this.slotOwner.clear();
    for (const participant of snapshot.participants) this.addParticipant(participant);
    this.setObjects(snapshot.objects);
    // The room's clock at the snapshot is "now" here: event times are read against it.
    if (typeof snapshot.now === 'number') this.clockOffset = performance.now() / 1000 - snapshot.now;
    this.challenge = snapshot.challenge ?? null;
    const stations = snapshot.stations ?? { declared: false, assignment: 'auto', list: [] };
    this.stationRules = { declared: stations.declared, assignment: stations.assignment, groupSize: stations.group_size ?? null };
    this.stations = new Map(
      stations.list.map((station) => [station.number, { ...station, members: [...station.members], overdue: new Set() }]),
    );
    this.properties = structuredClone(snapshot.properties ?? {});
    this.hints = new Map(
      (snapshot.hints?.stations ?? []).map((h) => [
        h.station,
        { levels: { ...h.levels }, cooldownUntil: h.cooldown_until ?? null, stuck: h.stuck ?? null, last: h.last ?? null },
      ]),
    );
  }

  /** A station's hints (made empty on first use: a station the snapshot did not list). */
  hintsAt(number) {
    let hints = this.hints.get(number);
    if (!hints) {
      hints = { levels: {}, cooldownUntil: null, stuck: null, last: null };
      this.hints.set(number, hints);
    }
    return hints;
  }

  /**
   * Apply one sequenced event.
   * @param {object} event
   */
  applyEvent(event) {
    switch (event.type) {
      case 'joined':
        this.addParticipant(event.participant);
        break;
      case 'left': {
        const gone = this.participants[event.participant];
        if (gone) {
          if (event.reason === 'kicked') this.removed[gone.id] = { id: gone.id, name: gone.name, role: gone.role };
          delete this.participants[gone.id];
          if (this.slotOwner.get(gone.slot) === gone.id) this.slotOwner.delete(gone.slot);
        }
        break;
      }
      case 'unkicked':
        delete this.removed[event.participant];
        break;
      case 'presence':
        if (this.participants[event.participant]) this.participants[event.participant].connected = event.connected;
        break;
      case 'grabbed':
        this.objects[event.object].holder = event.participant;
        break;
      case 'released':
        this.objects[event.object].holder = null;
        this.objects[event.object].transform = event.transform;
        break;
      case 'locked':
        this.locked = event.locked;
        break;
      case 'frozen':
        this.frozen = event.frozen;
        break;
      case 'reset':
        this.setObjects(event.objects);
        break;
      case 'ended':
        this.ended = true;
        break;
      case 'muted': {
        const target = this.participants[event.participant];
        if (target) Object.assign(target, { muted: event.muted, forced_muted: event.forced });
        break;
      }
      case 'broadcast':
        if (event.on) this.broadcast.add(event.by);
        else this.broadcast.delete(event.by);
        break;
      case 'station':
        this.placeAt(event.participant, event.station);
        break;
      case 'challenge_started': {
        const station = this.stations.get(event.station);
        if (station) {
          // A repeated start is a restart (nobody there, nothing done): its steps open again now.
          station.progress.started = event.t;
          station.progress.opened = {};
          station.overdue.clear();
          this.openSteps(station, event.t);
        }
        // and its hint ladder starts at the foot, with no cooldown and no hint on show
        Object.assign(this.hintsAt(event.station), { levels: {}, cooldownUntil: null, last: null });
        break;
      }
      case 'step_done': {
        const station = this.stations.get(event.station);
        if (station) {
          station.progress.done[event.step] = { by: event.by, t: event.t, points: event.points };
          this.openSteps(station, event.t);
        }
        break;
      }
      case 'mistake': {
        const progress = this.stations.get(event.station)?.progress;
        if (progress) progress.mistakes[event.step] = (progress.mistakes[event.step] ?? 0) + 1;
        break;
      }
      case 'challenge_done': {
        const progress = this.stations.get(event.station)?.progress;
        if (progress) Object.assign(progress, { finished: event.t, bonus: event.bonus, score: event.score });
        break;
      }
      case 'score': {
        const station = this.stations.get(event.station);
        if (station) {
          station.progress.score = event.score;
          Object.assign(station.scores, event.members);
        }
        break;
      }
      case 'step_overdue':
        this.stations.get(event.station)?.overdue.add(event.step);
        break;
      case 'property':
        (this.properties[event.object] ??= {})[event.property] = event.value;
        break;
      case 'hint': {
        const hints = this.hintsAt(event.station);
        const { type: _type, seq: _seq, ...fields } = event;
        hints.last = fields;
        if (event.step && event.level > 0) hints.levels[event.step] = Math.max(hints.levels[event.step] ?? 0, event.level);
        hints.cooldownUntil = event.t + (this.challenge?.hints?.cooldown_seconds ?? 0);
        break;
      }
      case 'stuck': {
        const { type: _type, seq: _seq, ...flag } = event;
        this.hintsAt(event.station).stuck = flag;
        break;
      }
      case 'unstuck':
        this.hintsAt(event.station).stuck = null;
        break;
      default:
        break; // 'summoned' moves this page's rig; 'checkpoint_answer' changes nothing by itself
    }
  }

  /**
   * Apply a tick frame's object records. Pose records go to the avatars and
   * the rig, which need their stamps; the mirror keeps only what the HUD,
   * teacher panel and test hooks read.
   * @param {import('./protocol.js').TickFrame} frame
   */
  applyTick(frame) {
    for (const record of frame.objects) {
      const object = this.objects[this.objectIds[record.index]];
      if (!object) continue;
      object.transform = Array.from(record.transform);
      object.holder = record.holder === NO_HOLDER ? null : (this.slotOwner.get(record.holder) ?? null);
    }
  }

  /** @returns {string|null} the participant id owning a pose slot */
  ownerOf(slot) {
    return this.slotOwner.get(slot) ?? null;
  }

  isTeacher() {
    return this.me?.role === 'teacher';
  }

  /** The room's clock now, as far as this page can tell (seconds). */
  roomNow() {
    return performance.now() / 1000 - this.clockOffset;
  }

  /** @returns {number|null} the station a participant works at */
  stationOf(participant) {
    for (const station of this.stations.values()) if (station.members.includes(participant)) return station.number;
    return null;
  }

  /** Move a participant between stations' member lists (null: off every station). */
  placeAt(participant, number) {
    for (const station of this.stations.values()) station.members = station.members.filter((id) => id !== participant);
    const station = this.stations.get(number);
    if (station) {
      station.members.push(participant);
      station.scores[participant] ??= 0;
    }
  }

  /** Whether a step of a station is open: everything it requires is done. */
  isOpen(station, step) {
    return step.requires.every((id) => id in station.progress.done);
  }

  /** Mark the steps whose prerequisites are now done as opened at `t` (as the engine does). */
  openSteps(station, t) {
    for (const step of this.challenge?.steps ?? []) {
      if (!(step.id in station.progress.opened) && this.isOpen(station, step)) station.progress.opened[step.id] = t;
    }
  }

  /**
   * A station's current step: the first open step not done yet (null before
   * the challenge starts there, and after the last step).
   * @param {number|null} number
   * @returns {Step|null}
   */
  currentStep(number) {
    const station = this.stations.get(number);
    if (!station || !this.challenge || station.progress.started === null) return null;
    return this.challenge.steps.find((step) => !(step.id in station.progress.done) && this.isOpen(station, step)) ?? null;
  }

  addParticipant(participant) {
    this.participants[participant.id] = { ...participant };
    this.slotOwner.set(participant.slot, participant.id);
  }

  setObjects(objects) {
    this.objects = {};
    this.objectIds = [];
    for (const object of objects) {
      this.objects[object.id] = { station: null, properties: [], snap_points: [], ...object };
      this.objectIds[object.index] = object.id;
    }
  }
}
