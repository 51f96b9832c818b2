/**
 * The lab: the scene package's GLB, with its nodes bound to the room's objects.
 *
 * The GLB a scene package is served as names each object's node by its object
 * id (docs/scene-package.md). Objects are drawn where the server says they
 * are, interpolated like avatars, except what this page holds itself, which
 * the holder moves directly. Fixed objects (the bench, the shelves) are what
 * things are put down on.
 *
 * Every lab also has a phone variant beside its GLB (`scene.phone.glb`:
 * decimated, small textures, Draco-compressed; docs/scene-package.md): phones
 * (touch-only small screens) and weak links load it, desktops and headsets the
 * GLB. The server sends phones of a lab stored before variants to its GLB, and
 * if the variant cannot be loaded the GLB is tried. The download's progress is
 * shown while it lasts: on 1 Mbit/s it is most of the wait.
 *
 * @module scene
 */

import { Raycaster, Vector3 } from 'three';
import { DRACOLoader } from 'three/addons/loaders/DRACOLoader.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

import { SampleBuffer } from './interpolation.js';
import { LoadingStatus } from './loadingstatus.js';
import { TRANSFORM_FLOATS } from './protocol.js';

const DOWN = new Vector3(0, -1, 0);
/** How far above an object the drop ray starts, so a surface it sank into still counts. */
const DROP_PROBE_HEIGHT = 0.05;
/** The phone variant's name beside the GLB (scenes/addresses.py). */
const PHONE_NAME = 'scene.phone.glb';
/** Below this many Mbit/s (the browser's estimate of the link), a device gets the phone variant. */
const WEAK_LINK_MBPS = 2;
/** A touch-only screen whose shorter side is at most this many CSS pixels is a phone. */
const PHONE_SIDE_PX = 600;
/** Headset browsers, which render the full lab whatever their pointer and link. */
const HEADSET = /OculusBrowser|Quest|Pico|Wolvic/i;

/**
 * Which of a lab's GLBs this device should load: 'phone' on a phone (a touch-only
 * small screen) or a weak link, 'full' on desktops and headsets.
 * @param {Navigator} [nav]
 * @param {(query: string) => MediaQueryList} [media]
 * @param {{width: number, height: number}} [display]
 * @returns {'phone'|'full'}
 */
export function labVariant(nav = navigator, media = (query) => matchMedia(query), display = screen) {
  if (HEADSET.test(nav.userAgent)) return 'full';
  const link = /** @type {{saveData?: boolean, effectiveType?: string, downlink?: number}|undefined} */ (nav.connection);
  if (link && (link.saveData || ['slow-2g', '2g', '3g'].includes(link.effectiveType ?? '') || (link.downlink ?? Infinity) < WEAK_LINK_MBPS)) {
    return 'phone';
  }
  const touchOnly = nav.maxTouchPoints > 0 && !media('(any-pointer: fine)').matches;
  return touchOnly && Math.min(display.width, display.height) <= PHONE_SIDE_PX ? 'phone' : 'full';
}

/**
 * The address of a lab's phone variant, beside its GLB.
 * @param {string} glbUrl
 */
export function phoneVariantUrl(glbUrl) {
  return new URL(PHONE_NAME, new URL(glbUrl, location.href)).pathname;
}

export class Lab {
  /**
   * Load a practical's scene model (before joining, so the room is there to see on arrival):
   * the phone variant on phones and weak links (labVariant), the GLB otherwise or if the variant fails.
   * @param {import('three').Scene} scene where to add the lab
   * @param {string} url the GLB's address
   * @param {'phone'|'full'} [variant]
   * @returns {Promise<Lab>}
   */
  static async load(scene, url, variant = labVariant()) {
    const progress = new LoadingStatus(document);
    // three's own decoder files, from its npm package; fetched only for a Draco-compressed GLB
    const draco = new DRACOLoader().setDecoderPath(import.meta.resolve('three/addons/libs/draco/gltf/'));
    const loader = new GLTFLoader().setDRACOLoader(draco);
    try {
      if (variant === 'phone') {
        try {
          return new Lab(scene, await loader.loadAsync(phoneVariantUrl(url), (event) => progress.show(event)), 'phone');
        } catch (error) {
          console.warn(`The lab's phone variant did not load (${error}); loading the full lab.`);
        }
      }
      return new Lab(scene, await loader.loadAsync(url, (event) => progress.show(event)), 'full');
    } finally {
      progress.remove();
      draco.dispose(); // its decoding workers
    }
  }

