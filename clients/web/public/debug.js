/**
 * The designer's debug overlay in a preview practical (docs/operations.md,
 * "Designer previews"): what the challenge engine sees now at the designer's
 * station, step by step.
 *
 * It is on only when the page was opened with the preview link
 * (`/#token=…&preview=1`). It then polls `GET /api/sessions/{id}/debug` with
 * the page's own room token, twice a second while the tab is visible, and
 * stops for good once the server says the preview is over (409) or unknown
 * (404), or refuses the token. The panel lists each step in order with its
 * state (done / open / locked), whether its condition holds now (✓ / ✗, — for
 * a checkpoint), the mistakes counted on it and the condition in short form,
 * then the station's property values; its button folds it away.
 *
 * main.js builds one and adds `hooks()` to `window.amaliy` (`debug`: the last
 * debug view, or null).
 *
 * @module debug
 */

const POLL_MS = 500;
/** Answers after which polling cannot help: ended, unknown, or a token the route refuses. */
const FINAL = { 409: 'This preview has ended.', 404: 'This preview is unknown to the server.', 401: 'The server no longer accepts this link.', 403: 'The server refuses this link for the debug view.' };

/** Whether this page was opened with the preview link. */
export function previewRequested(hash = location.hash) {
  return new URLSearchParams(hash.slice(1)).get('preview') === '1';
}

export class PreviewDebug {
  /**
   * @param {HTMLElement} overlay where the panel goes (the page's overlay)
   * @param {string} token the page's room token (the preview's own)
   * @param {() => string|undefined} me this page's participant id, once joined
   */
  constructor(overlay, token, me) {
    this.token = token;
    this.me = me;
    /** @type {object|null} the last debug view the server sent */
    this.last = null;
    this.lastText = '';
    /** @type {string|null} the open step the panel last scrolled to */
    this.shownOpen = null;
    this.timer = 0;
    this.busy = false;
    this.stopped = !previewRequested();
    if (this.stopped) return;
    this.url = `/api/sessions/${encodeURIComponent(sessionOf(token))}/debug`;
    this.panel = build(overlay.ownerDocument);
    overlay.append(this.panel);
    this.panel.querySelector('button').addEventListener('click', () => this.fold(!this.panel.classList.contains('folded')));
    overlay.ownerDocument.addEventListener('visibilitychange', () => this.schedule(0));
    this.schedule(0);
  }

  /** Fold the panel to its header (or open it again). */
  fold(folded) {
    this.panel.classList.toggle('folded', folded);
    const button = this.panel.querySelector('button');
    button.textContent = folded ? 'Show' : 'Hide';
    button.setAttribute('aria-expanded', String(!folded));
  }

  /** Poll after `ms`, unless stopped, hidden, or a poll is already due or under way. */
  schedule(ms) {
    if (this.stopped || this.timer || this.busy || document.visibilityState !== 'visible') return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.poll();
    }, ms);
  }

  async poll() {
    this.busy = true;
    try {
      const response = await fetch(this.url, { headers: { Authorization: `Bearer ${this.token}` }, cache: 'no-store' });
      if (response.ok) {
        const text = await response.text();
        if (text !== this.lastText) {
          this.lastText = text;
          this.last = JSON.parse(text);
          this.render();
        }
        this.status('');
      } else if (response.status in FINAL) {
        this.stopped = true;
        this.panel.classList.add('ended'); // what it still shows is the last view, greyed
        this.fold(true); // out of the way of the page's own notice; the status line stays
        this.status(FINAL[response.status]);
      } else {
        this.status(`The debug view is not answering (${response.status}); retrying.`);
      }
    } catch {
      this.status('The debug view is not answering; retrying.');
    } finally {
      this.busy = false;
      this.schedule(POLL_MS);
    }
  }

  status(text) {
    const line = this.panel.querySelector('.debug-status');
    if (line.textContent !== text) line.textContent = text;
  }

  /** The station this page's participant is at (the first one until the room places them). */
  station() {
    const stations = this.last?.stations ?? [];
    const me = this.me();
    return stations.find((s) => s.members.includes(me)) ?? stations[0] ?? null;
  }

  render() {
    const doc = this.panel.ownerDocument;
    const view = this.last;
    const station = this.station();
    const here = station && view.stations.length > 1 ? `${station.title} · score ${station.score}` : station ? `score ${station.score}` : '';
    this.panel.querySelector('.debug-station').textContent = here;
    const table = this.panel.querySelector('.debug-steps');
    const groups = []; // a tbody per step: its row, then its condition across the table
    if (view.challenge === null || !station) {
      groups.push(element(doc, 'tbody', {}, [element(doc, 'tr', {}, [element(doc, 'td', { colSpan: 4, className: 'empty' }, ['This scene has no challenge.'])])]));
    }
    let open = null;
    for (const [i, step] of (station?.steps ?? []).entries()) {
      const state = step.done ? 'done' : step.open ? 'open' : 'locked';
      const holds = step.holds === true ? 'yes' : step.holds === false ? 'no' : 'n/a';
      const condition = step.checkpoint ? 'checkpoint question' : describeCondition(step.condition);
      const group = element(doc, 'tbody', { dataset: { step: step.id, state, holds } }, [
        element(doc, 'tr', {}, [
          element(doc, 'td', { className: 'step', title: step.text }, [`${i + 1}. ${step.id}`]),
          element(doc, 'td', {}, [element(doc, 'span', { className: 'badge' }, [state])]),
          element(doc, 'td', { className: 'holds', title: holdsTitle(step) }, [{ yes: '✓', no: '✗', 'n/a': '—' }[holds]]),
          element(doc, 'td', { className: step.mistakes ? 'mistakes some' : 'mistakes', title: 'mistakes counted on this step' }, [String(step.mistakes)]),
        ]),
        element(doc, 'tr', { className: 'condition' }, [
          element(doc, 'td', { colSpan: 4 }, [element(doc, 'code', { title: step.condition ? JSON.stringify(step.condition) : '' }, [condition])]),
        ]),
      ]);
      if (state === 'open' && open === null) open = [step.id, group];
      groups.push(group);
    }
    table.replaceChildren(table.tHead, ...groups);
    // Keep the first open step in sight when it changes (and leave the designer's own scrolling alone otherwise).
    if (open && open[0] !== this.shownOpen) this.reveal(open[1]);
    this.shownOpen = open?.[0] ?? null;
    const props = this.panel.querySelector('.debug-properties');
    const suffix = station ? `@${station.number}` : null;
    const items = [];
    for (const [object, values] of Object.entries(view.properties ?? {})) {
      const at = object.lastIndexOf('@');
      if (at >= 0 && object.slice(at) !== suffix) continue; // another station's copy
      const name = at >= 0 ? object.slice(0, at) : object;
      for (const [property, value] of Object.entries(values)) {
        items.push(element(doc, 'li', { dataset: { object, property } }, [`${name}.${property} = `, element(doc, 'b', {}, [show(value)])]));
      }
    }
    props.replaceChildren(...items);
    props.hidden = items.length === 0;
  }

  /** Scroll the panel so that `group` (a step's rows) is in view. */
  reveal(group) {
    const panel = this.panel.getBoundingClientRect();
    const box = group.getBoundingClientRect();
    if (box.top < panel.top + 40 || box.bottom > panel.bottom) this.panel.scrollTop += box.top - panel.top - 40;
  }

  /** What `window.amaliy` shows of it. */
  hooks() {
    const debug = this;
    return {
      /** The preview's last debug view (GET /api/sessions/{id}/debug), or null off a preview page. */
      get debug() {
        return debug.last === null ? null : structuredClone(debug.last);
      },
    };
  }
}

