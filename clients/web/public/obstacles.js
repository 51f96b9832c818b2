/**
 * The furniture a person walking on a desktop or phone bumps into, so nobody
 * walks through the bench.
 *
 * A lab's fixed objects often come as one mesh (the sample chemistry lab's
 * floor, bench and shelves are a single node), so their bounding box would
 * wall off the whole room. Instead each step is probed with short horizontal
 * rays at knee and waist height in the direction of travel, against the
 * lab's fixed objects (never equipment, which is picked up, not bumped into).
 * The floor lies below both rays and never blocks. A step that would leave
 * less than BODY_RADIUS between the body's middle and the face a ray hits
 * (measured square to that face, so walking at it slantwise stops as far off
 * as walking straight at it) slides along the face instead, or stops if
 * sliding is blocked too.
 *
 * @module obstacles
 */

import { Raycaster, Vector3 } from 'three';

/** Heights above the floor the body is probed at, metres: knees and waist. */
const PROBE_HEIGHTS = [0.4, 1.0];
/** How close the middle of a walking person comes to furniture, metres. */
const BODY_RADIUS = 0.3;
/** How far ahead the rays look, beyond the step itself: far enough to see a face approached slantwise. */
const LOOK_AHEAD = 2 * BODY_RADIUS;
/** Below this cosine between a walk and a face's normal, the walk runs along the face rather than at it. */
const GRAZING = 0.01;

const origin = new Vector3();
const direction = new Vector3();

export class Obstacles {
  /** @param {import('./scene.js').Lab} lab its fixed objects are the obstacles */
  constructor(lab) {
    this.lab = lab;
    this.raycaster = new Raycaster();
  }

  /**
   * Shorten or turn a step so it keeps clear of furniture.
   * @param {ArrayLike<number>} from the floor point under the person (x, y, z)
   * @param {Vector3} step horizontal, lab space; changed in place
   * @returns {Vector3} `step`
   */
  clip(from, step) {
    const face = this.obstacle(from, step);
    if (!face) return step;
    step.addScaledVector(face, -step.dot(face)); // keep only the part along the face
    if (this.obstacle(from, step)) step.set(0, 0, 0);
    return step;
  }

  /**
   * The face the step would bring the body too close to, as its horizontal
   * unit normal (towards the walker; zero for a face seen edge-on), or null.
   * @param {ArrayLike<number>} from
   * @param {Vector3} step
   * @returns {Vector3|null}
   */
  obstacle(from, step) {
    const length = step.length();
    if (length === 0) return null;
    direction.copy(step).divideScalar(length);
    this.raycaster.far = LOOK_AHEAD + length;
    for (const height of PROBE_HEIGHTS) {
      this.raycaster.set(origin.set(from[0], from[1] + height, from[2]), direction);
      const hit = this.raycaster.intersectObjects(this.lab.surfaces, true)[0];
      if (!hit) continue;
      const face = hit.face.normal.clone().transformDirection(hit.object.matrixWorld).setY(0);
      if (face.lengthSq() > 0) face.normalize();
      if (face.dot(direction) > 0) face.negate(); // a double-sided face seen from behind
      const square = face.lengthSq() > 0 ? -face.dot(direction) : 1; // 1 when walking straight at it
      if (square < GRAZING) continue; // walking along it, not at it
      if ((hit.distance - length) * square < BODY_RADIUS) return face;
    }
    return null;
  }
}
