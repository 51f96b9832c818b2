/**
 * The challenge HUD inside a VR headset. An immersive-vr session draws no
 * DOM, so the student would see neither the current step nor a checkpoint
 * question; this panel shows them in the world: a plane with a canvas texture
 * held above the left controller (or, with no left controller, floating in
 * front of the head at reading distance, following when the head turns well
 * away).
 *
 * It says what the DOM HUD says, read from the same places: the challenge
 * HUD's words (challenge.js: title, station, step, "Step k of N", score, the
 * station picker), the checkpoint panel's question, state and verdict
 * (checkpoint.js), and the page's toasts (hud.js; the two most important
 * still showing). Each frame it gathers those into a small plain description
 * and redraws the canvas only when the description changed.
 *
 * With a step that has hints, a Hint button under the score says what the
 * next one costs (or counts the cooldown down), and the newest hint for this
 * student is boxed under the question (hints.js says both); a controller's
 * B/Y button asks too (xr.js calls `askHint`).
 *
 * A checkpoint shows one button per choice, or a number keypad (digits, '-'
 * turning the sign, '.', backspace, OK) with the unit. Pressing goes through
 * the checkpoint panel (`send`, `sendNumber`), so the `answer` message, the
 * wait for the verdict and the verdict itself (`checkpoint_answer`, the
 * `mistake`, a `rate_limited` refusal) are the DOM panel's, not a copy.
 *
 * Hitting a button: a controller's ray is cast against the plane; the hit's
 * uv is a canvas pixel, and that pixel lies in a button's rectangle or not.
 * xr.js asks `touches()` when the trigger is pulled (a pull that starts on
 * the panel grabs nothing) and calls `select()` with the same ray on the
 * `select` event. The test hook's `press(label)` casts a ray at the button's
 * centre and goes through `select()` too.
 *
 * The panel is shown while an immersive-vr session runs (xr.js calls
 * `setImmersive`), or when a test asks (`show()`: then it stands in front of
 * the desktop camera, in the normal 3D view).
 *
 * @module vrpanel
 */

import { CanvasTexture, Mesh, MeshBasicMaterial, PlaneGeometry, Raycaster, SRGBColorSpace, Vector3 } from 'three';

/** Canvas size, px: the width is fixed, the height used follows the content (up to the maximum). */
const CANVAS_WIDTH = 1024;
const CANVAS_MAX_HEIGHT = 1600;
const PAD = 40;
const GAP = 16;
const FONT = 'system-ui, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif';
const LINE = 1.28;

/** Panel width held on the left controller, and floating, metres: letters about 1.1 and 2 cm tall. */
const HAND_WIDTH_M = 0.28;
const FLOAT_WIDTH_M = 0.5;
/**
 * Floating: the panel's top edge this far in front of the eyes and this far
 * below them, metres; it follows once the head turns past FOLLOW_ANGLE
 * (radians) or walks off, easing over a few frames.
 */
const FLOAT_DISTANCE_M = 0.8;
const FLOAT_DROP_M = 0.05;
const FOLLOW_ANGLE = 0.6;
const FOLLOW_RATE = 0.12;
/** Held: the panel's top edge this far above the grip along the panel, metres, tilted back towards the face, radians. */
const HAND_TOP_M = 0.3;
const HAND_TILT = 0.5;
/** In the desktop view (tests), the panel fills this much of the view's height or width. */
const DESKTOP_FILL = 0.9;

/** Toasts on the panel at once; a mistake's explanation outranks news of who joined. */
const TOASTS_SHOWN = 2;
const TOAST_RANK = { mistake: 3, error: 2, points: 2, info: 1 };

const COLOR = {
  panel: '#161d28',
  text: '#f4f6f8',
  dim: '#aab6c4',
  score: '#ffd166',
  rule: 'rgba(255, 255, 255, 0.18)',
  toast: { info: '#3a4656', error: '#a02828', points: '#1e8c4b', mistake: '#be6e00' },
  feedback: { '': '#aab6c4', right: '#3ecf6e', wrong: '#ffb4a8', refused: '#ffd166' },
  button: { choice: '#2f6fd0', wrong: '#c83c32', chosen: '#1d4a8f', key: '#465266', ok: '#1e8c4b', station: '#2f6fd0', hint: '#0b6f80' },
  hint: { box: '#0d4450', head: '#8ff3ff', edge: '#2ee6ff' },
  hover: '#ffffff',
};

