/**
 * The card a station sees when its challenge is done: steps, mistakes, time,
 * score and the time bonus, how each step went, and the ladders (the
 * station's place in the practical; a course student's in the course);
 * beside it, for a course student, what the practical earned them (XP,
 * level, badges). The ladders and earnings are card.js's, fetched with this
 * tab's room token.
 *
 * @module summary
 */

import { LearnerCard } from './card.js';
import { formatDuration } from './format.js';
import { roomCredentials } from './landing.js';


export class SummaryCard {
  /** @param {HTMLElement} root the card element (index.html `#summary`) */
  constructor(root) {
    this.root = root;
    /** What the card shows, for tests: null while hidden. */
    this.shown = null;
    /** The learner part: kept across redraws, fetched once per finish. */
    this.learner = new LearnerCard(roomCredentials);
  }

  /**
   * @param {object} view
   * @param {string} view.title the challenge's title
   * @param {import('./state.js').Step[]} view.steps
   * @param {import('./state.js').Progress} view.progress the station's
   * @param {number|null} view.myScore this student's own score
   */
  show({ title, steps, progress, myScore }) {
    const done = steps.filter((step) => step.id in progress.done).length;
    const mistakes = Object.values(progress.mistakes).reduce((a, b) => a + b, 0);
    const time = (progress.finished ?? progress.started) - progress.started;
    this.shown = { steps: done, total: steps.length, mistakes, time, score: progress.score, bonus: progress.bonus, myScore };

    const heading = document.createElement('h2');
    heading.id = 'summary-title';
    heading.textContent = `${title}: done!`;
    const facts = document.createElement('dl');
    const fact = (name, value, key) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.fact = key;
      facts.append(dt, dd);
    };
    fact('Steps', `${done} of ${steps.length}`, 'steps');
    fact('Mistakes', String(mistakes), 'mistakes');
    fact('Time', formatDuration(time), 'time');
    fact('Time bonus', `+${progress.bonus}`, 'bonus');
    fact('Station score', String(progress.score), 'score');
    if (myScore !== null) fact('Your score', String(myScore), 'mine');

    const list = document.createElement('ol');
    for (const step of steps) {
      const item = document.createElement('li');
      const info = progress.done[step.id];
      const slips = progress.mistakes[step.id] ?? 0;
      item.textContent = `${step.text} ${info ? `+${info.points}` : '—'}${slips ? ` · ${slips} mistake${slips === 1 ? '' : 's'}` : ''}`;
      list.append(item);
    }
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'summary-close';
    close.textContent = 'Close';
    close.addEventListener('click', () => this.hide());
    const main = document.createElement('div');
    main.className = 'summary-main';
    main.append(heading, facts, list, this.learner.ladders);
    // What scrolls on a short screen: the card's body; Close stays in view under it.
    const body = document.createElement('div');
    body.className = 'summary-body';
    body.append(main, this.learner.root);
    this.learner.load(progress.finished);
    this.root.replaceChildren(body, close);
    this.root.hidden = false;
  }

  hide() {
    this.root.hidden = true;
    this.shown = null;
  }
}
