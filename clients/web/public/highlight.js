/**
 * The equipment the current step is about, shown with a pulsing outline: a
 * student who reads "Put the beaker on the tripod" sees which beaker and
 * which tripod glow.
 *
 * The outline is an inverted hull: each of the object's meshes drawn again,
 * back faces only, pushed out along its normals, in one flat colour whose
 * opacity pulses. The hulls live outside the lab's node tree, in a group of
 * their own that copies each mesh's world transform every frame, so nothing
 * that walks the lab (picking, putting down, the ghost a held object casts,
 * the hover glow that swaps materials) ever meets them. Which objects: the
 * room's snapshot lists, per station and step, the objects the step's
 * condition names (`stations.list[i].highlight[step]`); a step whose
 * `highlight` is false shows none.
 *
 * A hint (hints.js) outlines what it names with a second set of its own, in
 * another colour and a little further out, so a student tells "what this step
 * is about" (amber) from "what the hint points at" (cyan) even on the same
 * beaker. Its `nodeOf` also finds a zone's mesh, when the lab's model has one
 * named by the zone id.
 *
 * @module highlight
 */

import { BackSide, Color, Group, Mesh, ShaderMaterial } from 'three';

/** The step's outline: amber. */
export const STEP_COLOR = 0xffb020;
/** How far the outline stands out from the surface, metres. */
const THICKNESS = 0.005;
/** One pulse, ms. */
const PERIOD_MS = 1400;

function hullMaterial(color, thickness) {
  return new ShaderMaterial({
    uniforms: { color: { value: new Color(color) }, opacity: { value: 0.8 }, thickness: { value: thickness } },
    vertexShader: /* glsl */ `
      uniform float thickness;
      void main() {
        vec3 pushed = position + normalize(normal) * thickness;
        gl_Position = projectionMatrix * modelViewMatrix * vec4(pushed, 1.0);
      }`,
    fragmentShader: /* glsl */ `
      uniform vec3 color;
      uniform float opacity;
      void main() { gl_FragColor = vec4(color, opacity); }`,
    side: BackSide,
    transparent: true,
    depthWrite: false,
  });
}

export class Highlights {
  /**
   * @param {import('three').Scene} scene where the outlines are drawn
   * @param {import('./scene.js').Lab} lab the objects' nodes
   * @param {object} [options]
   * @param {number} [options.color] the outline's colour (the step's amber by default)
   * @param {number} [options.thickness] how far it stands out, metres
   * @param {string} [options.name] the group's name in the scene
   * @param {(id: string) => import('three').Object3D|undefined} [options.nodeOf] the node drawn for an id (the lab's objects by default)
   */
  constructor(scene, lab, { color = STEP_COLOR, thickness = THICKNESS, name = 'step-highlights', nodeOf = (id) => lab.node(id) } = {}) {
    this.lab = lab;
    this.nodeOf = nodeOf;
    this.material = hullMaterial(color, thickness);
    this.group = new Group();
    this.group.name = name;
    scene.add(this.group);
    /** @type {Map<string, {mesh: import('three').Mesh, hull: Mesh}[]>} outlined object id -> its meshes and their hulls */
    this.shown = new Map();
  }

  /** @returns {string[]} the objects outlined now */
  get ids() {
    return [...this.shown.keys()];
  }

  /**
   * Outline exactly these objects (ids with no node to draw are skipped).
   * @param {string[]} ids
   */
  show(ids) {
    const wanted = new Set(ids.filter((id) => this.nodeOf(id)));
    for (const [id, parts] of this.shown) {
      if (wanted.has(id)) continue;
      for (const { hull } of parts) hull.removeFromParent();
      this.shown.delete(id);
    }
    for (const id of wanted) if (!this.shown.has(id)) this.shown.set(id, this.outline(id));
  }

  outline(id) {
    const parts = [];
    this.nodeOf(id).traverse((mesh) => {
      if (!mesh.isMesh) return;
      let geometry = mesh.geometry;
      if (!geometry.attributes.normal) {
        geometry = geometry.clone(); // the hull needs normals; the lab's own geometry stays as it is
        geometry.computeVertexNormals();
      }
      const hull = new Mesh(geometry, this.material);
      hull.matrixAutoUpdate = false;
      hull.frustumCulled = false; // pushed out past the geometry's bounds
      hull.raycast = () => {};
      hull.renderOrder = 1;
      this.group.add(hull);
      parts.push({ mesh, hull });
    });
    return parts;
  }

  /** Follow the objects and pulse (each frame, after the lab moved them). */
  update(nowMs) {
    if (!this.shown.size) return;
    this.material.uniforms.opacity.value = 0.35 + 0.5 * (0.5 + 0.5 * Math.sin((nowMs / PERIOD_MS) * 2 * Math.PI));
    for (const parts of this.shown.values()) {
      for (const { mesh, hull } of parts) {
        mesh.updateWorldMatrix(true, false);
        hull.matrix.copy(mesh.matrixWorld);
        hull.matrixWorldNeedsUpdate = true;
      }
    }
  }
}
