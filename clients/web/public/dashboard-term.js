/**
 * One student over the term (GET /api/courses/{id}/students/{sid}/term): XP,
 * level and the way to the next one, badges with their criteria and date,
 * and a row for each practical of the course: whether they came, and what
 * they did there.
 *
 * @module dashboard-term
 */

import { el, formatDate, row, table, yesNo } from './dashboard-ui.js';

export class TermView {
  /**
   * @param {import('./dashboard-course.js').CourseView} ctx
   * @param {string} studentId
   */
  constructor(ctx, studentId) {
    this.ctx = ctx;
    this.studentId = studentId;
    this.body = el('div', {}, el('p', { class: 'hint' }, 'Loading the term…'));
    this.root = el('div', { class: 'view term', id: 'term' }, ctx.back('students', '← Back to students'), this.body);
    this.load();
  }

  async load() {
    try {
      const term = await this.ctx.api.call(
        `/api/courses/${encodeURIComponent(this.ctx.id)}/students/${encodeURIComponent(this.studentId)}/term`,
      );
      this.render(term);
    } catch (error) {
      this.body.replaceChildren(el('p', { class: 'status', 'data-kind': 'error', role: 'alert' }, error.message));
    }
  }

  render(term) {
    const span = term.next_level_xp === null ? 1 : term.next_level_xp - term.level_xp;
    const into = term.next_level_xp === null ? 1 : term.xp - term.level_xp;
    const percent = Math.max(0, Math.min(100, Math.round((100 * into) / span)));
    const next =
      term.next_level_xp === null
        ? 'The last level: XP still counts on the ladder.'
        : `${term.to_next} XP to level ${term.level + 1} (at ${term.next_level_xp} XP).`;
    const facts = el(
      'dl',
      { class: 'facts' },
      fact('XP', String(term.xp), 'xp'),
      fact('Level', `${term.level} of ${term.levels}`, 'level'),
      fact('Badges', String(term.badges.length), 'badges'),
      fact('Practicals', `${term.practicals.filter((p) => p.attended).length} of ${term.practicals.length}`, 'practicals'),
    );
    const bar = el(
      'div',
      {
        class: 'bar',
        role: 'progressbar',
        'aria-label': `Progress to level ${term.level + 1}`,
        'aria-valuemin': term.level_xp,
        'aria-valuemax': term.next_level_xp ?? term.xp,
        'aria-valuenow': term.xp,
      },
      el('div', { class: 'fill', style: `width: ${percent}%` }),
    );
    const badges = term.badges.length
      ? el(
          'ul',
          { class: 'badges', id: 'term-badges' },
          term.badges.map((b) =>
            el('li', {}, el('strong', {}, b.name), b.description ? ` — ${b.description}` : '', el('span', { class: 'hint' }, ` ${b.criteria} Awarded ${formatDate(b.awarded_at)}.`)),
          ),
        )
      : el('p', { class: 'hint' }, 'No badges yet.');
    const rows = term.practicals.map((p) =>
      row(
        [
          p.title ?? '(untitled)',
          formatDate(p.created),
          yesNo(p.attended),
          { text: p.attended ? p.steps : '', class: 'num' },
          { text: p.attended ? p.mistakes : '', class: 'num' },
          { text: p.attended ? p.points : '', class: 'num' },
          { text: p.attended ? p.xp : '', class: 'num' },
          p.attended ? yesNo(p.finished) : '',
          { text: p.attended ? p.minutes : '', class: 'num' },
        ],
        { data: { session: p.session }, class: p.attended ? '' : 'absent' },
      ),
    );
    const num = (text) => ({ text, class: 'num' });
    this.body.replaceChildren(
      el('h3', { id: 'term-title' }, `${term.student.name}: the term`),
      facts,
      el('div', { class: 'progress' }, bar, el('p', { class: 'hint' }, next)),
      el('h4', {}, 'Badges'),
      badges,
      el('h4', {}, 'Practicals'),
      rows.length
        ? table(
            'Practicals this term',
            ['Practical', 'Date', 'Came', num('Steps'), num('Mistakes'), num('Points'), num('XP'), 'Finished', num('Minutes')],
            rows,
            { id: 'term-practicals', class: 'data' },
          )
        : el('p', { class: 'hint' }, 'The course has had no practicals yet.'),
    );
  }
}

function fact(name, value, key) {
  return el('div', { data: { fact: key } }, el('dt', {}, name), el('dd', {}, value));
}
