/**
 * Everyone else in the room: a head with a visor (so you can tell where they
 * look), a body hanging below it, two hands, and a name tag.
 *
 * Poses are drawn RENDER_DELAY_MS in the past on each sender's own timeline
 * (see interpolation.js), or further back for someone heard less often, so
 * people move smoothly however their updates arrive.
 *
 * @module avatars
 */

import {
  BoxGeometry,
  CanvasTexture,
  CapsuleGeometry,
  Color,
  Euler,
  Group,
  Mesh,
  MeshStandardMaterial,
  SphereGeometry,
  Sprite,
  SpriteMaterial,
} from 'three';

import { SampleBuffer, SenderClock } from './interpolation.js';
import { POSE_FLOATS } from './protocol.js';
import { applyTransform } from './scene.js';

const HEAD = new SphereGeometry(0.12, 24, 16);
const VISOR = new BoxGeometry(0.16, 0.05, 0.04);
const BODY = new CapsuleGeometry(0.14, 0.45, 4, 12);
const HAND = new BoxGeometry(0.07, 0.035, 0.11);
const VISOR_MATERIAL = new MeshStandardMaterial({ color: 0x202830, roughness: 0.3 });
/** How solid someone looks while their connection is down (they may come back within the resume window). */
const AWAY_OPACITY = 0.35;
/** Head centre to body centre: the body hangs below the head, turned only with its heading. */
const BODY_DROP = 0.6;
const NAME_HEIGHT = 0.28;
/** Glow of a speaking head: green, brighter the louder (levels are RMS, rarely above 0.3). */
const SPEAKING_GLOW = new Color(0x3ecf6e);
const GLOW_GAIN = 4;

const euler = new Euler();

/**
 * A colour per slot, spread around the hue circle so neighbours differ.
 * @param {number} slot
 */
function slotColour(slot) {
  return new Color().setHSL((slot * 0.618034) % 1, 0.65, 0.55);
}

/** A sprite showing a name, drawn once on a canvas. */
function nameTag(name) {
  const canvas = document.createElement('canvas');
  canvas.width = 256;
  canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'rgba(20, 24, 32, 0.75)';
  ctx.beginPath();
  ctx.roundRect(0, 8, 256, 48, 24);
  ctx.fill();
  ctx.fillStyle = '#fff';
  ctx.font = '600 28px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(name, 128, 33, 236);
  const sprite = new Sprite(new SpriteMaterial({ map: new CanvasTexture(canvas), depthTest: false }));
  sprite.scale.set(0.48, 0.12, 1);
  sprite.renderOrder = 1;
  return sprite;
}

class Avatar {
  /** @param {import('./state.js').Participant} participant */
  constructor(participant) {
    this.material = new MeshStandardMaterial({ color: slotColour(participant.slot), roughness: 0.6 });
    /** speaking glow now, 0..1 (setLevel) */
    this.glow = 0;
    this.head = new Group();
    this.head.add(new Mesh(HEAD, this.material));
    const visor = new Mesh(VISOR, VISOR_MATERIAL);
    visor.position.set(0, 0.01, -0.11); // -z is forward, as in WebXR
    this.head.add(visor);
    this.body = new Mesh(BODY, this.material);
    this.hands = [new Mesh(HAND, this.material), new Mesh(HAND, this.material)];
    this.tag = nameTag(participant.name);
    this.group = new Group();
    this.group.add(this.head, this.body, ...this.hands, this.tag);
    this.group.visible = false; // until the first pose arrives
    this.clock = new SenderClock();
    this.buffer = new SampleBuffer(POSE_FLOATS);
    this.pose = new Float32Array(POSE_FLOATS);
    this.setConnected(participant.connected);
  }

  setConnected(connected) {
    this.material.transparent = !connected; // opaque while here: cheaper, and sorts right
    this.material.opacity = connected ? 1 : AWAY_OPACITY;
    this.material.needsUpdate = true; // the shader bakes in whether the material is opaque
    this.tag.material.opacity = this.material.opacity; // sprites are always blended
  }

  /** @param {number} level speaking level 0..1 (voice_levels), shown as a glow */
  setLevel(level) {
    this.glow = Math.min(1, level * GLOW_GAIN);
    this.material.emissive.copy(SPEAKING_GLOW).multiplyScalar(this.glow);
  }

  push(stamp, pose, arrival) {
    const time = this.clock.toLocal(stamp, arrival);
    if (time !== null) this.buffer.push(time, pose);
  }

  render(time) {
    if (this.buffer.empty) return;
    const pose = this.buffer.sample(time - this.buffer.lag, this.pose);
    applyTransform(this.head, pose);
    applyTransform(this.hands[0], pose.subarray(7, 14));
    applyTransform(this.hands[1], pose.subarray(14, 21));
    const yaw = euler.setFromQuaternion(this.head.quaternion, 'YXZ').y;
    this.body.position.set(pose[0], pose[1] - BODY_DROP, pose[2]);
    this.body.rotation.set(0, yaw, 0);
    this.tag.position.set(pose[0], pose[1] + NAME_HEIGHT, pose[2]);
    this.group.visible = true;
  }

  dispose() {
    this.material.dispose();
    this.tag.material.map.dispose();
    this.tag.material.dispose();
  }
}

export class Avatars {
  /** @param {import('three').Object3D} parent where avatars are added */
  constructor(parent) {
    this.parent = parent;
    /** @type {Map<string, Avatar>} */
    this.avatars = new Map();
  }

  /**
   * Buffer a pose from a tick frame.
   * @param {import('./state.js').Participant} participant
   * @param {number} stamp sender's u32 ms stamp
   * @param {Float32Array} pose 21 floats
   * @param {number} arrival local performance.now()
   */
  push(participant, stamp, pose, arrival) {
    let avatar = this.avatars.get(participant.id);
    if (!avatar) {
      avatar = new Avatar(participant);
      this.avatars.set(participant.id, avatar);
      this.parent.add(avatar.group);
    }
    avatar.push(stamp, pose, arrival);
  }

  /** Fade someone whose connection dropped; restore them when they are back. */
  setConnected(id, connected) {
    this.avatars.get(id)?.setConnected(connected);
  }

  /**
   * Make speakers glow.
   * @param {Record<string, number>} levels by participant id; missing means silent
   */
  showLevels(levels) {
    for (const [id, avatar] of this.avatars) avatar.setLevel(levels[id] ?? 0);
  }

  /** Take someone's avatar away (they left or were removed). */
  remove(id) {
    const avatar = this.avatars.get(id);
    if (!avatar) return;
    this.parent.remove(avatar.group);
    avatar.dispose();
    this.avatars.delete(id);
  }

  /** Keep only the avatars of these participants (after a fresh snapshot). */
  retain(ids) {
    for (const id of [...this.avatars.keys()]) if (!ids.has(id)) this.remove(id);
  }

  /** Draw everyone at `time` (local ms, already delayed; someone heard less often, further back: SampleBuffer.lag). */
  render(time) {
    for (const avatar of this.avatars.values()) avatar.render(time);
  }

  /** @returns {Record<string, number>} each avatar's speaking glow, 0..1, for the test hooks */
  glows() {
    const out = {};
    for (const [id, avatar] of this.avatars) out[id] = avatar.glow;
    return out;
  }

  /** @returns {Record<string, {position: number[]}>} drawn head positions, for the test hooks */
  positions() {
    const out = {};
    for (const [id, avatar] of this.avatars) {
      if (avatar.group.visible) out[id] = { position: avatar.head.position.toArray() };
    }
    return out;
  }
}