/** The keypad, row by row; '0' and OK are two keys wide. */
const KEYPAD = [
  ['7', '8', '9', '⌫'],
  ['4', '5', '6', '-'],
  ['1', '2', '3', '.'],
  ['0', 'OK'],
];
const KEY_HEIGHT = 96;
const ENTRY_MAX = 12;

const forward = new Vector3();
const toPanel = new Vector3();
const target = new Vector3();
const head = new Vector3();

export class VrPanel {
  /**
   * @param {object} parts
   * @param {import('./rig.js').Rig} parts.rig the head (camera) and the left grip, and the group the panel floats in
   * @param {import('./challenge.js').ChallengeHud} parts.challenge its words
   * @param {import('./checkpoint.js').CheckpointPanel} parts.checkpoint the question shown, and what sends answers
   * @param {import('./hints.js').HintPanel} [parts.hints] the newest hint and the Hint button's offer
   * @param {import('./hud.js').Hud} parts.hud its toasts
   */
  constructor({ rig, challenge, checkpoint, hints = null, hud }) {
    Object.assign(this, { rig, challenge, checkpoint, hints });
    this.canvas = document.createElement('canvas');
    this.canvas.width = CANVAS_WIDTH;
    this.canvas.height = CANVAS_MAX_HEIGHT;
    this.ctx = this.canvas.getContext('2d');
    this.texture = new CanvasTexture(this.canvas);
    this.texture.colorSpace = SRGBColorSpace;
    this.texture.anisotropy = 4;
    // Drawn over the lab (a HUD: never hidden inside a bench), unlit, as the canvas says.
    const material = new MeshBasicMaterial({ map: this.texture, transparent: true, depthTest: false, depthWrite: false, toneMapped: false });
    this.mesh = new Mesh(new PlaneGeometry(1, 1), material);
    this.mesh.renderOrder = 10;
    this.mesh.visible = false;
    this.mesh.name = 'vr-panel';
    rig.group.add(this.mesh);
    /** Canvas rows in use (the rest is not shown). */
    this.height = 0;
    /** @type {{label: string, text: string, kind: string, x: number, y: number, w: number, h: number, disabled: boolean, state: string, press: () => void}[]} */
    this.buttons = [];
    /** @type {string[]} what the panel says, a paragraph per entry */
    this.lines = [];
    this.redraws = 0;
    this.immersive = false;
    this.forced = false;
    /** @type {{text: string, kind: string, until: number, order: number}[]} */
    this.toasts = [];
    this.toastCount = 0;
    /** The keypad's entry, and the step it was typed for. */
    this.entry = '';
    this.entryStep = null;
    /** @type {(() => import('three').Raycaster|null)[]} controller rays, for the button under them */
    this.pointers = [];
    this.hovered = null;
    this.drawnKey = '';
    /** Floating in the headset: where the top edge's middle is (rig space), and whether it is easing after the head. */
    this.top = new Vector3();
    this.placedOnce = false;
    this.following = false;
    this.raycaster = new Raycaster();
    hud.onToast(({ text, kind, ms }) => {
      this.toasts.push({ text, kind, until: performance.now() + ms, order: ++this.toastCount });
      this.toasts = this.toasts.slice(-8);
    });
  }

  /** Whether the panel is up: in an immersive-vr session, or asked for by a test. */
  get visible() {
    return this.immersive || this.forced;
  }

  /** xr.js: an immersive-vr session started (true) or ended (false). */
  setImmersive(on) {
    this.immersive = on;
    this.placedOnce = false;
  }

  /** Tests: show the panel in the normal 3D view, in front of the camera. */
  show() {
    this.forced = true;
    this.placedOnce = false;
    this.refresh();
  }

  hide() {
    this.forced = false;
    this.refresh();
  }

  /**
   * A controller ray the panel should watch, to mark the button under it.
   * @param {() => import('three').Raycaster|null} ray
   * @param {import('three').Object3D} [grip] the controller's grip (the hand holding the panel does not point at it)
   */
  track(ray, grip = null) {
    this.pointers.push({ ray, grip });
  }

  /** Each animation frame: redraw if what the panel says changed, and keep it where it belongs. */
  update() {
    if (!this.visible && !this.mesh.visible) return;
    this.hovered = this.visible ? this.pointedButton() : null;
    this.refresh();
    if (this.mesh.visible) this.place();
  }

