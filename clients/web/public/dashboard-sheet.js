/**
 * The printable sign-in sheet: one card per student with their name, their
 * new code in large type (two groups of four), the sign-in link as a QR code
 * and as text. POST /api/courses/{id}/codes?qr=true makes a NEW code for
 * every student (the old ones stop working), which is why the course header
 * asks first.
 *
 * The QR code comes from our server as inline SVG markup; it goes into the
 * page only after checking it is one `<svg …>…</svg>` element made of
 * drawing elements alone (no script, no event attribute, no foreign object,
 * no links; `qrElement`). Names and links go in as text. On paper only the
 * cards show (dashboard.css, `@media print`).
 *
 * @module dashboard-sheet
 */

import { button, el, formatDate, plural } from './dashboard-ui.js';
import { groupSigninCode } from './format.js';

const SVG_START = /^\s*<svg[\s>]/i;
/** What a QR code is drawn with; anything else (script, foreignObject, image, a, use…) is refused. */
const SVG_TAGS = new Set(['svg', 'g', 'path', 'rect', 'title', 'desc']);

/**
 * The server's QR markup as an SVG element, or null if it is not plainly one.
 * Parsed by the HTML parser of a detached document (where nothing runs), which
 * puts a bare `<svg>` in the SVG namespace; then every element and attribute is
 * checked: drawing elements only, no event handlers, no links.
 * @param {unknown} markup
 * @returns {SVGSVGElement | null}
 */
export function qrElement(markup) {
  if (typeof markup !== 'string' || !SVG_START.test(markup) || !/<\/svg>\s*$/i.test(markup)) return null;
  const body = new DOMParser().parseFromString(markup, 'text/html').body;
  const svg = body.firstElementChild;
  if (body.children.length !== 1 || !(svg instanceof SVGSVGElement)) return null;
  for (const node of [svg, ...svg.querySelectorAll('*')]) {
    if (!SVG_TAGS.has(node.localName)) return null;
    for (const { name } of node.attributes) if (/^on|href$/i.test(name)) return null;
  }
  if (!svg.hasAttribute('viewBox') && svg.getAttribute('width') && svg.getAttribute('height')) {
    svg.setAttribute('viewBox', `0 0 ${parseFloat(svg.getAttribute('width'))} ${parseFloat(svg.getAttribute('height'))}`);
  }
  return document.importNode(svg, true);
}

/** Make new codes for the course and show the sheet (the caller has asked first). */
export async function showSheet(api, courseId) {
  const answer = await api.call(`/api/courses/${encodeURIComponent(courseId)}/codes?qr=true`, { method: 'POST' });
  const root = document.getElementById('sheet');
  const cards = answer.students.map((student) => card(student, answer.course.name));
  const close = () => {
    root.hidden = true;
    root.replaceChildren();
    document.body.classList.remove('sheet-open');
    document.getElementById('print-sheet')?.focus();
  };
  root.replaceChildren(
    el(
      'div',
      { class: 'sheet-bar' },
      el('h2', { id: 'sheet-title', tabindex: -1 }, `Sign-in sheet: ${answer.course.name}`),
      el(
        'p',
        {},
        `${plural(cards.length, 'new code')}, made ${formatDate(Date.now() / 1000)}. The codes students had before no longer work. `,
        'Print it now: the codes are not shown again. Cut along the lines and hand each student their card.',
      ),
      el('div', { class: 'actions' }, button('Print', () => window.print(), { id: 'sheet-print' }), button('Close sheet', close, { class: 'quiet' })),
    ),
    el('div', { class: 'cards' }, cards),
  );
  root.hidden = false;
  document.body.classList.add('sheet-open');
  root.querySelector('#sheet-title').focus();
  return answer;
}

function card(student, courseName) {
  const qr = qrElement(student.qr_svg);
  if (qr) {
    qr.setAttribute('role', 'img');
    qr.setAttribute('aria-label', `QR code: the sign-in link for ${student.name}`);
    qr.classList.add('qr');
  }
  return el(
    'article',
    { class: 'signin-card', data: { student: student.id } },
    el('div', { class: 'who' }, el('p', { class: 'course' }, courseName), el('h3', { class: 'student' }, student.name)),
    el('p', { class: 'code-label' }, 'Your sign-in code'),
    el('p', { class: 'code big' }, groupSigninCode(student.code)),
    qr ?? el('p', { class: 'qr missing' }, 'No QR code: type the link below.'),
    el('p', { class: 'link' }, 'Or open ', el('span', { class: 'url' }, student.signin_url)),
  );
}
