/**
 * Where a hand no controller tracks rests: below the head, a little forward
 * and to its side, turned with the head's heading only (so nodding or
 * looking up does not swing the hands about).
 *
 * One rule for both ends of the wire: rig.js places this page's own
 * untracked hands with it (and sends them in a version 1 pose), and
 * protocol.js places the untracked hands of everyone else with it, since a
 * version 2 pose leaves them out (docs/protocol.md, POSE_V2). Someone's hands
 * therefore look the same whichever version their page and ours speak.
 *
 * Plain arithmetic on arrays, no three.js: the codec imports it.
 *
 * @module resthands
 */

/** Hand offsets in the head's frame (x right, y up, -z forward, metres): left, then right. */
export const RESTING_HANDS = Object.freeze([
  Object.freeze([-0.22, -0.5, -0.3]),
  Object.freeze([0.22, -0.5, -0.3]),
]);

/**
 * Place a resting hand for a head.
 *
 * The heading is the yaw of the head's rotation in Y-X-Z Euler order (the
 * order three.js uses for a camera; near straight up or down it falls back
 * the way three.js's Euler does), and the hand's rotation is that yaw alone.
 *
 * @param {ArrayLike<number>} head 7 floats: position x, y, z, then quaternion x, y, z, w (unit)
 * @param {0|1} side 0 left, 1 right
 * @param {Float32Array|number[]} out receives 7 floats: the hand's position then quaternion
 * @param {number} [offset] where in `out` to write
 * @returns {Float32Array|number[]} out
 */
export function restingHand(head, side, out, offset = 0) {
  const [x, y, z, w] = [head[3], head[4], head[5], head[6]];
  const m23 = 2 * (y * z - w * x);
  const yaw =
    Math.abs(m23) < 0.9999999
      ? Math.atan2(2 * (x * z + w * y), 1 - 2 * (x * x + y * y))
      : Math.atan2(-2 * (x * z - w * y), 1 - 2 * (y * y + z * z));
  const cos = Math.cos(yaw);
  const sin = Math.sin(yaw);
  const [hx, hy, hz] = RESTING_HANDS[side];
  out[offset] = head[0] + hx * cos + hz * sin;
  out[offset + 1] = head[1] + hy;
  out[offset + 2] = head[2] - hx * sin + hz * cos;
  out[offset + 3] = 0;
  out[offset + 4] = Math.sin(yaw / 2);
  out[offset + 5] = 0;
  out[offset + 6] = Math.cos(yaw / 2);
  return out;
}