  /** The label of the button a controller points at, or null. */
  pointedButton() {
    for (const { ray, grip } of this.pointers) {
      const raycaster = ray();
      const button = raycaster && this.buttonAt(raycaster, grip);
      if (button) return button.label;
    }
    return null;
  }

  /** Gather what to say; redraw only when it differs from what is drawn. */
  refresh() {
    const content = this.visible ? this.content(performance.now()) : null;
    this.mesh.visible = Boolean(content);
    if (!content) return;
    const key = JSON.stringify(content);
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    this.draw(content);
  }

  /** What the panel says now, as plain data (the only input of `draw`). */
  content(now) {
    const words = this.challenge.words();
    this.toasts = this.toasts.filter((toast) => toast.until > now);
    if (!words.shown && this.toasts.length === 0) return null;
    const step = words.shown ? this.checkpoint.step : null;
    if (step?.id !== this.entryStep) {
      this.entry = '';
      this.entryStep = step?.id ?? null;
    }
    let question = null;
    if (step?.checkpoint) {
      const { last } = this.checkpoint;
      const mine = last && last.step === step.id;
      const choices = step.checkpoint.choices ?? null;
      question = {
        text: step.checkpoint.question,
        choices,
        unit: choices ? null : (step.checkpoint.number?.unit ?? ''),
        entry: choices ? null : this.entry,
        busy: this.checkpoint.busy,
        chosen: mine && this.checkpoint.busy ? last.value : null,
        wrong: mine && choices && last.result === 'wrong' ? last.value : null,
        status: this.checkpoint.status,
      };
    }
    const hints = words.shown && this.hints ? this.hints.words() : { hint: null, ask: null };
    return {
      words: words.shown ? words : null,
      hint: hints.hint,
      ask: hints.ask,
      // A mistake's explanation or a refusal already under the question is not said twice.
      toasts: this.shownToasts(question?.status.text),
      question,
      hovered: this.hovered,
    };
  }

  /** Of the toasts up, other than `except`: the TOASTS_SHOWN most important (then newest), newest first. */
  shownToasts(except) {
    const rank = (toast) => TOAST_RANK[toast.kind] ?? 1;
    const kept = this.toasts
      .filter((toast) => toast.text !== except)
      .sort((a, b) => rank(b) - rank(a) || b.order - a.order)
      .slice(0, TOASTS_SHOWN);
    return kept.sort((a, b) => b.order - a.order).map(({ text, kind }) => ({ text, kind }));
  }

  /**
   * Lay the content out and paint it; the button rectangles are kept for hits.
   * What comes and goes (the verdict, toasts) is below the buttons, and the
   * panel hangs from its top edge, so a toast never moves a button away from
   * where the student is aiming.
   */
  draw(content) {
    const sheet = new Sheet(this.ctx, content.hovered);
    const { words, question } = content;
    if (words) {
      sheet.text(words.title, { size: 46, weight: 700, gap: 4 });
      if (words.station) sheet.text(words.station, { size: 32, color: COLOR.dim, gap: 4 });
      sheet.space(10);
      sheet.text(words.step, { size: 42, weight: 600, maxLines: 4, gap: 6 });
      const stats = [words.count, words.score].filter(Boolean).join('  ·  ');
      if (stats) sheet.text(stats, { size: 34, color: COLOR.score, gap: 6 });
      // Always here while the step has hints, so it never moves; the cooldown counts down on it.
      if (content.ask) {
        const text = content.ask.wait || content.ask.text;
        sheet.button({ label: 'Hint', text, kind: 'hint', disabled: content.ask.disabled, press: () => this.askHint() });
      }
      for (const station of words.stations) {
        sheet.button({ label: station.label, kind: 'station', disabled: station.full, press: () => this.challenge.chooseStation(station.number) });
      }
    }
    if (question) {
      sheet.rule();
      sheet.text(question.text, { size: 40, weight: 700, maxLines: 4, gap: 10 });
      if (question.choices) {
        question.choices.forEach((choice, index) => {
          const state = index === question.wrong ? 'wrong' : index === question.chosen ? 'chosen' : '';
          sheet.button({ label: choice, kind: 'choice', state, disabled: question.busy, press: () => this.checkpoint.send(index) });
        });
      } else {
        sheet.entry(question.entry, question.unit);
        this.keypad(sheet, question.busy);
      }
      if (question.status.text) {
        const { kind } = question.status;
        sheet.text(question.status.text, { size: 36, color: COLOR.feedback[kind] ?? COLOR.dim, maxLines: 3, weight: kind === 'right' ? 700 : 400 });
      }
    }
    if (content.hint) sheet.note(content.hint.rung, content.hint.text);
    if (content.toasts.length && (words || question)) sheet.space(4);
    for (const toast of content.toasts) sheet.toast(toast.text, toast.kind);
    this.height = Math.min(CANVAS_MAX_HEIGHT, Math.ceil(sheet.y + PAD - GAP));
    sheet.paint(this.height);
    this.buttons = sheet.buttons;
    this.lines = sheet.paragraphs;
    // Show only the rows in use: the top `height` rows of the canvas (flipY puts the canvas top at v = 1).
    this.texture.repeat.set(1, this.height / CANVAS_MAX_HEIGHT);
    this.texture.offset.set(0, 1 - this.height / CANVAS_MAX_HEIGHT);
    this.texture.needsUpdate = true;
    this.redraws += 1;
  }

