/**
 * The wire protocol of the room socket, as the browser speaks it.
 *
 * This is the JavaScript mirror of realtime/protocol.py (documented in
 * docs/protocol.md); every size, offset and number here must match that file
 * byte for byte. tests/browser/test_protocol_parity.py checks that frames encoded here
 * decode in Python and the other way round, so a drift shows up as a failing
 * test rather than as avatars flying off into space.
 *
 * Two kinds of frames share one WebSocket: JSON text frames with a `type` for
 * control messages and events, and little-endian binary frames for the
 * high-rate data (poses and object transforms).
 *
 * The page speaks versions 2 and 1. It asks for 2 in `join`; `welcome.protocol`
 * says which the server chose. Version 2 (realtime/codec_v2.py) sends the same
 * poses and transforms quantized: positions as u16 on the room's grid
 * (`welcome.grid`), rotations as "smallest three" in a u32, and no bytes at all
 * for a hand no controller tracks (the receiver rests it below the head,
 * resthands.js). A v2 pose is 16 to 36 bytes instead of 92.
 *
 * @module protocol
 */

import { restingHand } from './resthands.js';

/** The highest version this page speaks (it speaks every one down to 1). */
export const PROTOCOL_VERSION = 2;

/** Floats in a pose: head, left hand, right hand; each position xyz then quaternion xyzw. */
export const POSE_FLOATS = 21;
/** Floats in an object transform: position xyz then quaternion xyzw. */
export const TRANSFORM_FLOATS = 7;

/** Pose flags: which hands are really tracked (rather than placed by the client). */
export const FLAG_LEFT_TRACKED = 0x01;
export const FLAG_RIGHT_TRACKED = 0x02;

/** First byte of every binary frame. */
export const BinaryKind = Object.freeze({ POSE: 0x01, OBJECT_MOVE: 0x02, POSE_V2: 0x03, TICK: 0x10, TICK_V2: 0x11 });

/** Byte sizes of the fixed layouts (CLIENT_POSE, CLIENT_OBJECT_MOVE, TICK_HEADER, POSE_RECORD, OBJECT_RECORD). */
export const CLIENT_POSE_BYTES = 8 + 4 * POSE_FLOATS;
export const CLIENT_OBJECT_MOVE_BYTES = 8 + 4 * TRANSFORM_FLOATS;
export const TICK_HEADER_BYTES = 16;
export const POSE_RECORD_BYTES = 8 + 4 * POSE_FLOATS;
export const OBJECT_RECORD_BYTES = 4 + 4 * TRANSFORM_FLOATS;

/** Version 2 sizes: a quantized position (3 u16), rotation (u32), and the two as one head or hand block. */
export const POSITION_BYTES = 6;
export const ROTATION_BYTES = 4;
export const BLOCK_BYTES = POSITION_BYTES + ROTATION_BYTES;
/** POSE_V2 without hands (kind, flags, stamp, head); each tracked hand adds a block. */
export const POSE_V2_BYTES = 6 + BLOCK_BYTES;
/** TICK_V2 header (kind, flags, P, O, tick, event_seq), head record (slot, flags, stamp, head), object record. */
export const TICK_V2_HEADER_BYTES = 14;
export const HEAD_RECORD_BYTES = 7 + BLOCK_BYTES;
export const OBJECT_RECORD_V2_BYTES = 4 + BLOCK_BYTES;
/** Quantized positions run 0..GRID_MAX on each axis of the grid. */
export const GRID_MAX = 0xffff;

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
 * The grid quantized positions sit on (`welcome.grid`): position u on axis a
 * means origin[a] + u * step[a] metres, u in 0..GRID_MAX.
 * @typedef {object} Grid
 * @property {number[]} origin [x, y, z] metres
 * @property {number[]} step [sx, sy, sz] metres, > 0
 */

/**
 * Check a `welcome.grid` and freeze it.
 * @param {unknown} grid
 * @returns {Grid}
 */
export function readGrid(grid) {
  const triple = (v, positive) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  if (!grid || !triple(grid.origin, false) || !triple(grid.step, true)) {
    throw new Error('welcome.grid must be {"origin": [x, y, z], "step": [sx, sy, sz]} with finite numbers and steps above 0.');
  }
  return Object.freeze({ origin: Object.freeze([...grid.origin]), step: Object.freeze([...grid.step]) });
}

/**
 * A coordinate on the grid, clamped to its edge (the spec's rule for positions outside it).
 * @param {number} value metres
 * @param {number} axis 0 x, 1 y, 2 z
 * @param {Grid} grid
 * @returns {number} u in 0..GRID_MAX
 */
export function quantize(value, axis, grid) {
  if (!Number.isFinite(value)) throw new Error(`A position must be a finite number, not ${value}.`);
  const u = Math.round((value - grid.origin[axis]) / grid.step[axis]);
  return Math.min(GRID_MAX, Math.max(0, u));
}

/**
 * @param {number} u 0..GRID_MAX
 * @param {number} axis 0 x, 1 y, 2 z
 * @param {Grid} grid
 * @returns {number} metres
 */
