/**
 * The student's hint panel in the challenge HUD: the newest hint the room
 * gave this student, and a button to ask for the next one.
 *
 * Hints climb a ladder (docs/protocol.md §15.4): a nudge (a question to think
 * about), a specific hint (which also outlines the equipment it names, in the
 * hints' cyan, beside the step's amber outline: highlight.js), then "show me"
 * (a ghost of the equipment doing the move: ghost.js). The room climbs it by
 * itself when a group seems stuck, a student may ask, and the teacher may
 * push a rung or their own words. A `hint` event goes to everyone but is for
 * the participants in its `to`: this panel shows only those, so a teacher's
 * message to one student is not read out at the whole bench.
 *
 * Asking costs some of the step's points, so the button says what the next
 * rung costs before it is pressed ("Hint (−2 points)", "Hint (free)"), from
 * the challenge's `hints` costs and the step's `hint_levels`; past the last
 * rung it says "No more hints". Inside the station's cooldown the room says
 * no (`hint_cooldown` with `retry_after`): that is not a failure, so instead
 * of a red toast the panel counts down "Next hint in N s". H asks too.
 *
 * What the hint outlines and demonstrates stays until its step is done or
 * another hint comes. After a reload the snapshot's `hints.stations[].last`
 * brings the newest hint back.
 *
 * @module hints
 */

import { messages } from './protocol.js';

/** The hints' colour, for their outline and their demonstration: cyan, unlike the step's amber. */
export const HINT_COLOR = 0x2ee6ff;
/** What each rung is called on the panel. */
export const RUNGS = Object.freeze({ 1: 'Nudge', 2: 'Hint', 3: 'Show me' });
const COST_FIELD = { 1: 'nudge_cost', 2: 'specific_cost', 3: 'bottom_out_cost' };
const RUNG_WORDS = { 1: 'a nudge', 2: 'a specific hint', 3: 'a demonstration' };

/** "Hint (−2 points)", "Hint (−1 point)", "Hint (free)". */
export function askLabel(cost) {
  return cost > 0 ? `Hint (−${cost} point${cost === 1 ? '' : 's'})` : 'Hint (free)';
}

