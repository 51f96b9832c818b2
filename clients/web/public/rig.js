/**
 * The local person: a rig (their spot on the floor, turned by their heading)
 * carrying the camera (their head) and two hands.
 *
 * Walking, turning, summons and the spawn point move the rig; a headset moves
 * the camera and controllers inside it. The pose sent to the room is always
 * read from world transforms, so it is right in both cases.
 *
 * @module rig
 */

import { Group, Object3D, PerspectiveCamera, Quaternion, Vector3 } from 'three';

import { FLAG_LEFT_TRACKED, FLAG_RIGHT_TRACKED } from './protocol.js';
import { restingHand } from './resthands.js';

/** Eye height on a desktop or phone, where nothing tracks the head. */
const DESKTOP_EYE_HEIGHT = 1.6;
/** A desktop view starts tilted down a little, towards the bench rather than the wall. */
const DESKTOP_PITCH = -0.3;
/** A phone held upright starts tilted further: its view between the panels is the screen's upper middle. */
const PORTRAIT_PITCH = -0.55;
/** Degrees of view from top to bottom, on a screen wider than tall. */
const FOV = 70;
/** The fewest degrees of view from side to side: a phone held upright would see the bench through a slot. */
const MIN_ACROSS_FOV = 50;
/** Distance between people gathered by a summon, so they do not stand inside each other. */
const SUMMON_SPACING = 0.8;

const position = new Vector3();
const quaternion = new Quaternion();
const scale = new Vector3();
/** A head, then a resting hand, as 7 floats each (resthands.js works on arrays). */
const head = new Float64Array(7);
const rest = new Float64Array(7);

export class Rig {
  constructor() {
    this.group = new Group();
    this.camera = new PerspectiveCamera(FOV, 1, 0.05, 100);
    this.camera.position.y = DESKTOP_EYE_HEIGHT;
    this.camera.rotation.x = DESKTOP_PITCH;
    this.group.add(this.camera);
    /**
     * Hands as the room sees them. A headset's controller grips replace
     * these (see xr.js); otherwise they rest below the head, turned with it.
     * @type {[Object3D, Object3D]}
     */
    this.hands = [new Object3D(), new Object3D()];
    /** @type {[Object3D|null, Object3D|null]} tracked controller grips (left, right), set by xr.js */
    this.grips = [null, null];
    /** The desktop hand: where equipment picked up with a click floats (moved by controls.js). */
    this.holdPoint = new Object3D();
    /** The room places us (spawn point) once, on the first pose it sends for our slot. */
    this.placed = false;
    /** Whether the view was fitted to the screen yet (the first fit chooses the starting tilt). */
    this.fitted = false;
  }

  /**
   * Fit the view to a screen `width` x `height` pixels. A screen taller than wide keeps at least
   * MIN_ACROSS_FOV degrees from side to side by seeing more from top to bottom, and the first
   * fit of such a screen tilts the head down to the bench (a drag may tilt it anywhere after).
   * @param {number} width
   * @param {number} height
   */
  fit(width, height) {
    const camera = this.camera;
    const aspect = width / height;
    // the top-to-bottom angle that gives MIN_ACROSS_FOV across at this aspect; FOV when that is less
    camera.fov = Math.max(FOV, (360 / Math.PI) * Math.atan(Math.tan((MIN_ACROSS_FOV * Math.PI) / 360) / aspect));
    camera.aspect = aspect;
    camera.updateProjectionMatrix();
    if (!this.fitted && aspect < 1) camera.rotation.x = PORTRAIT_PITCH;
    this.fitted = true;
  }

  /**
   * Stand where the room put us: `head` is the server's head position for our slot.
   * @param {ArrayLike<number>} head x, y, z
   */
  placeAt(head) {
    this.group.position.set(head[0], head[1] - this.camera.position.y, head[2]);
    this.placed = true;
  }

  /** Move the rig by a lab-space offset (walking, and the test hook). */
  moveBy(dx, dy, dz) {
    this.group.position.x += dx;
    this.group.position.y += dy;
    this.group.position.z += dz;
  }

  /**
   * Turn (about the vertical) to face a lab-space point.
   * @param {ArrayLike<number>} point x, y, z
   */
  faceTowards(point) {
    this.camera.getWorldPosition(position);
    this.group.rotation.y = Math.atan2(position.x - point[0], position.z - point[2]);
  }

  /**
   * Answer a summon: go to `point`, on a ring around it chosen by our slot,
   * facing the point (where the teacher stands).
   * @param {number[]} point floor position
   * @param {number} slot
   */
  gatherAt(point, slot) {
    const angle = slot * 2.399963; // the golden angle spreads any number of people evenly
    const radius = SUMMON_SPACING * Math.sqrt(slot + 1);
    const x = point[0] + Math.sin(angle) * radius;
    const z = point[2] + Math.cos(angle) * radius;
    this.group.position.set(x, point[1], z);
    this.group.rotation.set(0, Math.atan2(x - point[0], z - point[2]), 0);
  }

  /** The floor point under the head (what a teacher summons people to). */
  floorPoint() {
    this.camera.getWorldPosition(position);
    return [position.x, this.group.position.y, position.z];
  }

  /**
   * Read the pose to send: head, left hand, right hand, each position then quaternion.
   * @param {Float32Array} out 21 floats
   * @returns {number} FLAG_* bits for the hands a controller really tracks
   */
  readPose(out) {
    this.group.updateMatrixWorld(true);
    writeWorld(this.camera, out, 0);
    let flags = 0;
    const bits = [FLAG_LEFT_TRACKED, FLAG_RIGHT_TRACKED];
    for (let i = 0; i < 2; i++) {
      const grip = this.grips[i];
      if (grip?.visible) {
        writeWorld(grip, out, 7 + 7 * i);
        flags |= bits[i];
      } else {
        this.restHand(i);
        writeWorld(this.hands[i], out, 7 + 7 * i);
      }
    }
    return flags;
  }

  /** Place an untracked hand below the head, turned with the head's heading only (resthands.js). */
  restHand(i) {
    const hand = this.hands[i];
    writeWorld(this.camera, head, 0);
    restingHand(head, i, rest);
    hand.position.fromArray(rest, 0);
    hand.quaternion.fromArray(rest, 3);
    hand.updateMatrixWorld(true);
  }
}

/** Write an object's world position and rotation into `out` at `offset` (7 floats). */
function writeWorld(object, out, offset) {
  object.matrixWorld.decompose(position, quaternion, scale);
  out[offset] = position.x;
  out[offset + 1] = position.y;
  out[offset + 2] = position.z;
  out[offset + 3] = quaternion.x;
  out[offset + 4] = quaternion.y;
  out[offset + 5] = quaternion.z;
  out[offset + 6] = quaternion.w;
}
