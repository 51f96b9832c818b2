/**
 * What is near the student, in words and as a choice: the equipment they can
 * pick up, how far it is and which way, for a screen reader (a visually
 * hidden live region), for the keyboard's grab key and for a pinching hand.
 *
 * Only objects the room lets people grab and that nobody holds count, as for
 * the pointer (hover.js). Distances and directions are read from the drawn
 * lab (world space is lab space, also in AR: see ar.js) relative to the head:
 * "ahead" is within 30° of where the head faces, "behind" beyond 150°, left or
 * right between. The region is rewritten at most once a second and only when
 * its words change, so a screen reader is not flooded while the student walks.
 *
 * @module nearby
 */

import { Box3, Vector3 } from 'three';

/** How often the live region may change, ms. */
const INTERVAL_MS = 1000;
/** Equipment further than this is not "near", metres. */
const RANGE = 6;
/** At most this many objects are read out, nearest first. */
const MAX_LISTED = 5;
/** The keyboard's grab key takes equipment up to this far away, metres (the bench in front). */
const GRAB_REACH = 2.5;
/** ... within this angle of where the head faces, radians (60°). */
const GRAB_CONE = Math.PI / 3;
const AHEAD = Math.PI / 6;
const BEHIND = (5 * Math.PI) / 6;

const head = new Vector3();
const facing = new Vector3();
const at = new Vector3();
const box = new Box3();

export class Nearby {
  /**
   * @param {import('./rig.js').Rig} rig the head
   * @param {import('./scene.js').Lab} lab where the equipment is drawn
   * @param {import('./state.js').RoomState} state titles, who holds what
   * @param {import('./holding.js').Holding} holding what this page holds
   * @param {HTMLElement} region the live region the words go to
   */
  constructor(rig, lab, state, holding, region) {
    this.rig = rig;
    this.lab = lab;
    this.state = state;
    this.holding = holding;
    this.region = region;
    this.last = -Infinity;
  }

  /** Rewrite the live region if a second has passed and the words changed (each frame). */
  update(now) {
    if (now - this.last < INTERVAL_MS) return;
    this.last = now;
    this.say(this.describe());
  }

  /** Put words in the live region now (an action's answer: "Nothing to pick up ahead."). */
  say(text) {
    if (this.region.textContent !== text) this.region.textContent = text;
  }

  /** @returns {string} "Holding Beaker. Near you: Tripod (1 m, ahead), Bunsen burner (0.6 m, left)." */
  describe() {
    const held = this.holding.ids().map((id) => this.title(id));
    const near = this.around()
      .filter((item) => item.distance <= RANGE)
      .slice(0, MAX_LISTED)
      .map((item) => `${this.title(item.id)} (${metres(item.distance)}, ${direction(item.angle)})`);
    const holding = held.length ? `Holding ${held.join(' and ')}. ` : '';
    return holding + (near.length ? `Near you: ${near.join(', ')}.` : 'Nothing to pick up near you.');
  }

  /**
   * What the keyboard's grab key takes: what the middle of the view points at,
   * or else the nearest free equipment in front within reach.
   * @param {import('three').Raycaster|null} centre the ray through the middle of the view
   * @returns {string|null}
   */
  ahead(centre) {
    const pointed = centre && this.lab.pick(centre);
    if (pointed && this.free(pointed)) return pointed;
    return this.around().find((item) => item.distance <= GRAB_REACH && Math.abs(item.angle) <= GRAB_CONE)?.id ?? null;
  }

  /**
   * The free equipment whose bounds come nearest to a point, within `reach` (a pinching hand).
   * @param {Vector3} point lab coordinates
   * @param {number} reach metres
   * @returns {string|null}
   */
  nearestTo(point, reach) {
    let best = null;
    let bestDistance = reach;
    for (const id of this.freeIds()) {
      const distance = box.setFromObject(this.lab.node(id)).distanceToPoint(point);
      if (distance <= bestDistance) {
        best = id;
        bestDistance = distance;
      }
    }
    return best;
  }

  /** @returns {{id: string, distance: number, angle: number}[]} free equipment, nearest first; angle > 0 is to the left */
  around() {
    const camera = this.rig.camera;
    camera.updateWorldMatrix(true, false);
    camera.getWorldPosition(head);
    camera.getWorldDirection(facing);
    const yaw = Math.atan2(-facing.x, -facing.z);
    const items = [];
    for (const id of this.freeIds()) {
      this.lab.node(id).getWorldPosition(at);
      const dx = at.x - head.x;
      const dz = at.z - head.z;
      const bearing = Math.atan2(-dx, -dz);
      items.push({ id, distance: Math.hypot(dx, dz), angle: wrap(bearing - yaw) });
    }
    return items.sort((a, b) => a.distance - b.distance);
  }

  /** @returns {string[]} ids of the equipment anyone may pick up now */
  freeIds() {
    return Object.keys(this.state.objects).filter((id) => this.free(id));
  }

  free(id) {
    const object = this.state.objects[id];
    return Boolean(object?.interactable && !object.holder && !this.holding.isHeld(id) && this.lab.node(id));
  }

  title(id) {
    return this.state.objects[id]?.title || id;
  }
}

/** An angle folded into (-π, π]. */
function wrap(angle) {
  return Math.atan2(Math.sin(angle), Math.cos(angle));
}

/** "0.6 m" under a metre, whole metres beyond: what a person can use to find it. */
function metres(distance) {
  return distance < 1 ? `${distance.toFixed(1)} m` : `${Math.round(distance)} m`;
}

function direction(angle) {
  const size = Math.abs(angle);
  if (size <= AHEAD) return 'ahead';
  if (size >= BEHIND) return 'behind';
  return angle > 0 ? 'left' : 'right';
}
