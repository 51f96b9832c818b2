/**
 * Objects this page holds: each one follows an anchor (the desktop hold point
 * in front of the camera, or an XR controller) until it is let go.
 *
 * Grabs are granted by the server, which alone decides who may hold what (one
 * holder at a time, nothing while frozen, never fixed equipment): a grab
 * request only records which anchor asked, and the object starts following
 * when the `grabbed` event for us arrives; a refusal comes back as an error
 * the page shows. While held, the object is drawn from its anchor, not from
 * the server's echo, so the holder sees no lag; sync.js sends the transforms.
 *
 * Each anchor may come with an aim (the mouse or a tap for the desktop hold
 * point, the controller's ray for a grip): while something is held its ghost
 * shows where the aim would put it, and letting go puts it exactly there
 * (placing.js decides where).
 *
 * Pouring without a headset (pouring.js): while an anchor is tipping, what it
 * holds leaves the hand and tips over where the aim would put it down,
 * `POUR_LIFT` above that spot and `POUR_ANGLE` forward (the top away from the
 * person), so the room sees it tilted beside what it is poured into; it goes
 * back to the hand when the tipping stops. A headset's hand tips things itself.
 *
 * @module holding
 */

import { Matrix4, Quaternion, Vector3 } from 'three';

import { TRANSFORM_FLOATS, encodeObjectMove, messages, nowStamp } from './protocol.js';

/** How high above its put-down spot a poured object is held, metres (the flask's neck is 0.2 m). */
const POUR_LIFT = 0.15;
/** How far a poured object is tipped forward, radians (110°: past any "tilted" a lab asks, mouth a little down). */
const POUR_ANGLE = (110 * Math.PI) / 180;
const SIDEWAYS = new Vector3(1, 0, 0);
const tipForward = new Quaternion().setFromAxisAngle(SIDEWAYS, -POUR_ANGLE);

const matrix = new Matrix4();
const position = new Vector3();
const quaternion = new Quaternion();
const scale = new Vector3();

export class Holding {
  /**
   * @param {import('./scene.js').Lab} lab
   * @param {import('./state.js').RoomState} state
   * @param {import('./connection.js').Connection} connection
   * @param {import('three').Object3D} defaultAnchor what a grab with no other anchor follows
   * @param {import('./placing.js').Placing} placing where things land when put down
   */
  constructor(lab, state, connection, defaultAnchor, placing) {
    this.lab = lab;
    this.state = state;
    this.connection = connection;
    this.defaultAnchor = defaultAnchor;
    this.placing = placing;
    /** @type {Map<import('three').Object3D, () => import('three').Raycaster|null>} how each anchor aims a put-down */
    this.aims = new Map();
    /** @type {Map<string, {anchor: import('three').Object3D, offset: Matrix4}>} */
    this.held = new Map();
    /** @type {Map<string, {anchor: import('three').Object3D, offset: Matrix4|null}>} grabs asked for, not yet granted */
    this.wanted = new Map();
    /** @type {Set<import('three').Object3D>} anchors pouring what they hold */
    this.tipping = new Set();
  }

  /**
   * Tip what `anchor` holds over where it aims (pouring), or bring it back to the hand.
   * @param {import('three').Object3D} anchor
   * @param {boolean} on
   */
  tip(anchor, on) {
    if (on) this.tipping.add(anchor);
    else this.tipping.delete(anchor);
  }

  /** @returns {boolean} whether what `anchor` holds is tipped now */
  isTipping(anchor) {
    return this.tipping.has(anchor) && this.heldBy(anchor) !== null;
  }

  /**
   * Ask the room for an object, remembering which anchor asked (not while
   * reconnecting: the room would not hear it).
   * @param {string} id
   * @param {import('three').Object3D} [anchor]
   * @param {boolean} [keepOffset] follow at the distance it was grabbed from (a
   *   controller ray) rather than sitting at the anchor itself
   */
  grab(id, anchor = this.defaultAnchor, keepOffset = false) {
    if (this.connection.state !== 'connected') return;
    this.wanted.set(id, { anchor, offset: keepOffset ? null : new Matrix4() });
    this.connection.send(messages.grab(id));
  }

