/**
 * Bare hands in an XR session (WebXR hand tracking, `XRHand`): pinching
 * (thumb tip to index tip closer than 2 cm: three.js's `pinchstart`, which
 * ends past 2.5 cm) picks up the free equipment nearest to the pinch, and
 * opening the fingers puts it down below the hand (placing.js: on the
 * surface under it, or a snap point within reach).
 *
 * The object follows the wrist, keeping the distance and angle it was picked
 * up at, and the wrist is the hand the room sees (rig.js). Each tracked
 * joint is drawn as a small sphere (three.js's primitive hand model: no
 * model files to fetch), so a student in VR sees their hands. A pinch reaches
 * only what the fingers are at: 10 cm of real space, which in a table-top AR
 * lab (ar.js) is more of the lab. Controllers are handled by xr.js, which
 * leaves hand input sources to this module.
 *
 * @module hands
 */

import { Vector3 } from 'three';
import { XRHandModelFactory } from 'three/addons/webxr/XRHandModelFactory.js';

/** How far (real metres) from the pinch the equipment's bounds may be. */
const PINCH_REACH = 0.1;

const thumb = new Vector3();
const pinch = new Vector3();

export class Hands {
  /**
   * @param {import('three').WebGLRenderer} renderer its XR manager tracks the hands
   * @param {import('./rig.js').Rig} rig carries the hands; its grips are the hands the room sees
   * @param {import('./holding.js').Holding} holding
   * @param {import('./nearby.js').Nearby} nearby finds the equipment nearest to a pinch
   */
  constructor(renderer, rig, holding, nearby) {
    this.rig = rig;
    this.holding = holding;
    this.nearby = nearby;
    const models = new XRHandModelFactory();
    for (const index of [0, 1]) this.addHand(renderer.xr.getHand(index), models);
  }

  addHand(hand, models) {
    hand.add(models.createHandModel(hand, 'spheres'));
    this.rig.group.add(hand);
    let side = null;
    hand.addEventListener('connected', (event) => {
      if (!event.data.hand) return; // a controller: xr.js
      side = event.data.handedness === 'left' ? 0 : 1;
      this.rig.grips[side] = hand.joints.wrist;
    });
    hand.addEventListener('disconnected', () => {
      if (side === null) return;
      this.letGo(hand);
      if (this.rig.grips[side] === hand.joints.wrist) this.rig.grips[side] = null;
      side = null;
    });
    hand.addEventListener('pinchstart', () => this.pinched(hand));
    hand.addEventListener('pinchend', () => this.letGo(hand));
  }

  /** Pick up the free equipment nearest to the point between thumb and index tips. */
  pinched(hand) {
    const wrist = hand.joints.wrist;
    if (!wrist || this.holding.heldBy(wrist)) return;
    hand.updateWorldMatrix(true, true);
    hand.joints['thumb-tip'].getWorldPosition(thumb);
    hand.joints['index-finger-tip'].getWorldPosition(pinch).add(thumb).multiplyScalar(0.5);
    const id = this.nearby.nearestTo(pinch, PINCH_REACH * this.rig.group.scale.x);
    if (id) this.holding.grab(id, wrist, true);
  }

  letGo(hand) {
    const held = hand.joints.wrist && this.holding.heldBy(hand.joints.wrist);
    if (held) this.holding.release(held);
  }
}
