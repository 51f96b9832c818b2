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
    /** @type {{id: string, title: string, description: string, steps: Step[], mistake_penalty: number, time_bonus: object|null}|null} */
    this.challenge = null;
    /** How students get to stations: 'auto' | 'teacher' | 'choose'; and whether the scene declares stations. */
    this.stationRules = { declared: false, assignment: 'auto', groupSize: null };
    /** @type {Map<number, Station>} */
    this.stations = new Map();
    /** @type {Record<string, Record<string, boolean|number|string>>} object id -> property id -> value */
    this.properties = {};
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
          station.progress.started = event.t;
          this.openSteps(station, event.t);
        }
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
