/**
 * Desktop and phone controls, for everyone without a headset.
 *
 * Dragging the mouse (or a finger) on the 3D view looks around, and a click
 * (or a tap) on a piece of equipment picks it up; it then floats in front of
 * the camera, its ghost shows where the pointer would put it, and the next
 * click or tap puts it down there: on a snap point, the bench or the floor.
 * The mouse over equipment highlights it (hover.js); a finger has no hover,
 * its tap picks up at once. A second finger on the view while one drags is
 * ignored (the thumb on the stick is not on the view).
 *
 * Walking and keyed looking come from motion sources added with addMotion:
 * the keys (keyboard.js) and the phone's stick (stick.js). Each frame their
 * walks add up (at most full speed; the furniture stops you, see
 * obstacles.js) and their turns too. Nothing here moves the rig while an XR
 * session is presenting: the headset moves the head and xr.js handles hands.
 *
 * @module controls
 */

import { Euler, Raycaster, Vector2, Vector3 } from 'three';

import { Obstacles } from './obstacles.js';

/** Walking speed, metres per second. */
const WALK_SPEED = 1.4;
/** Radians of turn per pixel dragged with a mouse. */
const LOOK_SPEED = 0.005;
/** A finger's drag across the whole view turns by this many views' width (a phone's is narrow: a
 * mouse's speed there spins the lab past a thumb's swipe). */
const TOUCH_LOOK_VIEWS = 1.5;
/** Looking straight up or down makes walking directions flip; stop a little short. */
const MAX_PITCH = 1.45;
/** A press that moves less than this many pixels is a click, not a look. */
const CLICK_SLOP_PX = 6;
/** Where a held object floats: this far ahead of the eyes, and this far below them (metres). */
const HOLD_DISTANCE = 0.55;
const HOLD_DROP = 0.12;

const CENTRE = new Vector2(0, 0);

/**
 * @typedef {object} Motion what one input asks of the rig now
 * @property {{x: number, z: number}} walk body frame, x right and z backwards, length up to 1 (full speed)
 * @property {{yaw: number, pitch: number}} turn radians per second: +yaw turns left, +pitch looks up
 */

const forward = new Vector3();
const step = new Vector3();
const euler = new Euler(0, 0, 0, 'YXZ');

export class DesktopControls {
  /**
   * @param {import('./rig.js').Rig} rig
   * @param {HTMLElement} surface the canvas, which receives pointer input
   * @param {import('three').WebGLRenderer} renderer to tell whether a headset is presenting
   * @param {import('./scene.js').Lab} lab what clicks can pick
   * @param {import('./holding.js').Holding} holding
   * @param {import('./hover.js').Hover} hover
   */
  constructor(rig, surface, renderer, lab, holding, hover) {
    this.rig = rig;
    this.renderer = renderer;
    this.lab = lab;
    this.holding = holding;
    this.obstacles = new Obstacles(lab);
    /** @type {Motion[]} */
    this.motions = [];
    this.raycaster = new Raycaster();
    this.drag = null;
    /** Where the pointer last was, in normalised device coordinates (the middle until it moves). */
    this.pointer = new Vector2();
    /** Whether a mouse (not a finger) is over the view, so there is something hovered. */
    this.hovering = false;
    holding.aimWith(rig.holdPoint, () => this.aim());
    hover.track(rig.holdPoint, () => (this.hovering ? this.aim() : null));

    surface.addEventListener('pointerdown', (event) => {
      if (this.drag) return; // a second finger
      surface.setPointerCapture(event.pointerId);
      this.point(event, surface);
      this.drag = { id: event.pointerId, x: event.clientX, y: event.clientY, moved: 0 };
    });
    surface.addEventListener('pointermove', (event) => {
      if (this.drag && event.pointerId !== this.drag.id) return;
      this.point(event, surface);
      if (!this.drag || this.presenting) return;
      const dx = event.clientX - this.drag.x;
      const dy = event.clientY - this.drag.y;
      this.drag = { ...this.drag, x: event.clientX, y: event.clientY, moved: this.drag.moved + Math.abs(dx) + Math.abs(dy) };
      this.look(dx, dy, event.pointerType === 'touch' ? this.touchLookSpeed(surface) : LOOK_SPEED);
    });
    surface.addEventListener('pointerup', (event) => {
      const drag = this.drag;
      if (drag?.id !== event.pointerId) return;
      this.drag = null;
      if (drag.moved <= CLICK_SLOP_PX && !this.presenting) this.click(event, surface);
      this.fingerLifted(event);
    });
    const lost = (event) => {
      if (this.drag?.id !== event.pointerId) return;
      this.drag = null;
      this.fingerLifted(event);
    };
    surface.addEventListener('pointercancel', lost);
    surface.addEventListener('lostpointercapture', lost); // after pointerup, or when the browser takes the pointer
    surface.addEventListener('pointerleave', () => {
      this.hovering = false;
    });
  }

