/**
 * The bottom-out hint's demonstration: a see-through copy of a piece of
 * equipment that moves from where the real one is to where it should go (the
 * beaker gliding onto the tripod), a few times, and then stays there, faint,
 * until the step is done or another hint comes. Showing the action is the
 * last rung of the ladder: after the nudge and the pointed hint, the student
 * sees what to do instead of reading it again.
 *
 * The room says what moves and where to (`demo: {object, to: [x, y, z, qx, qy,
 * qz, qw]}`, docs/protocol.md §15.4); the start is the object's pose as this
 * page draws it now, taken again at each loop, so a beaker someone moved in
 * the meantime starts from where it is.
 *
 * The copy shares the object's geometry but not placing.js's ghost material:
 * that one is shared by every put-down ghost and always shows the same, while
 * this one fades from a clear demonstration to a faint reminder, and it wears
 * the hints' colour (hints.js, highlight.js) so a student never takes it for
 * where the thing in their own hand will land. Like placing.js's ghosts it
 * lives outside the lab's node tree and ignores rays, so nothing picks it,
 * puts things on it or lights it up.
 *
 * @module ghost
 */

import { MeshBasicMaterial, Quaternion, Vector3 } from 'three';

/** One move, start to target, ms; then a short rest at the target before the next loop. */
export const MOVE_MS = 1500;
const REST_MS = 600;
/** Loops shown before the ghost stays at the target. */
export const LOOPS = 3;
/** Opacity while it moves, and once it stays. */
const MOVING_OPACITY = 0.55;
const RESTING_OPACITY = 0.22;

const easeInOut = (u) => (u < 0.5 ? 2 * u * u : 1 - (-2 * u + 2) ** 2 / 2);

export class Demonstration {
  /**
   * @param {import('three').Scene} scene where the ghost is drawn (outside the lab, so no ray meets it)
   * @param {import('./scene.js').Lab} lab the object's node, copied
   * @param {number} color the hints' colour
   */
  constructor(scene, lab, color) {
    this.scene = scene;
    this.lab = lab;
    this.material = new MeshBasicMaterial({ color, transparent: true, opacity: MOVING_OPACITY, depthWrite: false });
    /** @type {{object: string, ghost: import('three').Object3D, from: {p: Vector3, q: Quaternion}, to: {p: Vector3, q: Quaternion}, started: number|null, loop: number}|null} */
    this.shown = null;
  }

  /**
   * Demonstrate a move (a new one replaces the one shown).
   * @param {{object: string, to: number[]}} demo
   * @returns {boolean} whether there is something to show (the lab draws that object)
   */
  show(demo) {
    this.hide();
    const node = this.lab.node(demo.object);
    if (!node || !Array.isArray(demo.to) || demo.to.length !== 7) return false;
    const ghost = node.clone();
    ghost.name = `hint-demo:${demo.object}`;
    ghost.traverse((child) => {
      if (!child.isMesh) return;
      child.material = this.material;
      child.raycast = () => {};
      child.renderOrder = 2;
    });
    const [x, y, z, qx, qy, qz, qw] = demo.to;
    this.shown = {
      object: demo.object,
      ghost,
      from: { p: new Vector3(), q: new Quaternion() },
      to: { p: new Vector3(x, y, z), q: new Quaternion(qx, qy, qz, qw).normalize() },
      started: null,
      loop: 0,
    };
    this.startLoop();
    this.material.opacity = MOVING_OPACITY;
    this.scene.add(ghost);
    return true;
  }

  /** Take the ghost away (the step is done, or another hint came). */
  hide() {
    this.shown?.ghost.removeFromParent();
    this.shown = null;
  }

  /** A loop starts where the real object is now. */
  startLoop() {
    const node = this.lab.node(this.shown.object);
    this.shown.from.p.copy(node.position);
    this.shown.from.q.copy(node.quaternion);
    this.shown.ghost.position.copy(node.position);
    this.shown.ghost.quaternion.copy(node.quaternion);
  }

  /** Each animation frame: move along the loop, or stay at the target once the loops are over. */
  update(nowMs) {
    const shown = this.shown;
    if (!shown || shown.loop >= LOOPS) return;
    shown.started ??= nowMs;
    let elapsed = nowMs - shown.started;
    if (elapsed >= MOVE_MS + REST_MS) {
      shown.loop += 1;
      if (shown.loop >= LOOPS) {
        shown.ghost.position.copy(shown.to.p);
        shown.ghost.quaternion.copy(shown.to.q);
        this.material.opacity = RESTING_OPACITY;
        return;
      }
      shown.started = nowMs;
      elapsed = 0;
      this.startLoop();
    }
    const u = easeInOut(Math.min(1, elapsed / MOVE_MS));
    shown.ghost.position.lerpVectors(shown.from.p, shown.to.p, u);
    shown.ghost.quaternion.slerpQuaternions(shown.from.q, shown.to.q, u);
  }

  /** For tests: what is demonstrated, where the ghost is, and whether it still moves. */
  view() {
    const shown = this.shown;
    if (!shown) return null;
    return {
      object: shown.object,
      name: shown.ghost.name,
      inScene: shown.ghost.parent === this.scene,
      position: shown.ghost.position.toArray(),
      to: shown.to.p.toArray(),
      loop: Math.min(shown.loop, LOOPS),
      moving: shown.loop < LOOPS,
      opacity: this.material.opacity,
    };
  }
}
