/**
 * Pouring without a headset: a lab step such as "tip the beaker over the
 * flask" needs the beaker tilted, which a headset's hand does by turning and a
 * mouse or a finger cannot. So while something floats in front of the camera,
 * a Pour button shows; holding it down (or holding P on a keyboard) tips the
 * object over the spot the view aims at, beside what is there (holding.js
 * `tip`), and letting go brings it back to the hand.
 *
 * The button aims from the middle of the view, as the keyboard's G does: a
 * finger on the button is not pointing into the lab. P aims where the mouse
 * is, like a click. The button is hidden while a headset presents (its hands
 * tip things themselves) and while nothing is held.
 *
 * @module pouring
 */

import { isTyping } from './keyboard.js';

/** The key that pours while held. */
const POUR_KEY = 'KeyP';

export class Pouring {
  /**
   * @param {HTMLButtonElement} button the Pour button (index.html)
   * @param {import('./rig.js').Rig} rig whose hold point carries what is poured
   * @param {import('./controls.js').DesktopControls} controls aims from the view
   * @param {import('./holding.js').Holding} holding
   */
  constructor(button, rig, controls, holding) {
    this.button = button;
    this.anchor = rig.holdPoint;
    this.controls = controls;
    this.holding = holding;
    this.pointer = null;

    button.addEventListener('pointerdown', (event) => {
      if (this.pointer !== null) return;
      this.pointer = event.pointerId;
      button.setPointerCapture(event.pointerId);
      this.controls.aimAtCentre();
      this.pour(true);
      event.preventDefault(); // no focus ring, no long-press menu
    });
    const lift = (event) => {
      if (event.pointerId !== this.pointer) return;
      this.pointer = null;
      this.pour(false);
    };
    button.addEventListener('pointerup', lift);
    button.addEventListener('pointercancel', lift);
    button.addEventListener('lostpointercapture', lift);
    button.addEventListener('contextmenu', (event) => event.preventDefault());
    // a keyboard on the focused button: Space or Enter held pours, as a press would
    button.addEventListener('keydown', (event) => {
      if (event.code !== 'Space' && event.code !== 'Enter') return;
      event.preventDefault();
      if (!event.repeat) {
        this.controls.aimAtCentre();
        this.pour(true);
      }
    });
    button.addEventListener('keyup', () => this.pour(false));
    button.addEventListener('blur', () => this.pour(false));

    addEventListener('keydown', (event) => {
      if (event.code !== POUR_KEY || event.repeat || isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault();
      this.pour(true);
    });
    addEventListener('keyup', (event) => {
      if (event.code === POUR_KEY) this.pour(false);
    });
    addEventListener('blur', () => this.pour(false));
  }

  /** @param {boolean} on tip what the hold point carries, or stop */
  pour(on) {
    this.holding.tip(this.anchor, on && !this.controls.presenting);
    this.button.setAttribute('aria-pressed', String(this.pouring));
  }

  /** @returns {boolean} whether something is being poured now */
  get pouring() {
    return this.holding.isTipping(this.anchor);
  }

  /** Show the button while something is held in front of the camera (each frame). */
  update() {
    const hidden = this.controls.presenting || this.holding.heldBy(this.anchor) === null;
    if (this.button.hidden !== hidden) this.button.hidden = hidden;
    if (hidden && this.holding.tipping.has(this.anchor)) this.pour(false); // put down, or taken by the room
  }
}
