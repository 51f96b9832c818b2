/**
 * The lab on a real table (immersive-ar with WebXR hit-test): the first
 * surface the device finds straight ahead of it gets the whole lab, shrunk
 * so its widest side is a metre, standing on that surface.
 *
 * The table-top transform is put on the viewer, not on the lab: the rig (the
 * parent of the headset's camera and controllers, rig.js) is scaled up by
 * the inverse of the lab's shrink and placed so that the surface point found
 * is the middle of the lab's floor, keeping the heading the student had. So
 * the world stays lab space: the pose sent to the room (read from world
 * transforms), grabs, put-downs, hover and the avatars of others all keep
 * lab coordinates with no conversion, and a step of 10 cm over the table is
 * a walk of the lab's scale times that. When the session ends the rig gets
 * its own place, heading and size back.
 *
 * A device without hit-test gets the lab at full size around it, and a
 * sentence saying so.
 *
 * @module ar
 */

import { Box3, Matrix4, Quaternion, Vector3 } from 'three';

/** The lab's widest horizontal side on the table, real metres. */
const FIT = 1;

const hit = new Matrix4();
const surface = new Vector3();
const size = new Vector3();
const centre = new Vector3();

export class TableTop {
  /**
   * @param {import('three').WebGLRenderer} renderer its reference space is where hit poses are read
   * @param {import('./rig.js').Rig} rig what the table-top transform is put on
   * @param {import('./scene.js').Lab} lab what is fitted to the table
   * @param {(text: string) => void} notify shows a short message to the person
   */
  constructor(renderer, rig, lab, notify) {
    this.renderer = renderer;
    this.rig = rig;
    this.lab = lab;
    this.notify = notify;
    /** @type {{scale: number, surface: number[]}|null} how the lab sits on the table in this session */
    this.placed = null;
    this.session = null;
    this.source = null;
    this.saved = null;
  }

  /**
   * Look for a surface in front of the device and put the lab on the first one found.
   * @param {XRSession} session an immersive-ar session the renderer already presents
   */
  async start(session) {
    this.session = session;
    const group = this.rig.group;
    this.saved = { position: group.position.clone(), quaternion: group.quaternion.clone(), scale: group.scale.clone() };
    session.addEventListener('end', () => this.stop(session));
    try {
      const viewer = await session.requestReferenceSpace('viewer');
      this.source = await session.requestHitTestSource({ space: viewer });
    } catch (error) {
      this.notify(`This device cannot find surfaces (${error.message}): the lab is shown at full size.`);
      return;
    }
    const look = (time, frame) => {
      if (this.session !== session || this.placed) return;
      const pose = frame.getHitTestResults(this.source)[0]?.getPose(this.renderer.xr.getReferenceSpace());
      if (pose) this.place(pose.transform.matrix);
      else session.requestAnimationFrame(look);
    };
    session.requestAnimationFrame(look);
  }

  /**
   * Fit the lab to the table: the surface point (in the session's reference
   * space) becomes the middle of the lab's floor.
   * @param {Float32Array|number[]} matrix the hit pose
   */
  place(matrix) {
    hit.fromArray(matrix);
    surface.setFromMatrixPosition(hit);
    const bounds = new Box3().setFromObject(this.lab.root);
    bounds.getSize(size);
    bounds.getCenter(centre);
    const scale = Math.min(1, FIT / Math.max(size.x, size.z, 1e-3));
    const group = this.rig.group;
    const heading = new Quaternion().setFromAxisAngle(group.up, group.rotation.y);
    group.quaternion.copy(heading);
    group.scale.setScalar(1 / scale);
    const offset = surface.clone().multiplyScalar(1 / scale).applyQuaternion(heading);
    group.position.set(centre.x, bounds.min.y, centre.z).sub(offset);
    group.updateMatrixWorld(true);
    this.placed = { scale, surface: surface.toArray() };
    this.source.cancel();
    this.source = null;
  }

  /** The session ended: the rig gets its own place, heading and size back. */
  stop(session) {
    if (this.session !== session) return;
    this.source?.cancel();
    const group = this.rig.group;
    group.position.copy(this.saved.position);
    group.quaternion.copy(this.saved.quaternion);
    group.scale.copy(this.saved.scale);
    this.session = null;
    this.source = null;
    this.placed = null;
  }
}
