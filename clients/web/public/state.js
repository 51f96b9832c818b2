/**
 * This page's mirror of the room: who is here, who holds what, and whether
 * the teacher has locked or frozen the practical.
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
    this.participants = {};
    this.slotOwner.clear();
    for (const participant of snapshot.participants) this.addParticipant(participant);
    this.setObjects(snapshot.objects);
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
          delete this.participants[gone.id];
          if (this.slotOwner.get(gone.slot) === gone.id) this.slotOwner.delete(gone.slot);
        }
        break;
      }
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
      default:
        break; // 'summoned' moves this page's rig; the room state itself does not change
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

  addParticipant(participant) {
    this.participants[participant.id] = { ...participant };
    this.slotOwner.set(participant.slot, participant.id);
  }

  setObjects(objects) {
    this.objects = {};
    this.objectIds = [];
    for (const object of objects) {
      this.objects[object.id] = { ...object };
      this.objectIds[object.index] = object.id;
    }
  }
}