/**
 * A condition from scene.json in one short line, e.g. `at_snap beaker-water → tripod.top`,
 * `property burner.lit = true`, `stable_for 10 s (…)`.
 * @param {object|null} condition
 * @returns {string}
 */
export function describeCondition(condition) {
  if (!condition) return '—';
  const [kind, body] = Object.entries(condition)[0] ?? [];
  const list = (items, joiner = ', ') => items.map(describeCondition).join(joiner);
  switch (kind) {
    case 'at_snap':
      return `at_snap ${body.object} → ${body.target}.${body.snap}${body.placed === false ? ' (may be held)' : ''}`;
    case 'in_zone':
      return `in_zone ${body.object} in ${body.zone}`;
    case 'near':
      return `near ${body.object} ↔ ${body.other} ≤ ${body.distance_m} m`;
    case 'upright':
      return `upright ${body.object}${body.within_degrees !== undefined ? ` ±${body.within_degrees}°` : ''}`;
    case 'tilted':
      return `tilted ${body.object} > ${body.past_degrees}°`;
    case 'held':
      return `held ${body.object}${body.by_learner ? ' by a learner' : ''}`;
    case 'participant_in_zone':
      return `participant_in_zone ${body.zone}`;
    case 'property': {
      const name = `${body.object}.${body.property}`;
      if (body.equals !== undefined) return `property ${name} = ${show(body.equals)}`;
      if (body.min !== undefined && body.max !== undefined) return `property ${name} in [${body.min}, ${body.max}]`;
      return body.min !== undefined ? `property ${name} ≥ ${body.min}` : `property ${name} ≤ ${body.max}`;
    }
    case 'all':
    case 'any':
      return `${kind}(${list(body)})`;
    case 'not':
      return `not(${describeCondition(body)})`;
    case 'stable_for':
      return `stable_for ${body.seconds} s (${describeCondition(body.condition)})`;
    case 'then':
      return `then ≤ ${body.within_seconds} s (${list(body.conditions, ' → ')})`;
    default:
      return JSON.stringify(condition);
  }
}

function holdsTitle(step) {
  if (step.holds === null) return 'a checkpoint: answered, not evaluated';
  if (step.done) return 'done';
  return step.open ? "the engine's last evaluation" : 'tried now against the room (the step is not open yet)';
}

function show(value) {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The session id (`sid` claim) of a room token. */
function sessionOf(token) {
  return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sid;
}

function build(doc) {
  const panel = element(doc, 'aside', { id: 'debug-panel', 'aria-label': 'Preview debug' }, [
    element(doc, 'header', {}, [
      element(doc, 'strong', {}, ['Preview debug']),
      element(doc, 'span', { className: 'debug-station' }, []),
      element(doc, 'button', { type: 'button', 'aria-expanded': 'true' }, ['Hide']),
    ]),
    element(doc, 'p', { className: 'debug-status', role: 'status' }, []),
    element(doc, 'div', { className: 'debug-body' }, [
      element(doc, 'table', { className: 'debug-steps' }, [
        element(doc, 'thead', {}, [
          element(doc, 'tr', {}, ['Step, condition', 'State', 'Holds', 'Mistakes'].map((h) => element(doc, 'th', { scope: 'col' }, [h]))),
        ]),
      ]),
      element(doc, 'ul', { className: 'debug-properties', 'aria-label': 'Property values', hidden: true }, []),
    ]),
  ]);
  return panel;
}

function element(doc, tag, props, children) {
  const node = doc.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'role' || key.startsWith('aria-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}
