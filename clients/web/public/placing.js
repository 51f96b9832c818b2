/**
 * Where a held object lands when it is put down, and the ghost that shows
 * the spot beforehand.
 *
 * A student puts a beaker where they point, not wherever their hand happens
 * to be: the aim (the mouse, a tap, or a controller's ray; see holding.js) is
 * cast against the lab as it is drawn, leaving out whatever is in someone's
 * hand, and the object stands upright with the bottom of its bounding box on
 * the surface hit. Pointing at the side of something (the front of the bench)
 * puts it on whatever is below that spot, its own width away from the side.
 * A snap point of another object near the put-down point wins: the object's
 * origin goes exactly there, turned as the snap point says. Snap points come
 * in the room snapshot (`objects[i].snap_points`, in that object's own frame);
 * an object without them offers none. With nothing within reach the object
 * lands upright on the furniture below the hand.
 *
 * Reach is a person's, in real metres: in a table-top AR lab (ar.js), where
 * a real metre is many lab metres, it grows with it. The snap radius is the
 * equipment's, in lab metres, so a small lab keeps its snap points apart.
 *
 * The ghost and the put-down read the same answer, so things land where the
 * ghost showed.
 *
 * @module placing
 */

import { Box3, Euler, Matrix4, MeshBasicMaterial, Quaternion, Raycaster, Vector3 } from 'three';

/** How far away a put-down can be aimed, real metres: the bench in front, not across the room. */
const REACH = 3;
/** How close, horizontally, a put-down point must come to a snap point to snap there, metres. */
const SNAP_RADIUS = 0.06;
/** A face whose normal points at least this much upwards is something to stand things on; a steeper one is a side. */
const TOP_FACING = 0.7;
/** Space left between an object put down below a side and that side, metres. */
const SIDE_CLEARANCE = 0.01;
/** How high above a side hit the probe for the surface below starts, metres. */
const PROBE_LIFT = 0.01;
const GHOST = new MeshBasicMaterial({ color: 0x3d8bfd, transparent: true, opacity: 0.45, depthWrite: false });
const GHOST_SNAPPED = new MeshBasicMaterial({ color: 0x3ecf6e, transparent: true, opacity: 0.55, depthWrite: false });

const DOWN = new Vector3(0, -1, 0);
const euler = new Euler();
const matrix = new Matrix4();
const normal = new Vector3();
const snapWorld = new Vector3();
const snapRotation = new Quaternion();

/**
 * @typedef {object} Landing
 * @property {Vector3} position where the object's origin goes (lab space)
 * @property {Quaternion} quaternion
 * @property {string|null} snap `objectId/snapId` of the snap point it goes to, or null
 */

export class Placing {
  /**
   * @param {import('three').Scene} scene where ghosts are drawn (outside the lab, so no ray meets them)
   * @param {import('./scene.js').Lab} lab
   * @param {import('./state.js').RoomState} state who holds what, and the snap points
   * @param {() => number} [scale] lab metres per real metre now (the rig's scale)
   */
  constructor(scene, lab, state, scale = () => 1) {
    this.scene = scene;
    this.lab = lab;
    this.state = state;
    this.scale = scale;
    this.raycaster = new Raycaster();
    this.down = new Raycaster();
    /** @type {Map<string, {bottom: number, radius: number}>} per object: origin height above its box's bottom, and its horizontal reach */
    this.footprints = new Map();
    /** @type {Map<string, {ghost: import('three').Object3D, landing: Landing}>} ghosts shown, by held object id */
    this.previews = new Map();
  }

  /**
   * Where a held object would land if put down now.
   * @param {string} id
   * @param {Raycaster|null} aim where the person points, or null (put it down below the hand)
   * @returns {Landing}
   */
  landing(id, aim) {
    const node = this.lab.node(id);
    const point = (aim && this.aimedAt(id, aim)) ?? new Vector3(node.position.x, this.lab.surfaceBelow(node.position), node.position.z);
    const snap = this.nearestSnap(id, point);
    if (snap) return snap;
    const yaw = euler.setFromQuaternion(node.quaternion, 'YXZ').y;
    point.y += this.footprint(id).bottom;
    return { position: point, quaternion: new Quaternion().setFromEuler(euler.set(0, yaw, 0)), snap: null };
  }

  /**
   * Show (or move) the ghost of a held object where it would land.
   * @param {string} id
   * @param {Raycaster|null} aim
   */
  preview(id, aim) {
    const landing = this.landing(id, aim);
    let shown = this.previews.get(id);
    if (!shown) {
      shown = { ghost: this.lab.node(id).clone(), landing };
      this.scene.add(shown.ghost);
      this.previews.set(id, shown);
    }
    shown.landing = landing;
    shown.ghost.position.copy(landing.position);
    shown.ghost.quaternion.copy(landing.quaternion);
    const material = landing.snap ? GHOST_SNAPPED : GHOST;
    shown.ghost.traverse((child) => {
      if (child.isMesh) child.material = material;
    });
  }

