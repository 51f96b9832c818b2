/*
 * A scripted WebXR device for headless Chromium, which has none: navigator.xr
 * offers the session modes in window.FAKE_XR_MODES, and a session renders
 * one view into the page's own canvas. The test moves the device through
 * window.fakeXR: the viewer (headset or phone) pose, where the hit test
 * finds a surface, tracked hands (wrist, thumb tip and index tip; the other
 * joints of the 25 sit at the wrist) and a finger on the phone's screen (a
 * transient 'screen' input source with select events). Every pose is in the
 * session's one reference space (real metres, y up).
 *
 * Injected with page.add_init_script before the page's own scripts run.
 */
(() => {
  const modes = window.FAKE_XR_MODES || [];

  const translation = ([x, y, z]) => [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1];
  /** Column-major: at `position`, tilted about x by `pitch` radians (negative looks down). */
  const viewerMatrix = ([x, y, z], pitch) => {
    const c = Math.cos(pitch);
    const s = Math.sin(pitch);
    return [1, 0, 0, 0, 0, c, s, 0, 0, -s, c, 0, x, y, z, 1];
  };
  const perspective = (fovY, aspect, near, far) => {
    const f = 1 / Math.tan(fovY / 2);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0];
  };
  /** Column-major: at `origin`, its -z axis pointing at `target`. */
  const aimMatrix = (origin, target) => {
    const sub = (a, b) => a.map((v, i) => v - b[i]);
    const unit = (v) => v.map((c) => c / Math.hypot(...v));
    const cross = ([ax, ay, az], [bx, by, bz]) => [ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx];
    const z = unit(sub(origin, target));
    const x = unit(cross([0, 1, 0], z));
    const y = cross(z, x);
    return [...x, 0, ...y, 0, ...z, 0, ...origin, 1];
  };
  const rigid = (matrix) => ({
    matrix: Float32Array.from(matrix),
    position: { x: matrix[12], y: matrix[13], z: matrix[14], w: 1 },
    orientation: { x: 0, y: 0, z: 0, w: 1 },
  });

  const state = {
    viewer: viewerMatrix([0, 1.6, 0], 0),
    hit: null,
    hands: {},
    session: null,
    hitSources: [],
  };

  class Space {
    constructor(kind, matrix = () => translation([0, 0, 0])) {
      this.kind = kind;
      this.matrix = matrix;
    }
  }

  class Frame {
    constructor(session) {
      this.session = session;
    }
    getViewerPose() {
      const canvas = document.querySelector('canvas');
      const projectionMatrix = Float32Array.from(perspective((70 * Math.PI) / 180, canvas.width / canvas.height, 0.05, 100));
      return { transform: rigid(state.viewer), views: [{ eye: 'none', transform: rigid(state.viewer), projectionMatrix }], emulatedPosition: false };
    }
    getPose(space) {
      const matrix = space?.matrix();
      return matrix ? { transform: rigid(matrix), emulatedPosition: false } : null;
    }
    getJointPose(joint) {
      const hand = state.hands[joint.handedness];
      const at = hand && (hand[joint.jointName] ?? hand.wrist);
      return at ? { transform: rigid(translation(at)), radius: 0.008 } : null;
    }
    getHitTestResults(source) {
      if (source.cancelled || !state.hit) return [];
      return [{ getPose: () => ({ transform: rigid(translation(state.hit)) }) }];
    }
  }

  class Session extends EventTarget {
    constructor(mode, init) {
      super();
      this.mode = mode;
      this.init = init;
      this.renderState = { baseLayer: null, depthNear: 0.1, depthFar: 1000 };
      this.inputSources = [];
      this.visibilityState = 'visible';
      this.environmentBlendMode = mode === 'immersive-ar' ? 'alpha-blend' : 'opaque';
      this.enabledFeatures = [...(init?.optionalFeatures ?? []), ...(init?.requiredFeatures ?? [])];
      this.callbacks = new Map();
      this.handle = 0;
      this.ended = false;
    }
    updateRenderState(changes) {
      Object.assign(this.renderState, changes);
    }
    async requestReferenceSpace(kind) {
      return new Space(kind, kind === 'viewer' ? () => state.viewer : undefined);
    }
    async requestHitTestSource() {
      const source = { cancelled: false, cancel() { this.cancelled = true; } };
      state.hitSources.push(source);
      return source;
    }
    requestAnimationFrame(callback) {
      this.handle += 1;
      this.callbacks.set(this.handle, callback);
      if (!this.pending) {
        this.pending = true;
        window.requestAnimationFrame((time) => this.tick(time));
      }
      return this.handle;
    }
    cancelAnimationFrame(handle) {
      this.callbacks.delete(handle);
    }
    tick(time) {
      this.pending = false;
      if (this.ended) return;
      const callbacks = [...this.callbacks.values()];
      this.callbacks.clear();
      const frame = new Frame(this);
      for (const callback of callbacks) callback(time, frame);
    }
    changeInputs(added, removed) {
      this.inputSources = this.inputSources.filter((source) => !removed.includes(source)).concat(added);
      const event = new Event('inputsourceschange');
      event.added = added;
      event.removed = removed;
      this.dispatchEvent(event);
    }
    async end() {
      if (this.ended) return;
      this.ended = true;
      state.session = null;
      this.dispatchEvent(new Event('end'));
    }
  }

  class Layer {
    constructor(session, gl) {
      this.framebuffer = null; // the page's own canvas
      this.framebufferWidth = gl.drawingBufferWidth;
      this.framebufferHeight = gl.drawingBufferHeight;
      this.ignoreDepthValues = false;
    }
    getViewport() {
      return { x: 0, y: 0, width: this.framebufferWidth, height: this.framebufferHeight };
    }
  }

  const FINGER = ['metacarpal', 'phalanx-proximal', 'phalanx-intermediate', 'phalanx-distal', 'tip'];
  const JOINTS = [
    'wrist',
    ...['metacarpal', 'phalanx-proximal', 'phalanx-distal', 'tip'].map((part) => `thumb-${part}`),
    ...['index', 'middle', 'ring', 'pinky'].flatMap((finger) => FINGER.map((part) => `${finger}-finger-${part}`)),
  ];
  let touch = null;
  const selectEvent = (type, source) => {
    const event = new Event(type);
    event.inputSource = source;
    event.frame = new Frame(state.session);
    state.session.dispatchEvent(event);
  };

  window.XRWebGLLayer = Layer;
  Object.defineProperty(window, 'XRWebGLBinding', { value: undefined, configurable: true, writable: true });
  for (const context of [window.WebGLRenderingContext, window.WebGL2RenderingContext]) {
    if (context) context.prototype.makeXRCompatible = async () => {};
  }
  Object.defineProperty(navigator, 'xr', {
    configurable: true,
    value: {
      isSessionSupported: async (mode) => modes.includes(mode),
      requestSession: async (mode, init) => {
        if (!modes.includes(mode)) throw new DOMException(`${mode} is not supported`, 'NotSupportedError');
        state.session = new Session(mode, init);
        return state.session;
      },
    },
  });

  window.fakeXR = {
    get session() {
      return state.session && { mode: state.session.mode, features: state.session.enabledFeatures, inputs: state.session.inputSources.length };
    },
    get hitSources() {
      return state.hitSources.map((source) => ({ cancelled: source.cancelled }));
    },
    /** The device at `position`, looking ahead (-z) tilted by `pitch` radians. */
    setViewer(position, pitch = 0) {
      state.viewer = viewerMatrix(position, pitch);
    },
    /** The hit test finds a surface at `position` (or nothing, with null). */
    setHit(position) {
      state.hit = position;
    },
    /** A tracked hand appears (or moves): `joints` maps wrist, thumb-tip and index-finger-tip to positions. */
    setHand(handedness, joints) {
      const known = state.hands[handedness];
      state.hands[handedness] = { ...joints };
      if (known) return;
      const hand = new Map(JOINTS.map((jointName) => [jointName, { jointName, handedness }]));
      const wrist = () => translation(state.hands[handedness].wrist);
      const source = { handedness, targetRayMode: 'tracked-pointer', targetRaySpace: new Space('target-ray', wrist), gripSpace: new Space('grip', wrist), hand, profiles: [] };
      state.session.changeInputs([source], []);
    },
    /** A finger touches the phone's screen: its ray from `origin` towards `target` (real space) selects. */
    touchDown(origin, target) {
      touch = { matrix: aimMatrix(origin, target) };
      touch.source = { handedness: 'none', targetRayMode: 'screen', targetRaySpace: new Space('target-ray', () => touch?.matrix ?? null), profiles: [] };
      state.session.changeInputs([touch.source], []);
      selectEvent('selectstart', touch.source);
    },
    /** The finger slides: its ray now points from `origin` towards `target`. */
    touchMove(origin, target) {
      touch.matrix = aimMatrix(origin, target);
    },
    /** The finger lifts: the select ends and the transient input source goes. */
    touchUp() {
      const { source } = touch;
      selectEvent('selectend', source);
      selectEvent('select', source);
      state.session.changeInputs([], [source]);
      touch = null;
    },
  };
})();