  keypad(sheet, busy) {
    const key = (label) => ({
      label,
      text: label === '-' ? '±' : label,
      kind: label === 'OK' ? 'ok' : 'key',
      disabled: busy,
      press: () => this.key(label),
    });
    for (const row of KEYPAD) sheet.row(row.map(key), 4, KEY_HEIGHT);
  }

  /** Ask for the next hint (the panel's Hint button, and a controller's B/Y button: xr.js). */
  askHint() {
    if (!this.visible || !this.hints) return null;
    const asked = this.hints.ask();
    this.refresh();
    return asked;
  }

  /** One keypad key: edit the entry, or send it. */
  key(label) {
    if (label === 'OK') {
      this.checkpoint.sendNumber(this.entry === '' ? NaN : Number(this.entry));
      return;
    }
    if (this.checkpoint.status.kind === 'wrong' && !this.checkpoint.busy) this.checkpoint.setFeedback('', ''); // editing: the old verdict no longer applies
    if (label === '⌫') this.entry = this.entry.slice(0, -1);
    else if (label === '-') this.entry = this.entry.startsWith('-') ? this.entry.slice(1) : `-${this.entry}`;
    else if (label === '.' && this.entry.includes('.')) return;
    else if (this.entry.replace('-', '').length < ENTRY_MAX) this.entry += label;
  }

  /**
   * The button a ray hits: undefined when the ray misses the panel (or
   * comes from the hand holding it), null when it hits the panel between buttons.
   * @param {import('three').Raycaster} raycaster
   * @param {import('three').Object3D|null} [grip] the grip of the controller the ray comes from
   */
  buttonAt(raycaster, grip = null) {
    if (!this.mesh.visible || (grip && this.mesh.parent === grip)) return undefined;
    this.mesh.updateWorldMatrix(true, false);
    const hit = raycaster.intersectObject(this.mesh, false)[0];
    if (!hit?.uv) return undefined;
    const x = hit.uv.x * CANVAS_WIDTH;
    const y = (1 - hit.uv.y) * this.height;
    return this.buttons.find((b) => x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h) ?? null;
  }

  /** Whether a ray points at the panel (xr.js: a trigger pulled there grabs nothing, equipment behind it does not light up). */
  touches(raycaster, grip = null) {
    return Boolean(raycaster) && this.buttonAt(raycaster, grip) !== undefined;
  }

  /**
   * A controller's `select` with this ray: press the button under it.
   * @returns {string|null} the pressed button's label
   */
  select(raycaster, grip = null) {
    const button = raycaster && this.buttonAt(raycaster, grip);
    if (!button || button.disabled) return null;
    button.press();
    this.refresh();
    return button.label;
  }

  /**
   * Tests: press a button by its label as a controller would: a ray cast
   * straight at the button's centre, through `select`.
   * @returns {string|null} the pressed button's label (null: no such button, or it is off)
   */
  press(label) {
    this.refresh();
    const button = this.buttons.find((b) => b.label === label);
    if (!button || !this.mesh.visible) return null;
    const u = (button.x + button.w / 2) / CANVAS_WIDTH;
    const v = 1 - (button.y + button.h / 2) / this.height;
    this.mesh.updateWorldMatrix(true, false);
    const point = this.mesh.localToWorld(new Vector3(u - 0.5, v - 0.5, 0));
    const normal = new Vector3(0, 0, 1).transformDirection(this.mesh.matrixWorld);
    this.raycaster.set(point.clone().addScaledVector(normal, 0.3), normal.negate());
    return this.select(this.raycaster);
  }