export class HintPanel {
  /**
   * @param {HTMLElement} root the panel (index.html `#hint`, inside the challenge HUD)
   * @param {object} parts
   * @param {import('./state.js').RoomState} parts.state
   * @param {import('./connection.js').Connection} parts.connection
   * @param {import('./highlight.js').Highlights} parts.highlights the hints' own outline set
   * @param {import('./ghost.js').Demonstration} parts.demo the bottom-out ghost
   */
  constructor(root, { state, connection, highlights, demo }) {
    Object.assign(this, { root, state, connection, highlights, demo });
    this.el = {
      shown: root.querySelector('#hint-shown'),
      rung: root.querySelector('#hint-rung'),
      text: root.querySelector('#hint-text'),
      ask: root.querySelector('#hint-ask'),
      wait: root.querySelector('#hint-wait'),
      error: root.querySelector('#hint-error'),
    };
    /** The newest `hint` event for this participant, or null. */
    this.mine = null;
    /** The hint whose demonstration the ghost shows. */
    this.demoFor = null;
    this.requests = 0;
    /** @type {Set<string>} ids of hint requests not yet answered with an error */
    this.pending = new Set();
    /** performance.now() before which the room said it gives no hint (0: none said). */
    this.waitUntil = 0;
    this.el.ask.addEventListener('click', () => this.ask());
    addEventListener('keydown', (event) => {
      if (event.code !== 'KeyH' || event.repeat || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      if (this.offer().shown) {
        event.preventDefault();
        this.ask();
      }
    });
    setInterval(() => this.tickWait(), 250);
  }

  get active() {
    const { me, challenge } = this.state;
    return Boolean(me && me.role === 'student' && challenge);
  }

  get station() {
    return this.state.me ? this.state.stationOf(this.state.me.id) : null;
  }

  /** A (re)join with a snapshot: the station's newest hint, if it was for us. */
  welcome() {
    const last = this.state.hints.get(this.station)?.last ?? null;
    this.mine = last && this.forMe(last) ? last : null;
    this.waitUntil = 0;
    this.render();
  }

  forMe(hint) {
    return Boolean(this.state.me && hint.to?.includes(this.state.me.id));
  }

  /** One room event (after state.js applied it). */
  onEvent(event) {
    if (event.type !== 'hint' || !this.forMe(event)) return;
    this.mine = event;
    this.waitUntil = 0; // the cooldown started again with this hint
    this.el.error.textContent = '';
  }

  /** The hint to show now: ours, at our station, while its step is not done. */
  current() {
    const hint = this.mine;
    if (!hint || !this.active || hint.station !== this.station) return null;
    if (hint.step && this.state.stations.get(hint.station)?.progress.done[hint.step]) return null;
    return hint;
  }

  /** What the button offers: the next rung of the current step and its cost, or nothing more. */
  offer() {
    const number = this.station;
    const step = this.active ? this.state.currentStep(number) : null;
    const levels = step?.hint_levels ?? [];
    if (!step || !levels.length) return { shown: false };
    const had = this.state.hints.get(number)?.levels[step.id] ?? 0;
    const next = levels.find((level) => level > had) ?? null;
    const wait = this.waitUntil ? Math.max(0, (this.waitUntil - performance.now()) / 1000) : 0;
    if (next === null) return { shown: true, step, next, cost: null, text: 'No more hints', disabled: true, wait: 0 };
    const cost = Number(this.state.challenge.hints?.[COST_FIELD[next]] ?? 0);
    return { shown: true, step, next, cost, text: askLabel(cost), disabled: wait > 0, wait };
  }

  /**
   * Ask the room for the next hint of the current step (the button, H, the VR panel and its
   * controller button); not while reconnecting, when the room would not hear it.
   */
  ask() {
    const offer = this.offer();
    if (!offer.shown || offer.disabled || this.connection.state !== 'connected') return null;
    const id = `hint-${++this.requests}`;
    this.pending.add(id);
    this.el.error.textContent = '';
    this.connection.send(messages.hint(offer.step.id, id));
    return id;
  }

  /**
   * The room refused a hint we asked for. The cooldown is shown as a countdown
   * here and nowhere else (returns true: no toast); other refusals (no hint
   * left, the step just done) are said here and in the page's toast.
   */
  refused(error) {
    const ours = this.pending.delete(error.re);
    if (error.code === 'hint_cooldown') {
      this.waitUntil = performance.now() + Number(error.retry_after ?? 1) * 1000;
      this.renderOffer();
      return true;
    }
    if (ours) this.el.error.textContent = error.message;
    return false;
  }

  /** Redraw from the room state and the newest hint (after the welcome and every event). */
  render() {
    const hint = this.current();
    this.root.hidden = !this.active || !this.station;
    if (hint) {
      const [rung, from] = this.rungOf(hint);
      this.el.rung.textContent = rung;
      this.el.text.textContent = hint.text;
      this.el.shown.dataset.level = String(hint.level);
      this.el.shown.dataset.from = from ? 'teacher' : 'room';
    }
    this.el.shown.hidden = !hint;
    this.highlights.show(hint?.highlight ?? []);
    if (hint?.demo && this.demoFor !== hint) {
      this.demo.show(hint.demo);
      this.demoFor = hint;
    } else if (!hint?.demo && this.demoFor) {
      this.demo.hide();
      this.demoFor = null;
    }
    this.renderOffer();
  }

  /** [heading, whether the teacher sent it]: "Nudge", "Show me · from the teacher", "From the teacher". */
  rungOf(hint) {
    const teacher = hint.reason === 'teacher';
    if (hint.level === 0) return ['From the teacher', true];
    const rung = RUNGS[hint.level] ?? 'Hint';
    return [teacher ? `${rung} · from the teacher` : rung, teacher];
  }

  renderOffer() {
    const offer = this.offer();
    const row = this.el.ask.parentElement;
    row.hidden = !offer.shown;
    if (!offer.shown) return;
    this.el.ask.textContent = offer.text;
    this.el.ask.disabled = offer.disabled;
    this.el.ask.title =
      offer.next === null
        ? 'This step has no more hints.'
        : `Ask for ${RUNG_WORDS[offer.next]} (H): ${offer.cost ? `it costs ${offer.cost} of this step's points` : 'it is free'}.`;
    this.el.wait.textContent = offer.wait > 0 ? `Next hint in ${Math.ceil(offer.wait)} s` : '';
  }

  /** The countdown (four times a second); when it ends the button is back. */
  tickWait() {
    if (!this.waitUntil) return;
    if (performance.now() >= this.waitUntil) this.waitUntil = 0;
    this.renderOffer();
  }

  /** Each animation frame: the demonstration moves. */
  frame(nowMs) {
    this.highlights.update(nowMs);
    this.demo.update(nowMs);
  }

  /** What the panel says, as plain words, for the VR panel: the hint (or null) and the button (or null). */
  words() {
    const hint = this.current();
    const offer = this.offer();
    return {
      hint: hint ? { rung: this.rungOf(hint)[0], text: hint.text, level: hint.level } : null,
      ask: offer.shown ? { text: offer.text, disabled: offer.disabled, wait: this.el.wait.textContent } : null,
    };
  }

  /** For tests (a fresh copy each read). */
  view() {
    const hint = this.current();
    const offer = this.offer();
    return {
      shown: hint
        ? { level: hint.level, rung: this.rungOf(hint)[0], text: hint.text, step: hint.step, reason: hint.reason, highlight: [...hint.highlight], demo: hint.demo }
        : null,
      highlighted: this.highlights.ids,
      ghost: this.demo.view(),
      ask: offer.shown ? { text: offer.text, disabled: offer.disabled, next: offer.next, cost: offer.cost } : null,
      wait: this.el.wait.textContent,
      error: this.el.error.textContent,
    };
  }
}

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}
