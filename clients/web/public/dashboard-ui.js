/**
 * Small DOM helpers the dashboard's views share: building elements (all user
 * text goes in as text nodes, never as markup), tables that scroll inside
 * their box, the confirm strip, status lines, and how dates and codes read.
 *
 * @module dashboard-ui
 */

export { ConfirmStrip } from './confirm.js';
export { formatDuration } from './format.js';

/**
 * An element. `props`: `class`, `text`, `data` (dataset), `on` (event → handler),
 * anything else as an attribute (`true` for a bare one, `false`/null skipped).
 * Children: nodes, or strings (as text), or null (skipped).
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name === 'data') Object.assign(node.dataset, value);
    else if (name === 'on') for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** A real button (type=button unless given). */
export function button(text, onClick, props = {}) {
  return el('button', { type: 'button', ...props, on: { click: onClick } }, text);
}

/**
 * A table in a box that scrolls sideways on a narrow screen.
 * @param {string} label what the table is, for screen readers
 * @param {(string|{text: string, class?: string, title?: string, sr?: boolean})[]} head
 *   columns; `sr`: a heading for screen readers only (a column of buttons)
 * @param {HTMLTableRowElement[]} rows
 */
export function table(label, head, rows, props = {}) {
  const cells = head.map((h) => {
    if (typeof h === 'string') return el('th', { scope: 'col' }, h);
    return el('th', { scope: 'col', class: h.class, title: h.title }, h.sr ? el('span', { class: 'sr' }, h.text) : h.text);
  });
  return el(
    'div',
    { class: 'scroll', role: 'region', 'aria-label': label, tabindex: 0 },
    el('table', props, el('thead', {}, el('tr', {}, cells)), el('tbody', {}, rows)),
  );
}

/** A table row; each cell a string, a node, or {text|node, class, title, data}. */
export function row(cells, props = {}) {
  return el(
    'tr',
    props,
    cells.map((cell) => {
      if (cell instanceof Node) return el('td', {}, cell);
      if (cell && typeof cell === 'object') return el('td', { class: cell.class, title: cell.title, data: cell.data }, cell.node ?? String(cell.text ?? ''));
      return el('td', {}, cell === null || cell === undefined ? '' : String(cell));
    }),
  );
}

const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** Unix seconds as a date in the browser's locale. */
export function formatDate(seconds) {
  return seconds === null || seconds === undefined ? '' : DATE.format(new Date(seconds * 1000));
}

export function formatTime(date = new Date()) {
  return TIME.format(date);
}


export const yesNo = (value) => (value ? 'yes' : 'no');
export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * A status line: `show(text, kind)` with kind 'error' (role=alert), 'ok' or 'info'.
 * Multi-line text (a 422's several messages) keeps its lines.
 */
export function statusLine(props = {}) {
  const node = el('p', { class: 'status', ...props });
  node.hidden = true;
  node.show = (text, kind = 'info') => {
    node.textContent = text;
    node.dataset.kind = kind;
    node.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    node.hidden = !text;
  };
  node.clear = () => node.show('');
  return node;
}

