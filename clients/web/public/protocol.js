/**
 * The wire protocol of the room socket, as the browser speaks it.
 *
 * This is the JavaScript mirror of realtime/protocol.py (documented in
 * docs/protocol.md); every size, offset and number here must match that file
 * byte for byte. tests/browser/test_protocol.py checks that frames encoded here
 * decode in Python and the other way round, so a drift shows up as a failing
 * test rather than as avatars flying off into space.
 *
 * Two kinds of frames share one WebSocket: JSON text frames with a `type` for
 * control messages and events, and little-endian binary frames for the
 * high-rate data (poses and object transforms).
 *
 * @module protocol
 */

export const PROTOCOL_VERSION = 1;

/** Floats in a pose: head, left hand, right hand; each position xyz then quaternion xyzw. */
export const POSE_FLOATS = 21;
/** Floats in an object transform: position xyz then quaternion xyzw. */
export const TRANSFORM_FLOATS = 7;

/** Pose flags: which hands are really tracked (rather than placed by the client). */
export const FLAG_LEFT_TRACKED = 0x01;
export const FLAG_RIGHT_TRACKED = 0x02;

/** First byte of every binary frame. */
export const BinaryKind = Object.freeze({ POSE: 0x01, OBJECT_MOVE: 0x02, TICK: 0x10 });

/** Byte sizes of the fixed layouts (CLIENT_POSE, CLIENT_OBJECT_MOVE, TICK_HEADER, POSE_RECORD, OBJECT_RECORD). */
export const CLIENT_POSE_BYTES = 8 + 4 * POSE_FLOATS;
export const CLIENT_OBJECT_MOVE_BYTES = 8 + 4 * TRANSFORM_FLOATS;
export const TICK_HEADER_BYTES = 16;
export const POSE_RECORD_BYTES = 8 + 4 * POSE_FLOATS;
export const OBJECT_RECORD_BYTES = 4 + 4 * TRANSFORM_FLOATS;

/** Holder slot of an object nobody holds. */
export const NO_HOLDER = 0xffff;
/** Tick flag: the frame carries every pose and object, not only the changes. */
export const TICK_FULL = 0x01;

/** WebSocket close codes the server sends, by name (CloseCode in protocol.py). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  LEFT: 4000,
  UNAUTHORIZED: 4001,
  REPLACED: 4002,
  KICKED: 4003,
  SESSION_ENDED: 4004,
  ROOM_FULL: 4005,
  ROOM_LOCKED: 4006,
  JOIN_TIMEOUT: 4007,
  RATE_LIMITED: 4008,
  IDLE: 4010,
  /** The practical is on another node now (a `room_elsewhere` error before it names its socket): go there at once. */
  MOVED: 4011,
  /** The standard "try again later": the practical is between nodes, or this node cannot reach Redis. */
  TRY_AGAIN: 1013,
  TOO_SLOW: 4013,
});

/**
 * Stamp for outgoing frames: this page's clock in whole milliseconds, wrapped
 * to u32. Receivers interpolate on the sender's timeline, so it must be
 * monotonic, which performance.now() is and Date.now() is not.
 * @returns {number}
 */
export function nowStamp() {
  return Math.floor(performance.now()) >>> 0;
}

/**
 * Encode this client's pose (CLIENT_POSE: u8 kind, u8 flags, u16 reserved, u32 stamp, 21 f32).
 * @param {ArrayLike<number>} pose 21 floats
 * @param {number} stamp u32 milliseconds
 * @param {number} flags FLAG_* bits
 * @returns {ArrayBuffer}
 */
export function encodePose(pose, stamp, flags) {
  const buffer = new ArrayBuffer(CLIENT_POSE_BYTES);
  const view = new DataView(buffer);
  view.setUint8(0, BinaryKind.POSE);
  view.setUint8(1, flags);
  view.setUint32(4, stamp >>> 0, true);
  writeFloats(view, 8, pose, POSE_FLOATS);
  return buffer;
}

/**
 * Encode the transform of an object this client holds
 * (CLIENT_OBJECT_MOVE: u8 kind, u8 reserved, u16 object index, u32 stamp, 7 f32).
 * @param {number} index the object's index from the snapshot
 * @param {ArrayLike<number>} transform 7 floats
 * @param {number} stamp u32 milliseconds
 * @returns {ArrayBuffer}
 */
export function encodeObjectMove(index, transform, stamp) {
  const buffer = new ArrayBuffer(CLIENT_OBJECT_MOVE_BYTES);
  const view = new DataView(buffer);
  view.setUint8(0, BinaryKind.OBJECT_MOVE);
  view.setUint16(2, index, true);
  view.setUint32(4, stamp >>> 0, true);
  writeFloats(view, 8, transform, TRANSFORM_FLOATS);
  return buffer;
}

/**
 * @typedef {object} PoseRecord
 * @property {number} slot participant slot (see the snapshot's participants)
 * @property {number} flags FLAG_* bits as the sender set them
 * @property {number} stamp the sender's u32 millisecond clock
 * @property {Float32Array} pose 21 floats
 *
 * @typedef {object} ObjectRecord
 * @property {number} index object index
 * @property {number} holder holder's slot or NO_HOLDER
 * @property {Float32Array} transform 7 floats
 *
 * @typedef {object} TickFrame
 * @property {number} tick
 * @property {number} eventSeq sequence number of the last event sent before this frame
 * @property {boolean} full the frame holds everything, not only changes
 * @property {PoseRecord[]} poses
 * @property {ObjectRecord[]} objects
 */

/**
 * Decode a server tick frame (TICK_HEADER then POSE_RECORDs then OBJECT_RECORDs).
 * Throws if the lengths do not add up, like decode_tick in protocol.py.
 * @param {ArrayBuffer} buffer
 * @returns {TickFrame}
 */