  /** Stop showing the ghost of `id` (put down, or no longer ours). */
  hide(id) {
    this.previews.get(id)?.ghost.removeFromParent();
    this.previews.delete(id);
  }

  /** @returns {Record<string, {position: number[], snap: string|null}>} the ghosts shown, by held object id */
  ghosts() {
    return Object.fromEntries([...this.previews].map(([id, { landing }]) => [id, { position: landing.position.toArray(), snap: landing.snap }]));
  }

  /**
   * The put-down point an aim meets within reach, or null. A hit on a side
   * drops to the surface below it, the object's width out from that side.
   * @param {string} id the held object, which the aim passes through
   * @param {Raycaster} aim
   * @returns {Vector3|null}
   */
  aimedAt(id, aim) {
    const candidates = this.surfaces(id);
    this.raycaster.ray.copy(aim.ray);
    this.raycaster.far = REACH * this.scale();
    const hit = this.raycaster.intersectObjects(candidates, true)[0];
    if (!hit) return null;
    normal.copy(hit.face.normal).transformDirection(hit.object.matrixWorld);
    if (normal.dot(this.raycaster.ray.direction) > 0) normal.negate(); // a double-sided face seen from behind
    if (normal.y >= TOP_FACING) return hit.point;
    normal.y = 0;
    if (normal.lengthSq() > 0) normal.normalize();
    const from = hit.point.clone().addScaledVector(normal, this.footprint(id).radius + SIDE_CLEARANCE);
    from.y += PROBE_LIFT;
    this.down.set(from, DOWN);
    return this.down.intersectObjects(candidates, true)[0]?.point ?? null;
  }

  /** What a put-down can land on: the lab's nodes, except anything held by anyone (this object included). */
  surfaces(id) {
    const held = new Set([this.lab.node(id)]);
    for (const object of Object.values(this.state.objects)) if (object.holder) held.add(this.lab.node(object.id));
    return this.lab.root.children.filter((child) => !held.has(child));
  }

  /**
   * The snap pose of another object's snap point within SNAP_RADIUS
   * (horizontally) of `point`, the nearest in 3D if several; null if none.
   * @param {string} id the held object
   * @param {Vector3} point
   * @returns {Landing|null}
   */
  nearestSnap(id, point) {
    let best = null;
    let bestDistance = Infinity;
    for (const object of Object.values(this.state.objects)) {
      const node = object.id === id || object.holder ? null : this.lab.node(object.id);
      if (!node) continue;
      node.updateWorldMatrix(true, false);
      for (const snap of object.snap_points ?? []) {
        snapWorld.fromArray(snap.position).applyMatrix4(node.matrixWorld);
        if (Math.hypot(snapWorld.x - point.x, snapWorld.z - point.z) > SNAP_RADIUS) continue;
        // among the snap points within reach sideways, the nearest in 3D: a tripod's top,
        // not the burner place under it at the same x, z
        const distance = snapWorld.distanceTo(point);
        if (distance >= bestDistance) continue;
        bestDistance = distance;
        snapRotation.fromArray(snap.rotation ?? [0, 0, 0, 1]);
        best = {
          position: snapWorld.clone(),
          quaternion: node.getWorldQuaternion(new Quaternion()).multiply(snapRotation),
          snap: `${object.id}/${snap.id}`,
        };
      }
    }
    return best;
  }

  /** An object's bottom (origin height above its bounding box's lowest point) and horizontal reach, measured once. */
  footprint(id) {
    let footprint = this.footprints.get(id);
    if (!footprint) {
      const node = this.lab.node(id);
      const box = localBox(node);
      footprint = box.isEmpty()
        ? { bottom: 0, radius: 0 }
        : {
            bottom: -box.min.y * node.scale.y,
            radius: Math.max(-box.min.x, box.max.x, -box.min.z, box.max.z) * Math.max(node.scale.x, node.scale.z),
          };
      this.footprints.set(id, footprint);
    }
    return footprint;
  }
}

/**
 * The bounding box of a node's meshes in the node's own frame (before its own
 * position, rotation and scale), so it holds however the node is held.
 * @param {import('three').Object3D} node
 * @returns {Box3}
 */
function localBox(node) {
  node.updateWorldMatrix(true, true);
  const toNode = node.matrixWorld.clone().invert();
  const box = new Box3();
  const part = new Box3();
  node.traverse((child) => {
    if (!child.isMesh) return;
    if (!child.geometry.boundingBox) child.geometry.computeBoundingBox();
    box.union(part.copy(child.geometry.boundingBox).applyMatrix4(matrix.multiplyMatrices(toNode, child.matrixWorld)));
  });
  return box;
}
