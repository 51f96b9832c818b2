/**
 * What the mouse or a controller points at: equipment that can be picked up
 * glows and shows its title, so a student can tell the copper sulfate beaker
 * from the water one before reaching for it.
 *
 * Only objects the room lets people grab and that nobody holds respond; the
 * bench, the shelves and a beaker in someone's hand stay as they are. The
 * glow is an emissive tint on copies of the object's materials (the loader
 * shares materials between meshes, so the originals are left alone and put
 * back when the pointer moves on). The title is a DOM label over the object's
 * top: crisp, read by screen readers, and shown in AR through the DOM
 * overlay; a VR headset draws no DOM, so there the glow alone tells.
 *
 * @module hover
 */

import { Box3, Color, Vector3 } from 'three';

const TINT = new Color(0x3d8bfd);
const TINT_INTENSITY = 0.6;
/** The label floats this far above the object's top, metres. */
const LABEL_LIFT = 0.03;

const box = new Box3();
const point = new Vector3();

export class Hover {
  /**
   * @param {import('three').WebGLRenderer} renderer its canvas, and the headset's camera while presenting
   * @param {import('three').Camera} camera the desktop camera
   * @param {import('./scene.js').Lab} lab what can be pointed at
   * @param {import('./state.js').RoomState} state who holds what, and titles
   * @param {import('./holding.js').Holding} holding an anchor that holds something points nothing out
   * @param {HTMLElement} container where the label goes (the overlay)
   */
  constructor(renderer, camera, lab, state, holding, container) {
    this.renderer = renderer;
    this.camera = camera;
    this.lab = lab;
    this.state = state;
    this.holding = holding;
    /** @type {{anchor: import('three').Object3D, ray: () => import('three').Raycaster|null}[]} */
    this.sources = [];
    /** @type {string|null} the object highlighted now */
    this.id = null;
    /** @type {Map<import('three').Mesh, import('three').Material>} highlighted meshes and their own materials */
    this.originals = new Map();
    this.label = document.createElement('div');
    this.label.className = 'hover-label';
    this.label.hidden = true;
    container.append(this.label);
  }

  /**
   * Point with another source: `ray` returns where it points now, or null
   * when it points nowhere (the mouse left the window, a controller is off).
   * @param {import('three').Object3D} anchor the hand it belongs to
   * @param {() => import('three').Raycaster|null} ray
   */
  track(anchor, ray) {
    this.sources.push({ anchor, ray });
  }

  /** Highlight what is pointed at now and keep its label over it (each frame). */
  update() {
    const id = this.pointedAt();
    if (id !== this.id) {
      this.unlight();
      if (id) this.light(id);
      this.id = id;
    }
    if (this.id) this.placeLabel(this.lab.node(this.id));
  }

  /** @returns {string|null} the free piece of equipment the first free hand points at */
  pointedAt() {
    for (const { anchor, ray } of this.sources) {
      if (this.holding.heldBy(anchor)) continue;
      const raycaster = ray();
      const id = raycaster && this.lab.pick(raycaster);
      if (id && this.state.objects[id] && !this.state.objects[id].holder) return id;
    }
    return null;
  }

  light(id) {
    this.lab.node(id).traverse((mesh) => {
      if (!mesh.isMesh || !mesh.material.emissive) return;
      this.originals.set(mesh, mesh.material);
      mesh.material = mesh.material.clone();
      mesh.material.emissive.copy(TINT);
      mesh.material.emissiveIntensity = TINT_INTENSITY;
    });
    this.label.textContent = this.state.objects[id].title || id;
    this.label.hidden = false;
  }

  unlight() {
    for (const [mesh, material] of this.originals) {
      mesh.material.dispose();
      mesh.material = material;
    }
    this.originals.clear();
    this.label.hidden = true;
  }

  /** Put the label just above the object's top, as this frame's camera sees it. */
  placeLabel(node) {
    box.setFromObject(node);
    box.getCenter(point);
    point.y = box.max.y + LABEL_LIFT;
    const at = this.screenPoint(point.x, point.y, point.z);
    this.label.hidden = at === null;
    if (at) this.label.style.transform = `translate(${at[0]}px, ${at[1]}px) translate(-50%, -100%)`;
  }

  /**
   * Where a lab-space point appears on the page, in CSS pixels; null if behind the viewer.
   * @returns {[number, number]|null}
   */
  screenPoint(x, y, z) {
    const xr = this.renderer.xr;
    const camera = xr.isPresenting ? xr.getCamera() : this.camera; // the headset's camera is posed by three.js itself
    if (camera === this.camera) camera.updateWorldMatrix(true, false);
    point.set(x, y, z).project(camera);
    if (point.z > 1) return null;
    const rect = this.renderer.domElement.getBoundingClientRect();
    return [rect.left + ((point.x + 1) / 2) * rect.width, rect.top + ((1 - point.y) / 2) * rect.height];
  }
}