  /** Follow the pointer: where it is, and whether it is a mouse that hovers. */
  point(event, surface) {
    const rect = surface.getBoundingClientRect();
    this.pointer.set(((event.clientX - rect.left) / rect.width) * 2 - 1, -((event.clientY - rect.top) / rect.height) * 2 + 1);
    this.hovering = event.pointerType !== 'touch';
  }

  /**
   * A finger that lifts aims nowhere of its own: the middle of the view aims from then on, as
   * for Pour and the grab key, so the ghost of what is held shows where the view looks rather
   * than staying where the finger last was (where the object was picked up, say). A tap still
   * puts down where it touches.
   */
  fingerLifted(event) {
    if (event.pointerType === 'touch') this.aimAtCentre();
  }

  /** @param {Motion} motion another input that walks or turns (keys, the phone's stick) */
  addMotion(motion) {
    this.motions.push(motion);
  }

  /**
   * Aim from the middle of the view from now on (until the mouse moves): the
   * keyboard's grab key picks and puts down there.
   * @returns {Raycaster|null}
   */
  aimAtCentre() {
    this.pointer.copy(CENTRE);
    this.hovering = false;
    return this.aim();
  }

  /** @returns {Raycaster|null} the ray from the eyes through the pointer; none while a headset presents */
  aim() {
    if (this.presenting) return null;
    this.raycaster.setFromCamera(this.pointer, this.rig.camera);
    return this.raycaster;
  }

  /** A click puts down what we hold where it points, or else picks up the equipment under the pointer. */
  click(event, surface) {
    this.point(event, surface);
    const held = this.holding.heldBy(this.rig.holdPoint);
    if (held) {
      this.holding.release(held);
      return;
    }
    const id = this.lab.pick(this.aim());
    if (id) this.holding.grab(id, this.rig.holdPoint);
  }

  get presenting() {
    return this.renderer.xr.isPresenting;
  }

  /**
   * Look by a drag of (dx, dy) pixels: drag right to turn right, up to look up.
   * @param {number} dx
   * @param {number} dy
   * @param {number} [speed] radians per pixel
   */
  look(dx, dy, speed = LOOK_SPEED) {
    this.turnBy(-dx * speed, -dy * speed);
  }

  /** Radians per pixel for a finger on `surface`: TOUCH_LOOK_VIEWS of the view's width across it. */
  touchLookSpeed(surface) {
    const camera = this.rig.camera;
    const across = 2 * Math.atan(Math.tan((camera.fov * Math.PI) / 360) * camera.aspect);
    return (TOUCH_LOOK_VIEWS * across) / Math.max(1, surface.clientWidth);
  }

  /** Turn the body left (+yaw) or right and tilt the head up (+pitch) or down, radians. */
  turnBy(yaw, pitch) {
    this.rig.group.rotation.y += yaw;
    const camera = this.rig.camera;
    camera.rotation.x = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, camera.rotation.x + pitch));
  }

  /**
   * Walk and turn for `dt` seconds as the motion sources ask, short of the
   * furniture, then move the hold point: in front of the eyes, upright,
   * turned with the view.
   * @param {number} dt
   */
  update(dt) {
    if (!this.presenting) {
      step.set(0, 0, 0);
      let yaw = 0;
      let pitch = 0;
      for (const { walk, turn } of this.motions) {
        step.x += walk.x;
        step.z += walk.z;
        yaw += turn.yaw;
        pitch += turn.pitch;
      }
      if (yaw || pitch) this.turnBy(yaw * dt, pitch * dt);
      if (step.lengthSq() > 0) {
        if (step.lengthSq() > 1) step.normalize();
        step.multiplyScalar(WALK_SPEED * dt).applyAxisAngle(this.rig.group.up, this.rig.group.rotation.y);
        this.obstacles.clip(this.rig.floorPoint(), step);
        this.rig.moveBy(step.x, 0, step.z);
      }
    }
    const { camera, holdPoint } = this.rig;
    camera.updateWorldMatrix(true, false);
    camera.getWorldPosition(holdPoint.position);
    camera.getWorldDirection(forward);
    holdPoint.position.addScaledVector(forward, HOLD_DISTANCE).y -= HOLD_DROP;
    holdPoint.quaternion.setFromEuler(euler.set(0, Math.atan2(-forward.x, -forward.z), 0));
  }
}