export function dequantize(u, axis, grid) {
  return grid.origin[axis] + u * grid.step[axis];
}

/** Scale of a "smallest three" component: |c| <= 1/sqrt(2) maps to -511..511 around 512. */
const ROTATION_SCALE = Math.SQRT2 * 511;

/**
 * Pack a rotation as "smallest three" (one u32): bits 30..31 the index of the
 * largest-magnitude component (x, y, z, w = 0..3; the first if several tie),
 * negated first so that it is >= 0; bits 20..29, 10..19, 0..9 the other three
 * in x, y, z, w order, each round(c * sqrt(2) * 511) + 512.
 * @param {ArrayLike<number>} q quaternion x, y, z, w (unit; it is normalized first)
 * @param {number} [offset] where q starts in the array
 * @returns {number} u32
 */
export function packRotation(q, offset = 0) {
  const norm = Math.sqrt(q[offset] ** 2 + q[offset + 1] ** 2 + q[offset + 2] ** 2 + q[offset + 3] ** 2);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new Error('A rotation must be a quaternion of finite numbers, not all zero.');
  const c = [q[offset] / norm, q[offset + 1] / norm, q[offset + 2] / norm, q[offset + 3] / norm];
  let largest = 0;
  for (let i = 1; i < 4; i++) if (Math.abs(c[i]) > Math.abs(c[largest])) largest = i;
  const sign = c[largest] < 0 ? -1 : 1;
  let packed = largest * 2 ** 30;
  let shift = 20;
  for (let i = 0; i < 4; i++) {
    if (i === largest) continue;
    const u = Math.round(c[i] * sign * ROTATION_SCALE) + 512;
    packed += Math.min(1023, Math.max(1, u)) * 2 ** shift;
    shift -= 10;
  }
  return packed;
}

/**
 * Unpack a "smallest three" u32 into a quaternion. Throws if a component is
 * u = 0 (never written) or the three stored ones cannot belong to a unit
 * quaternion (sum of squares over 1.01), as the server refuses such a pose.
 * @param {number} packed u32
 * @param {Float32Array|number[]} out receives x, y, z, w at `offset`
 * @param {number} [offset]
 * @returns {Float32Array|number[]} out
 */
export function unpackRotation(packed, out, offset = 0) {
  const largest = packed >>> 30;
  let sum = 0;
  let shift = 20;
  for (let i = 0; i < 4; i++) {
    if (i === largest) continue;
    const u = (packed >>> shift) & 0x3ff;
    if (u === 0) throw new Error('A rotation component of 0 is not valid (components are stored as 1..1023).');
    const c = (u - 512) / ROTATION_SCALE;
    out[offset + i] = c;
    sum += c * c;
    shift -= 10;
  }
  if (sum > 1.01) throw new Error('A rotation whose three smallest components square to more than 1 is not a rotation.');
  out[offset + largest] = Math.sqrt(Math.max(0, 1 - sum));
  return out;
}

/** Write a POSITION then ROTATION block for 7 floats at `from`. */
function writeBlock(view, at, values, from, grid) {
  for (let a = 0; a < 3; a++) view.setUint16(at + 2 * a, quantize(values[from + a], a, grid), true);
  view.setUint32(at + POSITION_BYTES, packRotation(values, from + 3), true);
}

/** Read a block at `at` into 7 floats of `out` at `to`. */
function readBlock(view, at, out, to, grid) {
  for (let a = 0; a < 3; a++) out[to + a] = dequantize(view.getUint16(at + 2 * a, true), a, grid);
  unpackRotation(view.getUint32(at + POSITION_BYTES, true), out, to + 3);
}

const HAND_BITS = [FLAG_LEFT_TRACKED, FLAG_RIGHT_TRACKED];

function handsIn(flags) {
  return (flags & FLAG_LEFT_TRACKED ? 1 : 0) + (flags & FLAG_RIGHT_TRACKED ? 1 : 0);
}

/**
 * Encode this client's pose as POSE_V2 (u8 kind, u8 flags, u32 stamp, head
 * block, then a block per tracked hand): 16, 26 or 36 bytes. Untracked hands
 * are left out; the pose's floats for them are not read.
 * @param {ArrayLike<number>} pose 21 floats, as for encodePose
 * @param {number} stamp u32 milliseconds
 * @param {number} flags FLAG_* bits (others are dropped)
 * @param {Grid} grid from the welcome
 * @returns {ArrayBuffer}
 */
export function encodePoseV2(pose, stamp, flags, grid) {
  if (pose.length !== POSE_FLOATS) throw new Error(`Expected ${POSE_FLOATS} floats, got ${pose.length}.`);
  flags &= FLAG_LEFT_TRACKED | FLAG_RIGHT_TRACKED;
  const buffer = new ArrayBuffer(POSE_V2_BYTES + BLOCK_BYTES * handsIn(flags));
  const view = new DataView(buffer);
  view.setUint8(0, BinaryKind.POSE_V2);
  view.setUint8(1, flags);
  view.setUint32(2, stamp >>> 0, true);
  writeBlock(view, 6, pose, 0, grid);
  let at = POSE_V2_BYTES;
  for (let hand = 0; hand < 2; hand++) {
    if (!(flags & HAND_BITS[hand])) continue;
    writeBlock(view, at, pose, 7 + 7 * hand, grid);
    at += BLOCK_BYTES;
  }
  return buffer;
}