  /**
   * @param {import('three').Scene} scene
   * @param {import('three/addons/loaders/GLTFLoader.js').GLTF} gltf
   * @param {'phone'|'full'} [variant] which of the lab's GLBs it is
   */
  constructor(scene, gltf, variant = 'full') {
    this.root = gltf.scene;
    this.variant = variant;
    /**
     * Nodes by their name in the GLB. Three.js renames nodes (it strips '/'
     * and '.', so `beaker-1/0` would become `beaker-10`), so names are read
     * from the glTF itself through the loader's node associations.
     * @type {Map<string, import('three').Object3D>}
     */
    this.nodesByName = new Map();
    this.root.traverse((node) => {
      const index = gltf.parser.associations.get(node)?.nodes;
      const name = index === undefined ? undefined : gltf.parser.json.nodes[index].name;
      if (name !== undefined && !this.nodesByName.has(name)) this.nodesByName.set(name, node);
    });
    /** @type {Map<string, {node: import('three').Object3D, buffer: SampleBuffer}>} */
    this.equipment = new Map();
    /** @type {Map<import('three').Object3D, string>} node -> id of an object that can be picked up */
    this.pickable = new Map();
    /** Objects this page moves itself (it holds them): server echoes would drag them back. */
    this.local = new Set();
    /** @type {import('three').Object3D[]} what things are put down on: everything that cannot be picked up */
    this.surfaces = this.root.children;
    this.scratch = new Float32Array(TRANSFORM_FLOATS);
    this.raycaster = new Raycaster();
    scene.add(this.root);
  }

  /**
   * Bind the room's objects to their nodes (by object id) and put each where
   * the room says, at once (a join or a reset is a jump, not a motion).
   * @param {Record<string, import('./state.js').LabObject>} objects
   */
  setObjects(objects) {
    for (const object of Object.values(objects)) {
      if (!this.equipment.has(object.id)) this.bind(object);
      this.snap(object.id, object.transform);
    }
  }

  /** @param {import('./state.js').LabObject} object */
  bind(object) {
    const node = this.nodesByName.get(object.id);
    if (!node) {
      console.warn(`The lab's GLB has no node named ${object.id}; it will not be drawn.`);
      return;
    }
    this.root.attach(node); // server transforms are in lab space, so no parent in between
    this.equipment.set(object.id, { node, buffer: new SampleBuffer(TRANSFORM_FLOATS) });
    // Only what the room lets people grab is offered to the pointer: a click on the bench is a look, not a request.
    if (object.interactable) this.pickable.set(node, object.id);
    this.surfaces = this.root.children.filter((child) => !this.pickable.has(child));
  }

  /** Where an object should be drawn, per the server (ignored for objects this page holds). */
  push(id, transform, time) {
    const item = this.equipment.get(id);
    if (item && !this.local.has(id)) item.buffer.push(time, transform);
  }

  /** Put one object at a transform at once (a release or reset is a jump, not a motion). */
  snap(id, transform) {
    const item = this.equipment.get(id);
    if (!item) return;
    item.buffer.clear();
    item.buffer.push(performance.now(), transform);
    applyTransform(item.node, transform);
  }

  /** Draw the objects others move at `time` (local ms, already delayed). */
  render(time) {
    for (const [id, { node, buffer }] of this.equipment) {
      if (this.local.has(id) || buffer.empty) continue;
      applyTransform(node, buffer.sample(time, this.scratch));
    }
  }

  /** @returns {import('three').Object3D|undefined} the node drawn for an object */
  node(id) {
    return this.equipment.get(id)?.node;
  }

  /**
   * The nearest object that can be picked up on a ray, or null. Fixed
   * objects in front of it (a shelf) hide it, as they would in the room.
   * @param {import('three').Raycaster} raycaster
   * @returns {string|null} object id
   */
  pick(raycaster) {
    const hit = raycaster.intersectObject(this.root, true)[0];
    for (let node = hit?.object; node; node = node.parent) {
      const id = this.pickable.get(node);
      if (id) return id;
    }
    return null;
  }

  /**
   * The height of the furniture surface under a point, so a released object
   * lands on the bench instead of hanging in the air; the floor if nothing.
   * @param {Vector3} point lab coordinates
   * @returns {number}
   */
  surfaceBelow(point) {
    this.raycaster.set(new Vector3(point.x, point.y + DROP_PROBE_HEIGHT, point.z), DOWN);
    const hit = this.raycaster.intersectObjects(this.surfaces, true)[0];
    return hit ? hit.point.y : 0;
  }
}

/**
 * Set a node's local transform from 7 floats (position xyz, quaternion xyzw).
 * @param {import('three').Object3D} node
 * @param {ArrayLike<number>} t
 */
export function applyTransform(node, t) {
  node.position.set(t[0], t[1], t[2]);
  node.quaternion.set(t[3], t[4], t[5], t[6]);
}
