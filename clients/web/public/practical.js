/**
 * The lab challenge on this page, as one piece main.js wires in: the
 * student's HUD (challenge.js) with its checkpoint questions, summary card
 * and chimes, the hint panel (hints.js) with its own outline and the
 * bottom-out ghost (ghost.js), the same HUD as an in-world panel for VR
 * headsets (vrpanel.js), the outline on the current step's equipment
 * (highlight.js), the equipment controls and readings (properties.js), and
 * the teacher's progress grid with its stuck flags and hint form (grid.js).
 * It also walks a student to their station's spawn point when the room
 * places them there.
 *
 * main.js calls `welcome()` and `event()` after the room state applied them,
 * `error()` for the server's errors (true: said in its place, no toast), and
 * `frame()` once per animation frame; `hooks()` is what `window.amaliy`
 * shows of it.
 *
 * @module practical
 */

import { ChallengeHud } from './challenge.js';
import { CheckpointPanel } from './checkpoint.js';
import { Chime } from './chime.js';
import { Demonstration } from './ghost.js';
import { ProgressGrid } from './grid.js';
import { Highlights } from './highlight.js';
import { HINT_COLOR, HintPanel } from './hints.js';
import { PropertyControls } from './properties.js';
import { SummaryCard } from './summary.js';
import { VrPanel } from './vrpanel.js';

export class Practical {
  /**
   * @param {object} parts
   * @param {Document} parts.doc
   * @param {import('three').Scene} parts.scene
   * @param {import('./scene.js').Lab} parts.lab
   * @param {import('./state.js').RoomState} parts.state
   * @param {import('./connection.js').Connection} parts.connection
   * @param {import('./hud.js').Hud} parts.hud
   * @param {import('./hover.js').Hover} parts.hover
   * @param {import('./holding.js').Holding} parts.holding
   * @param {import('./rig.js').Rig} parts.rig
   */
  constructor({ doc, scene, lab, state, connection, hud, hover, holding, rig }) {
    this.state = state;
    this.rig = rig;
    this.highlights = new Highlights(scene, lab);
    this.checkpoint = new CheckpointPanel(doc.getElementById('checkpoint'), connection);
    this.summary = new SummaryCard(doc.getElementById('summary'));
    this.chime = new Chime();
    this.properties = new PropertyControls(doc.getElementById('properties'), doc.getElementById('overlay'), state, connection, hover, holding, lab);
    this.hud = new ChallengeHud(doc.getElementById('challenge'), {
      state,
      connection,
      hud,
      highlights: this.highlights,
      checkpoint: this.checkpoint,
      summary: this.summary,
      chime: this.chime,
      properties: this.properties,
    });
    // A hint's outline: cyan and a little further out than the step's amber; zones too, where the lab's model draws one.
    const zones = () => new Set((state.scene?.zones ?? []).map((zone) => zone.id));
    this.hintHighlights = new Highlights(scene, lab, {
      color: HINT_COLOR,
      thickness: 0.016,
      name: 'hint-highlights',
      nodeOf: (id) => lab.node(id) ?? (zones().has(id) ? lab.nodesByName.get(id) : undefined),
    });
    this.hints = new HintPanel(doc.getElementById('hint'), {
      state,
      connection,
      highlights: this.hintHighlights,
      demo: new Demonstration(scene, lab, HINT_COLOR),
    });
    this.grid = new ProgressGrid(doc.getElementById('grid-panel'), state, connection);
    /** The HUD in the world, for immersive VR (xr.js shows it and points at it). */
    this.vrPanel = new VrPanel({ rig, challenge: this.hud, checkpoint: this.checkpoint, hints: this.hints, hud });
  }

  /** A (re)join: everything redrawn from the new state. */
  welcome() {
    this.hints.welcome();
    this.render();
  }

  /** One room event, after state.js applied it. */
  event(event) {
    if (event.type === 'station' && event.participant === this.state.me?.id && event.spawn) this.walkTo(event.spawn);
    this.hud.onEvent(event);
    this.hints.onEvent(event);
    this.grid.onEvent(event);
    this.render();
  }

  /**
   * A server error: an answer's or a property change's refusal is also shown
   * next to the question or the control (the page's toast shows it as well).
   * Two are said only in their place, and this returns true (no toast): a
   * hint's cooldown, which is no failure (the hint panel counts it down), and
   * the refusal of a teacher's hint push, in the form the teacher is using.
   * @returns {boolean} whether the page should not toast it
   */
  error(error) {
    if (this.hints.refused(error) || this.grid.refused(error)) return true;
    this.checkpoint.refused(error) || this.properties.refused(error);
    return false;
  }

  render() {
    this.hud.render();
    this.hints.render();
    this.properties.render();
    this.grid.render();
  }

  /** Each animation frame, after the lab moved its objects. */
  frame(nowMs) {
    this.highlights.update(nowMs);
    this.hints.frame(nowMs);
    this.properties.update();
    this.vrPanel.update();
  }

  /** Stand at a station's spawn point: [x, y, z, yaw degrees]. */
  walkTo([x, y, z, yaw]) {
    this.rig.group.position.set(x, y, z);
    this.rig.group.rotation.set(0, (yaw * Math.PI) / 180, 0);
    this.rig.placed = true;
  }

  /** Read-only views for `window.amaliy` (fresh copies each read). */
  hooks() {
    const practical = this;
    return {
      /** The challenge as this student's HUD shows it: station, current step, steps done, score, timer, highlights, checkpoint, summary. */
      get challenge() {
        return practical.hud.view();
      },
      /** The teacher's grid as data: steps, a row per student, and the stations. */
      get grid() {
        return practical.grid.view();
      },
      /** Property values by object id, as the room last said. */
      get properties() {
        return structuredClone(practical.state.properties);
      },
      /** The object whose controls the equipment panel shows, or null. */
      get selected() {
        return practical.properties.selected;
      },
      /** Set a property, as the panel's controls do (returns the request id, or null while reconnecting). */
      interact: (object, property, value) => practical.properties.set(object, property, value),
      /** Answer a checkpoint (the shown one unless `step` names another), as its buttons do (returns the request id, or null). */
      answer: (value, step) => practical.checkpoint.send(value, null, step),
      /** Show an object's controls in the equipment panel, as pointing at it does. */
      select: (id) => practical.properties.select(id),
      /** The hint panel: the hint shown (rung, text, level), what its outline and ghost show, and the button's offer. */
      get hints() {
        return practical.hints.view();
      },
      /** Ask for a hint, as the Hint button does (returns the request id, or null when there is nothing to ask or the page is reconnecting). */
      askHint: () => practical.hints.ask(),
      /** The VR panel: show()/hide() it in the normal view, read its lines and buttons, press(label) a button. */
      vrPanel: practical.vrPanel.hooks(),
    };
  }
}
