/**
 * The lab without a pointer: W A S D walk, the arrow keys look (left/right
 * turn, up/down tilt the head), and G (or Enter or Space on the focused 3D
 * view) picks up the equipment in front, or puts down what is held where the
 * middle of the view points, as a click there would (controls.js).
 *
 * The 3D view is the first stop of Tab (a canvas with tabindex 0 and a label
 * that says the keys), and it takes the focus when the join form that had it
 * goes; while it has keyboard focus a mark in its middle shows where G aims
 * (controls.css). What is near, and which way, is read out by
 * the live region (nearby.js). Keys typed into a field, and E, H, P and V (the
 * equipment switch, a hint, pouring, push to talk) are left to their own modules.
 *
 * @module keyboard
 */

/** Walk keys: body-frame direction (x right, z backwards). */
const WALK_KEYS = {
  KeyW: [0, -1],
  KeyS: [0, 1],
  KeyA: [-1, 0],
  KeyD: [1, 0],
};
/** Look keys: turn left (+yaw) or right, tilt up (+pitch) or down. */
const LOOK_KEYS = {
  ArrowLeft: [1, 0],
  ArrowRight: [-1, 0],
  ArrowUp: [0, 1],
  ArrowDown: [0, -1],
};
/** Turning speed with the look keys, radians per second (a half turn in 2 s). */
const TURN_SPEED = 1.6;
/** Head tilt speed with the look keys, radians per second. */
const PITCH_SPEED = 1.0;
/** Keys that pick up or put down while the 3D view has focus; G does it from anywhere. */
const VIEW_GRAB_KEYS = new Set(['Enter', 'Space']);
const LABEL = '3D lab view. W A S D to walk, arrow keys to look, G to pick up or put down.';

export class KeyboardControls {
  /**
   * @param {HTMLCanvasElement} view the 3D view, made focusable here
   * @param {import('./rig.js').Rig} rig
   * @param {import('./controls.js').DesktopControls} controls casts the ray through the middle of the view
   * @param {import('./holding.js').Holding} holding
   * @param {import('./nearby.js').Nearby} nearby what is in front, and the live region
   */
  constructor(view, rig, controls, holding, nearby) {
    this.rig = rig;
    this.controls = controls;
    this.holding = holding;
    this.nearby = nearby;
    this.pressed = new Set();
    /** What these keys ask of the rig now (read by controls.js each frame). */
    this.walk = { x: 0, z: 0 };
    this.turn = { yaw: 0, pitch: 0 };
    view.tabIndex = 0;
    view.setAttribute('role', 'application'); // a screen reader passes the keys through
    view.setAttribute('aria-label', LABEL);
    // Joining hid the form that had focus: the keyboard carries on in the lab, not nowhere.
    const active = document.activeElement;
    if (!active || active === document.body || !active.checkVisibility()) view.focus({ preventScroll: true });

    addEventListener('keydown', (event) => {
      if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.code in WALK_KEYS || event.code in LOOK_KEYS) {
        this.pressed.add(event.code);
        this.read();
        event.preventDefault();
      } else if (event.code === 'KeyG' || (VIEW_GRAB_KEYS.has(event.code) && event.target === view)) {
        event.preventDefault();
        if (!event.repeat) this.act();
      }
    });
    addEventListener('keyup', (event) => {
      this.pressed.delete(event.code);
      this.read();
    });
    addEventListener('blur', () => {
      this.pressed.clear();
      this.read();
    });
  }

  /** Turn the keys held into a walk and a turn. */
  read() {
    let x = 0;
    let z = 0;
    let yaw = 0;
    let pitch = 0;
    for (const code of this.pressed) {
      if (code in WALK_KEYS) {
        x += WALK_KEYS[code][0];
        z += WALK_KEYS[code][1];
      } else {
        yaw += LOOK_KEYS[code][0] * TURN_SPEED;
        pitch += LOOK_KEYS[code][1] * PITCH_SPEED;
      }
    }
    this.walk = { x, z };
    this.turn = { yaw, pitch };
  }

  /** Put down what the hold point carries where the middle of the view points, or pick up what is in front. */
  act() {
    const centre = this.controls.aimAtCentre();
    const held = this.holding.heldBy(this.rig.holdPoint);
    if (held) {
      this.holding.release(held);
      return;
    }
    const id = this.nearby.ahead(centre);
    if (id) this.holding.grab(id, this.rig.holdPoint);
    else this.nearby.say('Nothing to pick up ahead. Turn with the arrow keys or walk closer.');
  }
}

/** Whether a key goes to a text field (or a select) rather than to the lab. */
export function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}
