/**
 * Object properties a student can see and change: a burner's flame, a dial,
 * a switch; and readings (a thermometer) that rules set by themselves.
 *
 * Values come from the room (the snapshot's `properties`, then `property`
 * events) and are only ever shown as the room says; a change is a request,
 * `interact`, which the server checks against the declaration and answers
 * with a `property` event for everyone (or an error for this page).
 *
 * - A small panel shows the controls of the selected object: a switch is a
 *   toggle, a number a slider moving in its `step`, a choice a row of
 *   buttons; a property students cannot set is shown as a reading. The
 *   selected object is the one last pointed at that has properties, or the
 *   one held, or else the first one the current step is about.
 * - Pointing at an object and pressing E flips its first switch (light the
 *   burner without leaving the 3D view).
 * - Every object with properties at the student's station carries a label
 *   over it with its values, so a thermometer shows its reading where it is.
 *
 * The panel and the labels are DOM in the overlay, so they show in AR's DOM
 * overlay too.
 *
 * @module properties
 */

import { Box3, Vector3 } from 'three';

import { isTyping } from './keyboard.js';
import { messages } from './protocol.js';

/** Labels float this far above an object's top, metres. */
const LABEL_LIFT = 0.03;

/** How to turn a switch with the device in hand: [body[data-input], text] (style.css shows the one in use). */
const SWITCH_HELP = [
  ['mouse', 'Point at it and press E, or use the switch here.'],
  ['touch', 'Tap the switch here to turn it.'],
  ['xr', 'Use the switch here to turn it.'],
];

const box = new Box3();
const top = new Vector3();

/**
 * A property value as a person reads it.
 * @param {import('./state.js').PropertySpec} spec
 * @param {boolean|number|string|undefined} value
 */
export function formatValue(spec, value) {
  if (value === undefined) return '–';
  if (spec.kind === 'switch') return spec.interactive === false ? (value ? 'yes' : 'no') : value ? 'on' : 'off';
  if (spec.kind === 'number') {
    const decimals = spec.step ? Math.max(0, Math.min(3, -Math.floor(Math.log10(spec.step)))) : Number.isInteger(value) ? 0 : 1;
    return `${Number(value).toFixed(decimals)}${spec.unit ? ` ${spec.unit}` : ''}`;
  }
  return String(value);
}

export class PropertyControls {
  /**
   * @param {HTMLElement} panel the panel element (index.html `#properties`)
   * @param {HTMLElement} overlay where the labels go
   * @param {import('./state.js').RoomState} state
   * @param {import('./connection.js').Connection} connection
   * @param {import('./hover.js').Hover} hover what is pointed at, and where a point is on the page
   * @param {import('./holding.js').Holding} holding what this page holds
   * @param {import('./scene.js').Lab} lab the objects' nodes
   */
  constructor(panel, overlay, state, connection, hover, holding, lab) {
    this.panel = panel;
    this.overlay = overlay;
    this.state = state;
    this.connection = connection;
    this.hover = hover;
    this.holding = holding;
    this.lab = lab;
    /** @type {string|null} the object whose controls the panel shows */
    this.selected = null;
    /** @type {string|null} an object the current step is about, shown when nothing else is selected */
    this.suggested = null;
    /** Whether the selection is the current step's suggestion (it then follows the step), not something pointed at. */
    this.bySuggestion = false;
    /** @type {Map<string, HTMLElement>} object id -> its label */
    this.labels = new Map();
    /** @type {Map<string, (value: any) => void>} property id -> what updates its control */
    this.controls = new Map();
    this.requests = 0;
    /** @type {{object: string, property: string, code: string, message: string}|null} the newest refusal of a change */
    this.lastError = null;
    this.pending = new Map();
    addEventListener('keydown', (event) => {
      if (event.code !== 'KeyE' || event.repeat || isTyping(event.target)) return;
      const id = this.hover.id ?? this.selected;
      const toggle = id && this.specs(id).find((spec) => spec.kind === 'switch' && spec.interactive !== false);
      if (toggle) this.set(id, toggle.id, !this.value(id, toggle.id));
    });
  }

  /** @returns {import('./state.js').PropertySpec[]} an object's declared properties */
  specs(id) {
    return this.state.objects[id]?.properties ?? [];
  }

  value(id, property) {
    return this.state.properties[id]?.[property];
  }

  /** Whether this page may change the object: a teacher anything, a student their station's and the shared equipment. */
  mine(id) {
    const object = this.state.objects[id];
    if (!object || !this.state.me || this.state.me.role === 'observer') return false;
    return this.state.isTeacher() || object.station === null || object.station === this.state.stationOf(this.state.me.id);
  }

  /**
   * Ask the room to set a property (not while reconnecting: the room would not hear it).
   * @returns {string|null} the request id (an error for it comes back with this `re`), or null
   */
  set(object, property, value) {
    if (this.connection.state !== 'connected') return null;
    const id = `interact-${++this.requests}`;
    this.pending.set(id, { object, property });
    this.connection.send(messages.interact(object, property, value, id));
    return id;
  }

  /** The room refused a change this page asked for: say so next to the control. */
  refused(error) {
    const asked = this.pending.get(error.re);
    if (!asked) return false;
    this.pending.delete(error.re);
    this.lastError = { ...asked, code: error.code, message: error.message };
    if (asked.object === this.selected) this.panel.querySelector('.property-error').textContent = error.message;
    this.refresh(); // the control goes back to what the room holds
    return true;
  }

  /** @param {string|null} id an object the current step is about (its controls show when nothing else is selected) */
  suggest(id) {
    this.suggested = id;
  }

