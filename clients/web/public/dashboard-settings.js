/**
 * A course's settings (GET/PUT /api/courses/{id}/settings): what students see
 * of the ladder, XP per point, the level curve, and the course's badges (as
 * JSON, for the few who need them); with the level thresholds the server
 * answers for the curve. A refused setting shows pydantic's messages, one a
 * line, by the field they are about.
 *
 * @module dashboard-settings
 */

import { el, row, statusLine, table } from './dashboard-ui.js';

const LADDERS = [
  ['relative', 'Neighbours, no names (default)'],
  ['full', 'Everyone, with names'],
  ['off', 'No ladder'],
];
const CURVES = [
  ['relative', 'Relative (default)'],
  ['linear', 'Linear'],
  ['flat', 'Flat'],
];

export class SettingsView {
  /** @param {import('./dashboard-course.js').CourseView} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.status = statusLine({ id: 'settings-status' });
    this.thresholds = el('div', { class: 'thresholds' });
    // novalidate: the server's checks are the rules, and its 422 says which field and why
    this.form = el('form', { id: 'settings', class: 'card settings', 'aria-labelledby': 'settings-title', novalidate: true });
    this.root = el(
      'div',
      { class: 'view' },
      el('h3', { id: 'settings-title' }, 'Settings'),
      el('div', { class: 'settings-layout' }, el('div', {}, this.form, this.status), this.thresholds),
    );
    this.form.append(el('p', { class: 'hint' }, 'Loading the settings…'));
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save();
    });
    this.load();
  }

  get path() {
    return `/api/courses/${encodeURIComponent(this.ctx.id)}/settings`;
  }

  async load() {
    try {
      this.render(await this.ctx.api.call(this.path));
    } catch (error) {
      this.status.show(error.message, 'error');
    }
  }

  render(settings) {
    const select = (name, label, options, value) => {
      const input = el('select', { id: `set-${name}`, name }, options.map(([v, text]) => el('option', { value: v, selected: v === value }, text)));
      return field(input, label);
    };
    const number = (name, label, value, props) => field(el('input', { id: `set-${name}`, name, type: 'number', value, required: true, ...props }), label);
    const badges = el('textarea', { id: 'set-badges', name: 'badges', rows: 6, spellcheck: 'false' });
    badges.value = JSON.stringify(settings.badges, null, 2);
    this.form.replaceChildren(
      el(
        'fieldset',
        {},
        el('legend', {}, 'Ladder and XP'),
        select('ladder', 'What students see of the course ladder', LADDERS, settings.ladder),
        number('neighbours', 'Neighbours shown above and below (relative ladder)', settings.neighbours, { min: 1, max: 10, step: 1 }),
        number('xp_per_point', 'XP per point of a practical’s score', settings.xp_per_point, { min: 0, max: 100, step: 'any' }),
      ),
      el(
        'fieldset',
        {},
        el('legend', {}, 'Levels'),
        el('p', { class: 'hint wide' }, 'Relative: each level needs the coefficient times the XP of the one before. Linear: the gap grows by the base each level. Flat: every level the same gap.'),
        select('kind', 'Level curve', CURVES, settings.curve.kind),
        number('levels', 'Levels', settings.curve.levels, { min: 2, max: 50, step: 1 }),
        number('base', 'Base XP (level 2 starts here)', settings.curve.base, { min: 1, step: 1 }),
        number('coefficient', 'Coefficient (relative curve)', settings.curve.coefficient, { min: 1.01, max: 3, step: 'any' }),
      ),
      el(
        'details',
        {},
        el('summary', {}, `Badges (${settings.badges.length})`),
        el('p', { class: 'hint' }, 'Each: {"id", "name", "description", "criteria": {"finished", "max_mistakes", "under_seconds"} or {"level"}}.'),
        field(badges, 'Badges as JSON'),
      ),
      el('button', { type: 'submit' }, 'Save settings'),
    );
    this.showThresholds(settings.thresholds);
  }

  showThresholds(thresholds) {
    const rows = thresholds.map((xp, i) => row([{ text: i + 1, class: 'num' }, { text: xp, class: 'num' }]));
    this.thresholds.replaceChildren(
      el('h4', {}, 'Level thresholds'),
      el('p', { class: 'hint' }, 'The total XP at which each level starts.'),
      table('Level thresholds', [{ text: 'Level', class: 'num' }, { text: 'From XP', class: 'num' }], rows, { id: 'thresholds', class: 'data compact' }),
    );
  }

  async save() {
    const value = (name) => this.form.elements[name].value;
    let badges;
    try {
      badges = JSON.parse(value('badges') || '[]');
    } catch (error) {
      this.status.show(`Badges: that is not valid JSON (${error.message}).`, 'error');
      return;
    }
    const body = {
      ladder: value('ladder'),
      neighbours: Number(value('neighbours')),
      xp_per_point: Number(value('xp_per_point')),
      curve: { kind: value('kind'), levels: Number(value('levels')), base: Number(value('base')), coefficient: Number(value('coefficient')) },
      badges,
    };
    const saveButton = this.form.querySelector('button[type="submit"]');
    saveButton.disabled = true;
    try {
      const saved = await this.ctx.api.call(this.path, { method: 'PUT', json: body });
      this.render(saved);
      this.status.show('Saved. Every practical’s XP now follows these settings.', 'ok');
      await this.ctx.refresh();
    } catch (error) {
      this.status.show(error.message, 'error');
    } finally {
      saveButton.disabled = false;
    }
  }
}

function field(input, label) {
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
}