  /**
   * Held above the left controller if it tracks; else floating in front of
   * the head. In the headset the panel hangs from its top edge, so growing or
   * shrinking (a verdict, a toast) moves no button.
   */
  place() {
    const grip = this.rig.grips[0];
    const held = this.immersive && grip?.visible;
    const width = held ? HAND_WIDTH_M : FLOAT_WIDTH_M;
    const height = (width * this.height) / CANVAS_WIDTH;
    this.mesh.scale.set(width, height, 1);
    if (held) {
      if (this.mesh.parent !== grip) grip.add(this.mesh);
      // Grip space: -z points ahead, +y up from the hand; the panel faces back up towards the eyes.
      this.mesh.rotation.set(-HAND_TILT, 0, 0);
      const up = HAND_TOP_M - height / 2; // the centre, along the panel's own up
      this.mesh.position.set(0, up * Math.cos(HAND_TILT), -up * Math.sin(HAND_TILT));
      return;
    }
    if (this.mesh.parent !== this.rig.group) {
      this.rig.group.add(this.mesh);
      this.placedOnce = false;
    }
    const camera = this.rig.camera;
    if (!this.immersive) {
      // The desktop view (tests): square in front of the camera, as large as the view allows.
      const tan = Math.tan((camera.fov * Math.PI) / 360);
      const distance = Math.max(height / (DESKTOP_FILL * 2 * tan), width / (DESKTOP_FILL * 2 * tan * camera.aspect));
      forward.set(0, 0, -1).applyQuaternion(camera.quaternion);
      this.mesh.position.copy(camera.position).addScaledVector(forward, distance);
      this.mesh.quaternion.copy(camera.quaternion);
      return;
    }
    // In the headset: ahead of the eyes at reading distance, a little low; it follows once the head turns away.
    forward.set(0, 0, -1).applyQuaternion(camera.quaternion).setY(0);
    if (forward.lengthSq() < 1e-6) forward.set(0, 0, -1);
    forward.normalize();
    target.copy(camera.position).addScaledVector(forward, FLOAT_DISTANCE_M);
    target.y -= FLOAT_DROP_M;
    toPanel.copy(this.top).sub(camera.position).setY(0);
    const away = toPanel.lengthSq() < 1e-6 ? Math.PI : toPanel.angleTo(forward);
    if (!this.placedOnce) {
      this.top.copy(target);
      this.placedOnce = true;
      this.following = false;
    } else if (this.following || away > FOLLOW_ANGLE || Math.abs(toPanel.length() - FLOAT_DISTANCE_M) > 0.3) {
      this.following = this.top.distanceTo(target) > 0.02;
      this.top.lerp(target, FOLLOW_RATE);
    }
    this.mesh.position.copy(this.top);
    this.mesh.position.y -= height / 2;
    this.mesh.parent.updateWorldMatrix(true, false);
    this.rig.camera.getWorldPosition(head);
    this.mesh.lookAt(head);
  }

  /** Read-only views and actions for `window.amaliy.vrPanel` (fresh copies each read). */
  hooks() {
    const panel = this;
    return {
      /** Show the panel in the normal 3D view (in front of the camera), as a VR session would. */
      show: () => panel.show(),
      hide: () => panel.hide(),
      get visible() {
        return panel.mesh.visible;
      },
      /** What the panel says, a paragraph per entry, in order. */
      get lines() {
        panel.refresh();
        return [...panel.lines];
      },
      /** Its buttons: label, drawn text, kind (choice, key, ok, station), state ('', chosen, wrong, hover), disabled. */
      get buttons() {
        panel.refresh();
        return panel.buttons.map(({ label, text, kind, state, disabled }) => ({ label, text, kind, state, disabled }));
      },
      /** The keypad's entry. */
      get entry() {
        return panel.entry;
      },
      /** How many times the canvas was drawn. */
      get redraws() {
        return panel.redraws;
      },
      /** Press a button by label through the controller's hit test; returns the label pressed, or null. */
      press: (label) => panel.press(label),
      /** Ask for a hint as the controller's B/Y button does (only while the panel is up). */
      askHint: () => panel.askHint(),
    };
  }
}