  /**
   * Say how an anchor aims: `aim` returns the ray a put-down from it follows
   * now, or null when it points nowhere.
   * @param {import('three').Object3D} anchor
   * @param {() => import('three').Raycaster|null} aim
   */
  aimWith(anchor, aim) {
    this.aims.set(anchor, aim);
  }

  /**
   * Let go of an object: it lands where its anchor aims (see placing.js),
   * and the room hears where before it hears the release. Not while
   * reconnecting: the room would not hear it, so the hand keeps the object
   * and the next welcome says whether it is still ours.
   * @param {string} id
   */
  release(id) {
    if (this.connection.state !== 'connected') return;
    if (this.held.has(id)) {
      const landed = this.drop(id);
      this.connection.sendBinary(encodeObjectMove(this.state.objects[id].index, landed, nowStamp()));
    }
    this.connection.send(messages.release(id));
  }

  /** The server granted us `id`: make it follow the anchor that asked (or the default one). */
  granted(id) {
    const node = this.lab.node(id);
    if (!node) return;
    const { anchor, offset } = this.wanted.get(id) ?? { anchor: this.defaultAnchor, offset: new Matrix4() };
    this.wanted.delete(id);
    anchor.updateWorldMatrix(true, false);
    node.updateWorldMatrix(true, false);
    this.held.set(id, { anchor, offset: offset ?? anchor.matrixWorld.clone().invert().multiply(node.matrixWorld) });
    this.lab.local.add(id);
  }

  /**
   * The room released `id` (we let go, or it took it: lease, freeze, reset):
   * from now on it is drawn where the room says.
   */
  forget(id) {
    this.held.delete(id);
    this.wanted.delete(id);
    this.lab.local.delete(id);
    this.placing.hide(id);
  }

  /** Forget every hold except these (a resume tells which holds we kept). */
  keepOnly(ids) {
    for (const id of [...this.held.keys()]) if (!ids.includes(id)) this.forget(id);
  }

  /** @returns {string|null} the object this anchor holds */
  heldBy(anchor) {
    for (const [id, hold] of this.held) if (hold.anchor === anchor) return id;
    return null;
  }

  isHeld(id) {
    return this.held.has(id);
  }

  ids() {
    return [...this.held.keys()];
  }

  /**
   * Move every held object to its anchor and its ghost to where it would land, or a
   * tipping one over its put-down spot (each frame, after the anchors moved).
   */
  update() {
    for (const [id, { anchor, offset }] of this.held) {
      anchor.updateWorldMatrix(true, false);
      const node = this.lab.node(id);
      if (this.tipping.has(anchor)) {
        const spot = this.placing.landing(id, this.aimOf(anchor));
        node.position.copy(spot.position);
        node.position.y += POUR_LIFT;
        anchor.matrixWorld.decompose(position, quaternion, scale);
        node.quaternion.copy(quaternion).multiply(tipForward);
        this.placing.hide(id);
        continue;
      }
      matrix.multiplyMatrices(anchor.matrixWorld, offset).decompose(position, quaternion, scale);
      node.position.copy(position);
      node.quaternion.copy(quaternion);
      this.placing.preview(id, this.aimOf(anchor));
    }
  }

  /** @returns {import('three').Raycaster|null} where an anchor aims now */
  aimOf(anchor) {
    return this.aims.get(anchor)?.() ?? null;
  }

  /**
   * The transform of a held object as it is drawn now.
   * @param {string} id
   * @param {Float32Array} out 7 floats
   */
  transform(id, out) {
    const node = this.lab.node(id);
    node.position.toArray(out, 0);
    node.quaternion.toArray(out, 3);
    return out;
  }

  /**
   * Put a held object down where its anchor aims; returns where it landed.
   * It stays drawn locally until the room confirms the release, or frames
   * still in flight from while it was held would pull it back into the hand.
   */
  drop(id) {
    const node = this.lab.node(id);
    const landing = this.placing.landing(id, this.aimOf(this.held.get(id).anchor));
    this.held.delete(id);
    this.placing.hide(id);
    node.position.copy(landing.position);
    node.quaternion.copy(landing.quaternion);
    const landed = this.transform(id, new Float32Array(TRANSFORM_FLOATS));
    this.lab.snap(id, landed);
    return landed;
  }
}
