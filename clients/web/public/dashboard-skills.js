/**
 * The course's skills as a heat map (GET /api/courses/{id}/skills): a row
 * per student, a column per skill, each cell the learner model's belief that
 * the student has the skill (P(known), 0 to 1, docs/operations.md "The
 * learner model and skills"), so a teacher sees at a glance which skill the
 * class has not got yet and who needs it again.
 *
 * Each cell is coloured on a perceptually even scale (viridis: dark violet
 * for unlikely, yellow for known, told apart by people with the common
 * colour-vision deficiencies), and says its value in text as well ("0.53",
 * "0.95 ✓" where the server counts it mastered), so nothing rests on colour.
 * The text is black or white, whichever contrasts more with the cell: with
 * this scale that is never under 4.5:1 (WCAG AA). A student who has not
 * tried a skill yet shows "—". The foot row counts who has mastered each.
 *
 * @module dashboard-skills
 */

import { el, plural, table } from './dashboard-ui.js';

/** Viridis, sampled: [position, [r, g, b]]. */
const SCALE = [
  [0, [68, 1, 84]],
  [0.25, [59, 82, 139]],
  [0.5, [33, 145, 140]],
  [0.75, [94, 201, 98]],
  [1, [253, 231, 37]],
];

/**
 * The cell's colours for a P(known): the scale's colour, and black or white text, whichever contrasts more.
 * @param {number} p in [0, 1]
 * @returns {{background: string, color: string, contrast: number}}
 */
export function cellColors(p) {
  const x = Math.max(0, Math.min(1, Number(p) || 0));
  let i = 1;
  while (i < SCALE.length - 1 && x > SCALE[i][0]) i += 1;
  const [a, from] = SCALE[i - 1];
  const [b, to] = SCALE[i];
  const u = (x - a) / (b - a);
  const rgb = from.map((c, k) => Math.round(c + (to[k] - c) * u));
  const lum = luminance(rgb);
  const onWhite = 1.05 / (lum + 0.05);
  const onBlack = (lum + 0.05) / 0.05;
  return { background: `rgb(${rgb.join(', ')})`, color: onBlack >= onWhite ? '#000' : '#fff', contrast: Math.max(onWhite, onBlack) };
}

/** WCAG relative luminance of an sRGB colour. */
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export class SkillsView {
  /** @param {import('./dashboard-course.js').CourseView} ctx */
  constructor(ctx) {
    this.tab = true;
    this.ctx = ctx;
    this.root = el('div', { class: 'view skills', id: 'skills' }, el('p', { class: 'hint' }, 'Loading the skills…'));
    this.load();
  }

  async load() {
    try {
      this.render(await this.ctx.api.call(`/api/courses/${encodeURIComponent(this.ctx.id)}/skills`));
    } catch (error) {
      this.root.replaceChildren(el('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, error.message));
    }
  }

  update() {
    this.load();
  }

  render({ skills, students }) {
    const intro = el(
      'p',
      { class: 'hint' },
      'How likely each student is to have each skill (0 to 1), from their first attempts at the steps that practise it, over every practical of the course. ✓ mastered · — not tried yet.',
    );
    if (!skills.length || !students.length) {
      const why = students.length
        ? 'No skill has been practised yet: the map fills in as students do steps that name a skill.'
        : 'No students yet.';
      this.root.replaceChildren(el('h3', {}, 'Skills'), intro, el('p', { id: 'skills-empty' }, why));
      return;
    }
    const head = ['Student', ...skills.map((skill) => ({ text: skill, class: 'skill' }))];
    const rows = students.map((student) =>
      el('tr', { data: { student: student.id } }, el('th', { scope: 'row', class: 'name' }, student.name), skills.map((skill) => this.cell(student, skill))),
    );
    const mastered = skills.map((skill) => students.filter((s) => s.skills[skill]?.mastered).length);
    const foot = el(
      'tfoot',
      {},
      el('tr', {}, el('th', { scope: 'row' }, 'Mastered'), mastered.map((n, i) => el('td', { class: 'num', data: { skill: skills[i] } }, `${n} of ${students.length}`))),
    );
    const box = table('Mastery per skill per student', head, rows, { id: 'skills-map', class: 'data heat sticky-first' });
    box.querySelector('table').append(foot);
    this.root.replaceChildren(el('h3', {}, 'Skills'), intro, this.legend(), box);
  }

  /** One student's cell for one skill. */
  cell(student, skill) {
    const known = student.skills[skill];
    if (!known) return el('td', { class: 'none', data: { skill }, title: `${student.name} has not tried ${skill} yet` }, '—');
    const { background, color } = cellColors(known.p_known);
    const value = known.p_known.toFixed(2);
    const tries = plural(known.opportunities, 'try', 'tries');
    return el(
      'td',
      {
        class: known.mastered ? 'mastered' : '',
        style: `background: ${background}; color: ${color}`,
        data: { skill, p: String(known.p_known), mastered: String(known.mastered) },
        title: `${student.name} · ${skill}: ${value} after ${tries}${known.mastered ? ', mastered' : ', not mastered yet'}`,
      },
      el('span', { class: 'p' }, value, known.mastered ? el('span', { 'aria-hidden': 'true' }, ' ✓') : null, known.mastered ? el('span', { class: 'sr' }, ' mastered') : null),
      el('span', { class: 'tries' }, tries),
    );
  }

  legend() {
    const steps = [0, 0.25, 0.5, 0.75, 1].map((p) => {
      const { background, color } = cellColors(p);
      return el('span', { style: `background: ${background}; color: ${color}` }, p.toFixed(2));
    });
    return el('p', { class: 'heat-legend', 'aria-hidden': 'true' }, el('span', { class: 'label' }, 'unlikely'), ...steps, el('span', { class: 'label' }, 'known'));
  }
}