/**
 * One drawing of the panel: content is laid out top to bottom (`y` is the
 * cursor), then painted once the height is known.
 */
class Sheet {
  constructor(ctx, hovered) {
    this.ctx = ctx;
    this.hovered = hovered;
    this.y = PAD;
    this.items = [];
    this.buttons = [];
    this.paragraphs = [];
  }

  space(px) {
    this.y += px;
  }

  /** A paragraph of text, wrapped to the width. */
  text(text, { size, weight = 400, color = COLOR.text, maxLines = 3, gap = GAP, x = PAD, width = CANVAS_WIDTH - 2 * PAD }) {
    if (!text) return;
    this.paragraphs.push(text);
    const font = `${weight} ${size}px ${FONT}`;
    for (const line of wrap(this.ctx, font, text, width, maxLines)) {
      this.items.push({ kind: 'text', text: line, x, y: this.y, font, color });
      this.y += size * LINE;
    }
    this.y += gap;
  }

  toast(text, kind) {
    const size = 36;
    const font = `${kind === 'points' ? 700 : 400} ${size}px ${FONT}`;
    const shown = kind === 'mistake' ? `⚠ ${text}` : text;
    const lines = wrap(this.ctx, font, shown, CANVAS_WIDTH - 4 * PAD, 4);
    const step = size * LINE;
    const h = lines.length * step + 28;
    this.items.push({ kind: 'box', x: PAD, y: this.y, w: CANVAS_WIDTH - 2 * PAD, h, color: COLOR.toast[kind] ?? COLOR.toast.info });
    this.paragraphs.push(shown);
    const first = this.y + 14 + step / 2;
    lines.forEach((line, i) => this.items.push({ kind: 'text', text: line, x: 2 * PAD, y: first + i * step, middle: true, font, color: '#ffffff' }));
    this.y += h + GAP;
  }

  /** The hint: its rung as a heading, then its words, boxed in the hints' colour. */
  note(heading, text) {
    const size = 36;
    const headFont = `700 ${size}px ${FONT}`;
    const font = `400 ${size}px ${FONT}`;
    const step = size * LINE;
    const width = CANVAS_WIDTH - 4 * PAD;
    const head = wrap(this.ctx, headFont, heading, width, 1);
    const lines = wrap(this.ctx, font, text, width, 6);
    const h = (head.length + lines.length) * step + 28;
    this.items.push({ kind: 'box', x: PAD, y: this.y, w: CANVAS_WIDTH - 2 * PAD, h, color: COLOR.hint.box, stroke: COLOR.hint.edge });
    this.paragraphs.push(heading, text);
    let y = this.y + 14 + step / 2;
    for (const line of head) {
      this.items.push({ kind: 'text', text: line, x: 2 * PAD, y, middle: true, font: headFont, color: COLOR.hint.head });
      y += step;
    }
    for (const line of lines) {
      this.items.push({ kind: 'text', text: line, x: 2 * PAD, y, middle: true, font, color: '#ffffff' });
      y += step;
    }
    this.y += h + GAP;
  }

  rule() {
    this.y += 4;
    this.items.push({ kind: 'box', x: PAD, y: this.y, w: CANVAS_WIDTH - 2 * PAD, h: 3, color: COLOR.rule, radius: 0 });
    this.y += 3 + GAP + 4;
  }

  /** The number being typed, with its unit. */
  entry(entry, unit) {
    const size = 52;
    const h = 84;
    const font = `600 ${size}px ${FONT}`;
    this.items.push({ kind: 'box', x: PAD, y: this.y, w: CANVAS_WIDTH - 2 * PAD, h, color: '#0b1018', stroke: '#667488' });
    const text = entry === '' ? '' : entry.replace('-', '−');
    const middle = this.y + h / 2;
    this.items.push({ kind: 'text', text: text || 'Type with the keys', x: 2 * PAD, y: middle, middle: true, font: text ? font : `400 36px ${FONT}`, color: text ? COLOR.text : COLOR.dim });
    if (unit) this.items.push({ kind: 'text', text: unit, x: CANVAS_WIDTH - 2 * PAD, y: middle, middle: true, font, color: COLOR.dim, align: 'right' });
    this.paragraphs.push(`${text || '…'}${unit ? ` ${unit}` : ''}`);
    this.y += h + GAP;
  }