/**
 * Decode a server TICK_V2 frame into the same TickFrame as decodeTick: the
 * header, P head records, the hand blocks of the tracked hands, O object
 * records. A hand its sender does not track comes back resting below its head
 * (resthands.js), where the sender's page drew it. Throws if the lengths do
 * not add up (14 + 17P + 10H + 14O bytes, H the tracked hands) or a rotation
 * is not one, like decode_tick_v2 in realtime/codec_v2.py.
 * @param {ArrayBuffer} buffer
 * @param {Grid} grid from the welcome
 * @returns {TickFrame}
 */
export function decodeTickV2(buffer, grid) {
  const view = new DataView(buffer);
  if (buffer.byteLength < TICK_V2_HEADER_BYTES || view.getUint8(0) !== BinaryKind.TICK_V2) {
    throw new Error('Not a version 2 tick frame.');
  }
  const nPoses = view.getUint16(2, true);
  const nObjects = view.getUint16(4, true);
  const objectsStart = (hands) => TICK_V2_HEADER_BYTES + nPoses * HEAD_RECORD_BYTES + hands * BLOCK_BYTES;
  const atLeast = objectsStart(0) + nObjects * OBJECT_RECORD_V2_BYTES;
  if (buffer.byteLength < atLeast) {
    throw new Error(`Tick frame should be at least ${atLeast} bytes, got ${buffer.byteLength}.`);
  }
  let hands = 0;
  for (let i = 0; i < nPoses; i++) hands += handsIn(view.getUint8(TICK_V2_HEADER_BYTES + i * HEAD_RECORD_BYTES + 2));
  const expected = atLeast + hands * BLOCK_BYTES;
  if (buffer.byteLength !== expected) {
    throw new Error(`Tick frame should be ${expected} bytes, got ${buffer.byteLength}.`);
  }
  const poses = [];
  let hand = objectsStart(0);
  for (let i = 0, at = TICK_V2_HEADER_BYTES; i < nPoses; i++, at += HEAD_RECORD_BYTES) {
    const flags = view.getUint8(at + 2);
    const pose = new Float32Array(POSE_FLOATS);
    readBlock(view, at + 7, pose, 0, grid);
    for (let side = 0; side < 2; side++) {
      if (flags & HAND_BITS[side]) {
        readBlock(view, hand, pose, 7 + 7 * side, grid);
        hand += BLOCK_BYTES;
      } else {
        restingHand(pose, side, pose, 7 + 7 * side);
      }
    }
    poses.push({ slot: view.getUint16(at, true), flags, stamp: view.getUint32(at + 3, true), pose });
  }
  const objects = [];
  for (let i = 0, at = objectsStart(hands); i < nObjects; i++, at += OBJECT_RECORD_V2_BYTES) {
    const transform = new Float32Array(TRANSFORM_FLOATS);
    readBlock(view, at + 4, transform, 0, grid);
    objects.push({ index: view.getUint16(at, true), holder: view.getUint16(at + 2, true), transform });
  }
  return {
    tick: view.getUint32(6, true),
    eventSeq: view.getUint32(10, true),
    full: (view.getUint8(1) & TICK_FULL) !== 0,
    poses,
    objects,
  };
}

/**
 * Decode a server tick frame of either version, by its kind byte.
 * @param {ArrayBuffer} buffer
 * @param {Grid|null} grid from the welcome (needed for version 2)
 * @returns {TickFrame}
 */
export function decodeTickFrame(buffer, grid) {
  const kind = buffer.byteLength ? new DataView(buffer).getUint8(0) : -1;
  if (kind === BinaryKind.TICK_V2) {
    if (!grid) throw new Error('A version 2 tick frame came before a welcome with its grid.');
    return decodeTickV2(buffer, grid);
  }
  return decodeTick(buffer);
}

/**
 * Control messages a client sends, one builder per type (the pydantic models
 * Join, Ping, Grab, ... in protocol.py). Building them here keeps every field
 * name in one place on this side of the wire.
 */
export const messages = Object.freeze({
  /**
   * @param {string} token
   * @param {number|null} lastSeq resume after this event, or null for a plain join
   * @param {number|null} [protocol] the highest version we speak; null leaves it out (a server
   *   older than version 2 refuses the field, and then means 1)
   */
  join: (token, lastSeq, protocol = PROTOCOL_VERSION) => ({
    type: 'join',
    token,
    ...(lastSeq == null ? {} : { last_seq: lastSeq }),
    ...(protocol == null ? {} : { protocol }),
  }),
  /** @param {number} tick the newest tick frame processed (version 2: lets the server judge our throughput) */
  ack: (tick) => ({ type: 'ack', tick }),
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
