/**
 * Headsets and AR phones: Enter VR / Enter AR buttons and controller grabs
 * (bare hands pinch: hands.js; the lab on a real table in AR: ar.js).
 *
 * A button appears only when the browser says it can run that session mode,
 * so a desktop without a headset sees no dead button. In a session the
 * headset moves the camera inside the rig (rig.js), the controller grips
 * become the hands the room sees, and pulling the trigger or squeezing the
 * grip picks up the equipment the controller points at. Pointing highlights
 * equipment (hover.js); while a hand holds something its ray aims the
 * put-down, and letting go puts it where the ray meets a surface (placing.js).
 * A tracked hand's input source is not a controller: its select and squeeze
 * grab nothing here, its pinch does (hands.js). A finger on an AR phone's
 * screen is a controller with a ray and no grip: what it picks up follows
 * the ray, and lifting the finger puts it where the ray then points. Reach
 * is in real metres, so in a table-top AR lab (ar.js) it spans more of it.
 *
 * In immersive VR no DOM is drawn, so the challenge HUD shows as a panel in
 * the world (vrpanel.js): held above the left controller, its buttons pressed
 * with a controller's ray. A trigger pulled on the panel presses the button
 * there (on `select`) and grabs nothing. The B/Y button of either
 * controller (`gamepad.buttons[5]` in the xr-standard mapping: the upper
 * face button) asks for a hint, as the panel's Hint button does: the
 * trigger and the grip already grab, and a face button is one a student can
 * find without looking.
 *
 * @module xr
 */

import { BoxGeometry, BufferGeometry, Line, LineBasicMaterial, Mesh, MeshStandardMaterial, Raycaster, Vector3 } from 'three';

import { TableTop } from './ar.js';
import { Hands } from './hands.js';

/** How far a controller ray reaches for equipment, real metres: across the bench, not across the room. */
const REACH = 4;
const HAND = new BoxGeometry(0.06, 0.03, 0.1);
const HAND_MATERIAL = new MeshStandardMaterial({ color: 0xe8c39e, roughness: 0.7 });
/** The xr-standard gamepad's B/Y button (the upper face button): asks for a hint. */
const HINT_BUTTON = 5;

export class XR {
  /**
   * @param {import('three').WebGLRenderer} renderer
   * @param {import('three').Scene} scene
   * @param {import('./rig.js').Rig} rig
   * @param {import('./scene.js').Lab} lab what controllers can pick
   * @param {import('./holding.js').Holding} holding
   * @param {import('./hover.js').Hover} hover
   * @param {(text: string) => void} notify shows a short message to the person
   * @param {import('./vrpanel.js').VrPanel} panel the HUD in the world, shown in immersive-vr sessions
   * @param {import('./nearby.js').Nearby} nearby finds what a pinching hand reaches
   */
  constructor(renderer, scene, rig, lab, holding, hover, notify, panel, nearby) {
    this.renderer = renderer;
    this.panel = panel;
    this.scene = scene;
    this.rig = rig;
    this.lab = lab;
    this.holding = holding;
    this.hover = hover;
    this.notify = notify;
    this.raycaster = new Raycaster();
    renderer.xr.enabled = true;
    for (const index of [0, 1]) this.addController(index);
    this.hands = new Hands(renderer, rig, holding, nearby);
    this.tableTop = new TableTop(renderer, rig, lab, notify);
    this.keepDesktopView();
  }

  /**
   * Offer the session modes this browser supports.
   * @param {HTMLElement} container where the buttons go
   * @param {HTMLElement} overlay the HUD, kept visible over AR passthrough
   */
  async offerSessions(container, overlay) {
    const modes = [
      ['immersive-vr', 'VR', { optionalFeatures: ['local-floor', 'bounded-floor', 'hand-tracking'] }],
      ['immersive-ar', 'AR', { optionalFeatures: ['local-floor', 'dom-overlay', 'hit-test', 'hand-tracking'], domOverlay: { root: overlay } }],
    ];
    for (const [mode, label, init] of modes) {
      if (await navigator.xr?.isSessionSupported(mode).catch(() => false)) container.append(this.button(mode, label, init));
    }
  }

  button(mode, label, init) {
    const button = document.createElement('button');
    button.textContent = `Enter ${label}`;
    let session = null;
    button.addEventListener('click', async () => {
      if (session) {
        await session.end();
        return;
      }
      try {
        session = await navigator.xr.requestSession(mode, init);
      } catch (error) {
        this.notify(`Could not start ${label}: ${error.message}`);
        return;
      }
      session.addEventListener('end', () => {
        session = null;
        button.textContent = `Enter ${label}`;
        this.panel.setImmersive(false);
      });
      await this.renderer.xr.setSession(session);
      button.textContent = `Exit ${label}`;
      this.panel.setImmersive(mode === 'immersive-vr'); // AR shows the DOM HUD through its overlay
      if (mode === 'immersive-vr') this.watchHintButton(session);
      else this.tableTop.start(session);
    });
    return button;
  }

