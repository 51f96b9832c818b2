/**
 * Desktop and phone controls, for everyone without a headset.
 *
 * WASD or the arrow keys walk (the furniture stops you, see obstacles.js),
 * dragging the mouse (or a finger) looks around, and a click on a piece of
 * equipment picks it up; it then floats in front of the camera, its ghost
 * shows where the pointer would put it, and the next click (or tap) puts it
 * down there. The mouse over equipment highlights it (hover.js); a finger has
 * no hover, its tap picks up at once. Nothing here runs while an XR session
 * is presenting: the headset moves the head and xr.js handles hands.
 *
 * @module controls
 */

import { Euler, Raycaster, Vector2, Vector3 } from 'three';

import { Obstacles } from './obstacles.js';

/** Walking speed, metres per second. */
const WALK_SPEED = 1.4;
/** Radians of turn per pixel dragged. */
const LOOK_SPEED = 0.005;
/** Looking straight up or down makes walking directions flip; stop a little short. */
const MAX_PITCH = 1.45;
/** A press that moves less than this many pixels is a click, not a look. */
const CLICK_SLOP_PX = 6;
/** Where a held object floats: this far ahead of the eyes, and this far below them (metres). */
const HOLD_DISTANCE = 0.55;
const HOLD_DROP = 0.12;

const KEYS = {
  KeyW: [0, -1],
  ArrowUp: [0, -1],
  KeyS: [0, 1],
  ArrowDown: [0, 1],
  KeyA: [-1, 0],
  ArrowLeft: [-1, 0],
  KeyD: [1, 0],
  ArrowRight: [1, 0],
};

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
    this.pressed = new Set();
    this.raycaster = new Raycaster();
    this.drag = null;
    /** Where the pointer last was, in normalised device coordinates (the middle until it moves). */
    this.pointer = new Vector2();
    /** Whether a mouse (not a finger) is over the view, so there is something hovered. */
    this.hovering = false;
    holding.aimWith(rig.holdPoint, () => this.aim());
    hover.track(rig.holdPoint, () => (this.hovering ? this.aim() : null));

    window.addEventListener('keydown', (event) => {
      if (event.code in KEYS && !isTyping(event.target)) {
        this.pressed.add(event.code);
        event.preventDefault();
      }
    });
    window.addEventListener('keyup', (event) => this.pressed.delete(event.code));
    window.addEventListener('blur', () => this.pressed.clear());
    surface.addEventListener('pointerdown', (event) => {
      surface.setPointerCapture(event.pointerId);
      this.point(event, surface);
      this.drag = { x: event.clientX, y: event.clientY, moved: 0 };
    });
    surface.addEventListener('pointermove', (event) => {
      this.point(event, surface);
      if (!this.drag || this.presenting) return;
      const dx = event.clientX - this.drag.x;
      const dy = event.clientY - this.drag.y;
      this.drag = { x: event.clientX, y: event.clientY, moved: this.drag.moved + Math.abs(dx) + Math.abs(dy) };
      this.look(dx, dy);
    });
    surface.addEventListener('pointerup', (event) => {
      const drag = this.drag;
      this.drag = null;
      if (drag && drag.moved <= CLICK_SLOP_PX && !this.presenting) this.click(event, surface);
    });
    surface.addEventListener('pointercancel', () => {
      this.drag = null;
    });
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

  /** Turn the body left/right and tilt the head up/down. */
  look(dx, dy) {
    this.rig.group.rotation.y -= dx * LOOK_SPEED;
    const camera = this.rig.camera;
    camera.rotation.x = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, camera.rotation.x - dy * LOOK_SPEED));
  }

  /**
   * Walk for `dt` seconds along the keys held, short of the furniture, then
   * move the hold point: in front of the eyes, upright, turned with the view.
   * @param {number} dt
   */
  update(dt) {
    if (!this.presenting && this.pressed.size) {
      step.set(0, 0, 0);
      for (const code of this.pressed) {
        step.x += KEYS[code][0];
        step.z += KEYS[code][1];
      }
      if (step.lengthSq() > 0) {
        step.normalize().multiplyScalar(WALK_SPEED * dt).applyAxisAngle(this.rig.group.up, this.rig.group.rotation.y);
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

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}
