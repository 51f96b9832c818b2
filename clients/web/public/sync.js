/**
 * What this page tells the room many times a second: its pose, and the
 * transforms of the objects it holds, as binary frames.
 *
 * Frames go out at the room's tick rate (sending faster is wasted: the room
 * forwards at most one pose per tick) and only when something changed, which
 * spares a student on a weak link; connection.js pings when nothing moves.
 * A pose goes out as version 2 (quantized, 16 to 36 bytes) when the welcome
 * chose it, as version 1 (92 bytes) for an older server.
 *
 * @module sync
 */

import { POSE_FLOATS, TRANSFORM_FLOATS, encodeObjectMove, encodePose, encodePoseV2, nowStamp } from './protocol.js';

/** Smallest change worth sending, in metres (or quaternion units): well below what anyone can see. */
const EPSILON = 1e-4;
/** A hold that does not move is confirmed this many times per lease: the room releases silent holds. */
const REFRESHES_PER_LEASE = 3;

export class Sync {
  /**
   * @param {import('./connection.js').Connection} connection
   * @param {import('./state.js').RoomState} state
   * @param {import('./rig.js').Rig} rig
   * @param {import('./holding.js').Holding} holding
   */
  constructor(connection, state, rig, holding) {
    this.connection = connection;
    this.state = state;
    this.rig = rig;
    this.holding = holding;
    this.pose = new Float32Array(POSE_FLOATS);
    this.sentPose = new Float32Array(POSE_FLOATS).fill(NaN);
    this.sentFlags = -1;
    this.transform = new Float32Array(TRANSFORM_FLOATS);
    /** @type {Map<string, {transform: Float32Array, at: number}>} last move sent per held object */
    this.sentMoves = new Map();
    this.timer = 0;
  }

  /**
   * After each welcome: send at the room's tick rate, and resend everything
   * (a room that lost us put us back at a spawn point).
   * @param {object} welcome
   */
  rejoined(welcome) {
    this.sentPose.fill(NaN);
    this.sentMoves.clear();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.send(), 1000 / welcome.tick_rate);
  }

  send() {
    if (this.connection.state !== 'connected' || !this.rig.placed) return;
    const stamp = nowStamp();
    const flags = this.rig.readPose(this.pose);
    if (flags !== this.sentFlags || changed(this.pose, this.sentPose)) {
      const { protocol, grid } = this.connection;
      this.connection.sendBinary(protocol >= 2 ? encodePoseV2(this.pose, stamp, flags, grid) : encodePose(this.pose, stamp, flags));
      this.sentPose.set(this.pose);
      this.sentFlags = flags;
    }
    const now = performance.now();
    for (const id of this.holding.ids()) {
      const transform = this.holding.transform(id, this.transform);
      const sent = this.sentMoves.get(id);
      const refreshMs = (this.state.objects[id].lease * 1000) / REFRESHES_PER_LEASE;
      if (sent && !changed(transform, sent.transform) && now - sent.at < refreshMs) continue;
      this.connection.sendBinary(encodeObjectMove(this.state.objects[id].index, transform, stamp));
      this.sentMoves.set(id, { transform: Float32Array.from(transform), at: now });
    }
    for (const id of this.sentMoves.keys()) if (!this.holding.isHeld(id)) this.sentMoves.delete(id);
  }
}

function changed(a, b) {
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) < EPSILON)) return true;
  return false;
}
