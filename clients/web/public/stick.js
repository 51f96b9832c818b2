/**
 * The on-screen stick a phone walks with: a disc at the bottom left; pushing
 * its knob away from the middle walks that way (up is forward), further for
 * faster. A phone has no keys, and a finger dragged on the 3D view already
 * looks around (controls.js), so walking needs a control of its own.
 *
 * It shows only where input is by touch (`body[data-input="touch"]`, see
 * inputkind.js; controls.css). It takes its own pointer, so one thumb walks
 * while another finger looks or taps. Screen readers skip it: the keyboard
 * walks with W A S D.
 *
 * @module stick
 */

/** How far the knob travels from the middle, CSS pixels: this far is full speed. */
const TRAVEL_PX = 44;
/** Pushes shorter than this fraction of the travel stand still (a resting thumb wobbles). */
const DEAD_ZONE = 0.12;

export class Stick {
  /** @param {HTMLElement} container where the stick goes (the overlay) */
  constructor(container) {
    this.element = document.createElement('div');
    this.element.className = 'stick';
    this.element.setAttribute('aria-hidden', 'true');
    this.knob = document.createElement('div');
    this.knob.className = 'stick-knob';
    this.element.append(this.knob);
    container.append(this.element);
    /** The walk asked for, body frame: x to the right, z backwards (the W key is z = -1); length ≤ 1. */
    this.walk = { x: 0, z: 0 };
    this.turn = { yaw: 0, pitch: 0 };
    this.pointer = null;

    this.element.addEventListener('pointerdown', (event) => {
      if (this.pointer !== null) return;
      this.pointer = event.pointerId;
      this.element.setPointerCapture(event.pointerId);
      this.push(event);
      event.preventDefault();
    });
    this.element.addEventListener('pointermove', (event) => {
      if (event.pointerId === this.pointer) this.push(event);
    });
    const letGo = (event) => {
      if (event.pointerId !== this.pointer) return;
      this.pointer = null;
      this.walk = { x: 0, z: 0 };
      this.knob.style.transform = '';
    };
    this.element.addEventListener('pointerup', letGo);
    this.element.addEventListener('pointercancel', letGo);
  }

  /** Move the knob under the finger (kept within its travel) and set the walk from it. */
  push(event) {
    const rect = this.element.getBoundingClientRect();
    let dx = event.clientX - (rect.left + rect.width / 2);
    let dy = event.clientY - (rect.top + rect.height / 2);
    const length = Math.hypot(dx, dy);
    if (length > TRAVEL_PX) {
      dx *= TRAVEL_PX / length;
      dy *= TRAVEL_PX / length;
    }
    this.knob.style.transform = `translate(${dx}px, ${dy}px)`;
    const strength = Math.min(length, TRAVEL_PX) / TRAVEL_PX;
    this.walk = strength < DEAD_ZONE ? { x: 0, z: 0 } : { x: dx / TRAVEL_PX, z: dy / TRAVEL_PX };
  }
}