  /** A full-width button (a choice, a station); tall enough for two lines of its text. */
  button({ label, text = label, kind, state = '', disabled = false, press }) {
    const size = 36;
    const font = `600 ${size}px ${FONT}`;
    const lines = wrap(this.ctx, font, text, CANVAS_WIDTH - 4 * PAD, 2);
    const h = Math.max(88, lines.length * size * LINE + 34);
    this.add({ label, text, lines, font, size, kind, state, disabled, press, x: PAD, y: this.y, w: CANVAS_WIDTH - 2 * PAD, h, align: 'left' });
    this.y += h + 12;
  }

  /** A row of keys on a grid of `columns`; a row with fewer keys makes them wider. */
  row(keys, columns, h) {
    const unit = (CANVAS_WIDTH - 2 * PAD - (columns - 1) * 12) / columns;
    const span = columns / keys.length;
    let x = PAD;
    for (const key of keys) {
      const w = unit * span + 12 * (span - 1);
      const size = key.kind === 'ok' ? 40 : 48;
      this.add({ ...key, lines: [key.text], font: `600 ${size}px ${FONT}`, size, x, y: this.y, w, h, align: 'center', state: key.state ?? '' });
      x += w + 12;
    }
    this.y += h + 12;
  }

  add(button) {
    if (button.label === this.hovered && !button.disabled) button.state ||= 'hover';
    this.buttons.push(button);
  }

  paint(height) {
    const { ctx } = this;
    ctx.clearRect(0, 0, CANVAS_WIDTH, CANVAS_MAX_HEIGHT);
    roundRect(ctx, 0, 0, CANVAS_WIDTH, height, 28);
    ctx.fillStyle = COLOR.panel;
    ctx.fill();
    ctx.lineWidth = 4;
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.25)';
    ctx.stroke();
    ctx.textBaseline = 'top';
    for (const item of this.items) {
      if (item.kind === 'box') {
        roundRect(ctx, item.x, item.y, item.w, item.h, item.radius ?? 14);
        ctx.fillStyle = item.color;
        ctx.fill();
        if (item.stroke) {
          ctx.lineWidth = 3;
          ctx.strokeStyle = item.stroke;
          ctx.stroke();
        }
      } else {
        ctx.font = item.font;
        ctx.fillStyle = item.color;
        ctx.textAlign = item.align ?? 'left';
        ctx.textBaseline = item.middle ? 'middle' : 'top';
        ctx.fillText(item.text, item.x, item.y);
      }
    }
    for (const b of this.buttons) {
      ctx.globalAlpha = b.disabled && b.state !== 'chosen' ? 0.45 : 1;
      roundRect(ctx, b.x, b.y, b.w, b.h, 16);
      ctx.fillStyle = COLOR.button[b.state] ?? COLOR.button[b.kind];
      ctx.fill();
      if (b.state === 'hover') {
        ctx.lineWidth = 6;
        ctx.strokeStyle = COLOR.hover;
        ctx.stroke();
      }
      ctx.font = b.font;
      ctx.fillStyle = '#ffffff';
      ctx.textAlign = b.align;
      ctx.textBaseline = 'middle';
      const step = b.size * LINE;
      const x = b.align === 'center' ? b.x + b.w / 2 : b.x + PAD;
      b.lines.forEach((line, i) => ctx.fillText(line, x, b.y + b.h / 2 + (i - (b.lines.length - 1) / 2) * step));
      ctx.globalAlpha = 1;
    }
    ctx.textAlign = 'left';
  }
}

/** Break `text` into lines no wider than `width`; the last allowed line ends in '…' if text is left over. */
function wrap(ctx, font, text, width, maxLines) {
  ctx.font = font;
  const fits = (s) => ctx.measureText(s).width <= width;
  const lines = [];
  let line = '';
  for (const word of String(text).split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (fits(next)) {
      line = next;
      continue;
    }
    if (line) lines.push(line);
    line = word;
    while (!fits(line)) {
      // A word wider than the panel: break it where it overflows.
      let cut = line.length - 1;
      while (cut > 1 && !fits(line.slice(0, cut))) cut -= 1;
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  let last = `${kept[maxLines - 1]}…`;
  while (last.length > 1 && !fits(last)) last = `${last.slice(0, -2)}…`;
  kept[maxLines - 1] = last;
  return kept;
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}