export function decodeTick(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < TICK_HEADER_BYTES || view.getUint8(0) !== BinaryKind.TICK) {
    throw new Error('Not a tick frame.');
  }
  const nPoses = view.getUint16(2, true);
  const nObjects = view.getUint16(4, true);
  const expected = TICK_HEADER_BYTES + nPoses * POSE_RECORD_BYTES + nObjects * OBJECT_RECORD_BYTES;
  if (buffer.byteLength !== expected) {
    throw new Error(`Tick frame should be ${expected} bytes, got ${buffer.byteLength}.`);
  }
  const poses = [];
  let offset = TICK_HEADER_BYTES;
  for (let i = 0; i < nPoses; i++, offset += POSE_RECORD_BYTES) {
    poses.push({
      slot: view.getUint16(offset, true),
      flags: view.getUint8(offset + 2),
      stamp: view.getUint32(offset + 4, true),
      pose: readFloats(view, offset + 8, POSE_FLOATS),
    });
  }
  const objects = [];
  for (let i = 0; i < nObjects; i++, offset += OBJECT_RECORD_BYTES) {
    objects.push({
      index: view.getUint16(offset, true),
      holder: view.getUint16(offset + 2, true),
      transform: readFloats(view, offset + 4, TRANSFORM_FLOATS),
    });
  }
  return {
    tick: view.getUint32(8, true),
    eventSeq: view.getUint32(12, true),
    full: (view.getUint8(1) & TICK_FULL) !== 0,
    poses,
    objects,
  };
}

/**
 * Control messages a client sends, one builder per type (the pydantic models
 * Join, Ping, Grab, ... in protocol.py). Building them here keeps every field
 * name in one place on this side of the wire.
 */
export const messages = Object.freeze({
  /** @param {string} token @param {number|null} lastSeq resume after this event, or null for a plain join */
  join: (token, lastSeq) => (lastSeq == null ? { type: 'join', token } : { type: 'join', token, last_seq: lastSeq }),
  ping: () => ({ type: 'ping' }),
  leave: () => ({ type: 'leave' }),
  /** @param {string} object object id */
  grab: (object) => ({ type: 'grab', object }),
  /** @param {string} object object id */
  release: (object) => ({ type: 'release', object }),
  /** @param {string} participant participant id */
  kick: (participant) => ({ type: 'kick', participant }),
  /** @param {string} participant the id of someone removed: teacher, let them back in */
  unkick: (participant) => ({ type: 'unkick', participant }),
  /** @param {boolean} locked */
  lock: (locked) => ({ type: 'lock', locked }),
  /** @param {boolean} frozen */
  freeze: (frozen) => ({ type: 'freeze', frozen }),
  /** @param {number[]} position [x, y, z] in metres */
  summon: (position) => ({ type: 'summon', position }),
  reset: () => ({ type: 'reset' }),
  end: () => ({ type: 'end' }),
  /** @param {string} sdp a complete offer, ICE gathering finished (no trickle ICE) */
  rtcOffer: (sdp) => ({ type: 'rtc_offer', sdp }),
  rtcClose: () => ({ type: 'rtc_close' }),
  /**
   * @param {boolean} muted
   * @param {string} [participant] someone else's id (teacher only); omitted to mute yourself
   */
  mute: (muted, participant) => (participant === undefined ? { type: 'mute', muted } : { type: 'mute', participant, muted }),
  /** @param {boolean} on teacher: speak to every zone at full level, or stop */
  broadcast: (on) => ({ type: 'broadcast', on }),
  /**
   * Set an interactive property of an object (a burner on, a dial to 7).
   * @param {string} object object id
   * @param {string} property property id
   * @param {boolean|number|string} value
   * @param {string} [id] request id, echoed as `re` in an error
   */
  interact: (object, property, value, id) => withId({ type: 'interact', object, property, value }, id),
  /**
   * Answer a checkpoint question of our station's challenge.
   * @param {string} step step id
   * @param {number} value a choice's index from 0, or a number
   * @param {string} [id] request id, echoed as `re` in an error
   */
  answer: (step, value, id) => withId({ type: 'answer', step, value }, id),
  /** @param {number} station student, where the scene lets students choose: work at this station */
  chooseStation: (station) => ({ type: 'choose_station', station }),
  /**
   * @param {string} participant a student's id
   * @param {number|null} station teacher: put them at this station (null: at none)
   */
  assignStation: (participant, station) => ({ type: 'assign_station', participant, station }),
  /**
   * Student: ask for the next hint of an open step at our station.
   * @param {string} step step id
   * @param {string} [id] request id, echoed as `re` in an error (`hint_cooldown` carries `retry_after`)
   */
  hint: (step, id) => withId({ type: 'hint', step }, id),
  /**
   * Teacher: push a hint-ladder rung (level 1-3) or free text (exactly one of the two).
   * @param {{participant: string}|{station: number}|{all: true}} to
   * @param {number|null} level 1 nudge, 2 specific, 3 bottom-out; null with text
   * @param {string|null} [text] free text (at most 300 characters); null with a level
   */
  pushHint: (to, level, text = null) => ({ type: 'push_hint', to, level, text }),
});

function withId(message, id) {
  return id === undefined ? message : { ...message, id };
}

function writeFloats(view, offset, values, count) {
  if (values.length !== count) throw new Error(`Expected ${count} floats, got ${values.length}.`);
  for (let i = 0; i < count; i++) view.setFloat32(offset + 4 * i, values[i], true);
}

function readFloats(view, offset, count) {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, true);
  return out;
}