  /** Labels and the selection follow the room (after a snapshot, a station change or a property event). */
  render() {
    const me = this.state.me;
    const station = me ? this.state.stationOf(me.id) : null;
    const labelled = new Set(
      Object.values(this.state.objects)
        .filter((o) => o.properties.length && !this.state.isTeacher() && (o.station === null || o.station === station))
        .map((o) => o.id),
    );
    for (const [id, label] of this.labels) {
      if (!labelled.has(id)) {
        label.remove();
        this.labels.delete(id);
      }
    }
    for (const id of labelled) {
      let label = this.labels.get(id);
      if (!label) {
        label = document.createElement('div');
        label.className = 'property-label';
        label.dataset.object = id;
        this.overlay.append(label);
        this.labels.set(id, label);
      }
      label.textContent = this.specs(id)
        .map((spec) => `${spec.title || spec.id}: ${formatValue(spec, this.value(id, spec.id))}`)
        .join(' · ');
    }
    if (this.selected && !this.mine(this.selected)) this.select(null);
    this.refresh();
  }

  /** Pick what the panel shows and keep the labels over their objects (each frame). */
  update() {
    const pointed = this.hover.id;
    const held = this.holding.ids().find((id) => this.specs(id).length);
    const candidate = [pointed, held].find((id) => id && this.specs(id).length && this.mine(id));
    const suggested = this.suggested && this.mine(this.suggested) ? this.suggested : null;
    if (candidate && candidate !== this.selected) this.select(candidate);
    else if ((!this.selected || this.bySuggestion) && suggested !== this.selected) this.select(suggested, true);
    for (const [id, label] of this.labels) this.place(id, label, id === pointed);
  }

  place(id, label, pointedAt) {
    const node = this.lab.node(id);
    let at = null;
    if (node) {
      box.setFromObject(node).getCenter(top);
      at = this.hover.screenPoint(top.x, box.max.y + LABEL_LIFT, top.z);
    }
    label.hidden = !at;
    // The hover title takes the spot over the object: the reading moves up above it.
    if (at) label.style.transform = `translate(${at[0]}px, ${at[1]}px) translate(-50%, ${pointedAt ? '-200%' : '-100%'})`;
  }

  /**
   * Show the controls of one object (null: hide the panel).
   * @param {string|null} id
   * @param {boolean} [suggested] chosen for the current step, not by the person
   */
  select(id, suggested = false) {
    this.selected = id;
    this.bySuggestion = suggested;
    this.controls.clear();
    if (!id) {
      this.panel.hidden = true;
      this.panel.replaceChildren();
      return;
    }
    const object = this.state.objects[id];
    const title = document.createElement('h3');
    title.textContent = object.title || id;
    const rows = this.specs(id).map((spec) => this.row(id, spec));
    const error = document.createElement('p');
    error.className = 'property-error';
    error.setAttribute('role', 'status');
    const hint = document.createElement('p');
    hint.className = 'property-hint by-input'; // one line per device in hand (style.css)
    if (this.specs(id).some((s) => s.kind === 'switch' && s.interactive !== false)) {
      hint.append(
        ...SWITCH_HELP.map(([input, text]) => {
          const line = document.createElement('span');
          line.dataset.input = input;
          line.textContent = text;
          return line;
        }),
      );
    }
    this.panel.replaceChildren(title, ...rows, error, hint);
    this.panel.dataset.object = id;
    this.panel.hidden = false;
    this.refresh();
  }

  /** One property's row: its name and a control (or a reading). */
  row(id, spec) {
    const row = document.createElement('div');
    row.className = 'property';
    row.dataset.property = spec.id;
    const name = document.createElement('span');
    name.className = 'property-name';
    name.textContent = spec.title || spec.id;
    row.append(name);
    if (spec.interactive === false) {
      const reading = document.createElement('output');
      row.append(reading);
      this.controls.set(spec.id, (value) => (reading.textContent = formatValue(spec, value)));
      return row;
    }
    if (spec.kind === 'switch') {
      const toggle = document.createElement('button');
      toggle.type = 'button';
      toggle.setAttribute('role', 'switch');
      toggle.setAttribute('aria-label', spec.title || spec.id);
      toggle.addEventListener('click', () => this.set(id, spec.id, !this.value(id, spec.id)));
      row.append(toggle);
      this.controls.set(spec.id, (value) => {
        toggle.setAttribute('aria-checked', String(Boolean(value)));
        toggle.textContent = value ? 'On' : 'Off';
      });
    } else if (spec.kind === 'number') {
      const slider = document.createElement('input');
      slider.type = 'range';
      Object.assign(slider, { min: spec.min, max: spec.max, step: spec.step ?? 'any' });
      slider.setAttribute('aria-label', spec.title || spec.id);
      const shown = document.createElement('output');
      slider.addEventListener('input', () => (shown.textContent = formatValue(spec, Number(slider.value))));
      slider.addEventListener('change', () => this.set(id, spec.id, Number(slider.value)));
      row.append(slider, shown);
      this.controls.set(spec.id, (value) => {
        if (document.activeElement !== slider || !slider.matches(':active')) slider.value = String(value);
        shown.textContent = formatValue(spec, value);
      });
    } else {
      const group = document.createElement('span');
      group.className = 'choices';
      group.setAttribute('role', 'group');
      const buttons = (spec.choices ?? []).map((choice) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = choice;
        button.addEventListener('click', () => this.set(id, spec.id, choice));
        return button;
      });
      group.append(...buttons);
      row.append(group);
      this.controls.set(spec.id, (value) => {
        for (const button of buttons) button.setAttribute('aria-pressed', String(button.textContent === value));
      });
    }
    return row;
  }

  /** Put the room's values into the panel's controls. */
  refresh() {
    if (!this.selected) return;
    for (const [property, show] of this.controls) show(this.value(this.selected, property));
  }
}