  addController(index) {
    const xr = this.renderer.xr;
    const controller = xr.getController(index);
    const grip = xr.getControllerGrip(index);
    grip.add(new Mesh(HAND, HAND_MATERIAL));
    const ray = new Line(new BufferGeometry().setFromPoints([new Vector3(), new Vector3(0, 0, -REACH)]), new LineBasicMaterial({ color: 0xffffff }));
    controller.add(ray);
    this.rig.group.add(controller, grip);
    let hand = false; // a tracked hand, not a controller: hands.js
    let holder = grip; // what carries what this source picks up: the grip, or the ray of a finger on a screen
    controller.addEventListener('connected', (event) => {
      hand = Boolean(event.data.hand);
      holder = event.data.targetRayMode === 'screen' ? controller : grip;
      if (!hand) this.rig.grips[event.data.handedness === 'left' ? 0 : 1] = grip;
    });
    controller.addEventListener('disconnected', () => {
      this.rig.grips = this.rig.grips.map((g) => (g === grip ? null : g));
      this.releaseWith(holder);
    });
    const aim = new Raycaster();
    const pointing = () => {
      if (!controller.visible) return null; // no pose: no session, or the controller is off
      controller.updateWorldMatrix(true, false);
      aim.far = this.reach(); // highlights only what this hand can reach to grab
      return aim.setFromXRController(controller);
    };
    // A trigger pulled on the VR panel is a button press there (on `select`, when it is let go), not a grab.
    let onPanel = false;
    controller.addEventListener('selectstart', () => {
      onPanel = this.panel.touches(pointing(), grip);
      if (!onPanel && !hand) this.grabWith(controller, holder);
    });
    controller.addEventListener('select', () => {
      if (onPanel) this.panel.select(pointing(), grip);
    });
    controller.addEventListener('selectend', () => {
      if (!onPanel && !hand) this.releaseWith(holder);
    });
    controller.addEventListener('squeezestart', () => hand || this.grabWith(controller, holder));
    controller.addEventListener('squeezeend', () => hand || this.releaseWith(holder));
    this.holding.aimWith(grip, pointing);
    this.holding.aimWith(controller, pointing);
    this.hover.track(grip, () => {
      const ray = pointing();
      return ray && !this.panel.touches(ray, grip) ? ray : null; // aiming at the panel lights no equipment behind it
    });
    this.panel.track(pointing, grip);
  }

  /**
   * Each frame of the session, look at every controller's B/Y button; a press
   * (not yet down at the frame before) asks for a hint. Gamepad buttons send no
   * events in WebXR, so they are polled, on the session's own frames.
   */
  watchHintButton(session) {
    const down = new WeakMap();
    const poll = () => {
      for (const source of session.inputSources) {
        const pressed = Boolean(source.gamepad?.buttons[HINT_BUTTON]?.pressed);
        if (pressed && !down.get(source)) this.panel.askHint();
        down.set(source, pressed);
      }
      session.requestAnimationFrame(poll);
    };
    session.requestAnimationFrame(poll);
  }

  /** Pick up what the controller points at; it keeps its distance and angle to `holder` (the hand, or the ray). */
  grabWith(controller, holder) {
    if (this.holding.heldBy(holder)) return;
    this.raycaster.setFromXRController(controller);
    this.raycaster.far = this.reach();
    const id = this.lab.pick(this.raycaster);
    if (id) this.holding.grab(id, holder, true);
  }

  releaseWith(holder) {
    const held = this.holding.heldBy(holder);
    if (held) this.holding.release(held);
  }

  /** @returns {number} how far a ray reaches now, lab metres (REACH real metres: more in a table-top lab) */
  reach() {
    return REACH * this.rig.group.scale.x;
  }

  /**
   * Test hooks (tests/browser/test_xr_fake.py): how the lab sits on the
   * table in AR, and where a lab point is in the rig's frame (where a tracked
   * device must be, in the session's reference space, to be at that point).
   */
  hooks() {
    const rig = this.rig;
    const tableTop = this.tableTop;
    return {
      get tableTop() {
        return tableTop.placed && { ...tableTop.placed };
      },
      toRig: (x, y, z) => {
        rig.group.updateMatrixWorld(true);
        return rig.group.worldToLocal(new Vector3(x, y, z)).toArray();
      },
    };
  }

  /**
   * A headset overwrites the camera's local pose and an AR session needs a
   * see-through background; put both back when the session ends so the
   * desktop view resumes where it was.
   */
  keepDesktopView() {
    const camera = this.rig.camera;
    let saved = null;
    this.renderer.xr.addEventListener('sessionstart', () => {
      saved = { position: camera.position.clone(), quaternion: camera.quaternion.clone(), background: this.scene.background };
      if ((this.renderer.xr.getSession().environmentBlendMode ?? 'opaque') !== 'opaque') this.scene.background = null;
    });
    this.renderer.xr.addEventListener('sessionend', () => {
      camera.position.copy(saved.position);
      camera.quaternion.copy(saved.quaternion);
      this.scene.background = saved.background;
    });
  }
}
