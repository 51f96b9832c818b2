/**
 * The student's challenge HUD: the challenge's title, the current step, a
 * progress bar, the time since the station started and the score; a toast
 * and a chime for each step done, the explanation of each mistake, and a
 * summary card at the finish. Before the student is at a station it shows
 * the station picker (where the scene lets students choose) or says that
 * the teacher will place them.
 *
 * Everything shown comes from the room state (state.js), which applies the
 * room's events; this module only decides what to show and when to ring.
 * The current step is the first open step (all its `requires` done) not done
 * yet; its objects are outlined in the lab (highlight.js) when the step
 * asks for it, and a step with a checkpoint shows its question
 * (checkpoint.js).
 *
 * @module challenge
 */

import { messages } from './protocol.js';
import { formatDuration } from './format.js';

/** How long a mistake's explanation stays up, ms: it is a sentence to read and understand. */
const MISTAKE_TOAST_MS = 9000;
const POINTS_TOAST_MS = 3500;

export class ChallengeHud {
  /**
   * @param {HTMLElement} root the panel element (index.html `#challenge`)
   * @param {object} parts
   * @param {import('./state.js').RoomState} parts.state
   * @param {import('./connection.js').Connection} parts.connection
   * @param {import('./hud.js').Hud} parts.hud for toasts
   * @param {import('./highlight.js').Highlights} parts.highlights
   * @param {import('./checkpoint.js').CheckpointPanel} parts.checkpoint
   * @param {import('./summary.js').SummaryCard} parts.summary
   * @param {import('./chime.js').Chime} parts.chime
   * @param {import('./properties.js').PropertyControls} parts.properties
   */
  constructor(root, { state, connection, hud, highlights, checkpoint, summary, chime, properties }) {
    Object.assign(this, { root, state, connection, hud, highlights, checkpoint, summary, chime, properties });
    this.el = {
      title: root.querySelector('#challenge-title'),
      station: root.querySelector('#challenge-station'),
      step: root.querySelector('#challenge-step'),
      bar: root.querySelector('#challenge-bar'),
      count: root.querySelector('#challenge-count'),
      timer: root.querySelector('#challenge-timer'),
      score: root.querySelector('#challenge-score'),
      progress: root.querySelector('.challenge-progress'),
      picker: root.querySelector('#station-picker'),
      reopen: root.querySelector('#challenge-summary'),
    };
    this.el.picker.addEventListener('click', (event) => {
      const number = event.target.closest('button[data-station]')?.dataset.station;
      if (number) this.chooseStation(Number(number));
    });
    this.el.reopen.addEventListener('click', () => this.showSummary());
    setInterval(() => this.tick(), 250);
  }

  /** @returns {number|null} this page's station */
  get station() {
    return this.state.me ? this.state.stationOf(this.state.me.id) : null;
  }

  /** Whether this page shows a challenge HUD at all (students of a practical with stations or a challenge). */
  get active() {
    const { me, challenge, stationRules } = this.state;
    return Boolean(me && me.role === 'student' && (challenge || stationRules.declared));
  }

  /** Redraw from the room state (after the welcome and after every event). */
  render() {
    this.root.hidden = !this.active;
    if (!this.active) {
      this.highlights.show([]);
      this.checkpoint.hide();
      return;
    }
    const { challenge } = this.state;
    const number = this.station;
    const station = this.state.stations.get(number);
    this.el.title.textContent = challenge?.title ?? this.state.scene?.title ?? '';
    this.root.dataset.placed = String(Boolean(station));
    if (!station) {
      this.renderUnplaced();
      return;
    }
    this.el.picker.hidden = true;
    const partners = station.members.filter((id) => id !== this.state.me.id).map((id) => this.state.participants[id]?.name ?? 'someone');
    this.el.station.textContent = `${station.title}${partners.length ? ` · with ${partners.join(', ')}` : ''}`;
    if (!challenge) {
      this.el.step.textContent = '';
      this.el.progress.hidden = true;
      this.highlights.show([]);
      this.checkpoint.hide();
      return;
    }
    this.el.progress.hidden = false;
    const steps = challenge.steps;
    const done = steps.filter((step) => step.id in station.progress.done).length;
    const current = this.state.currentStep(number);
    const finished = station.progress.finished !== null;
    this.el.step.textContent = current ? current.text : finished ? 'Challenge complete.' : 'Waiting for the challenge to start…';
    this.el.step.dataset.step = current?.id ?? '';
    this.el.step.classList.toggle('overdue', Boolean(current && station.overdue.has(current.id)));
    this.el.count.textContent = `Step ${Math.min(done + 1, steps.length)} of ${steps.length}`;
    if (finished) this.el.count.textContent = `${steps.length} of ${steps.length} steps`;
    this.el.bar.style.width = `${(100 * done) / steps.length}%`;
    this.el.bar.parentElement.setAttribute('aria-valuenow', String(done));
    this.el.bar.parentElement.setAttribute('aria-valuemax', String(steps.length));
    const mine = station.scores[this.state.me.id];
    // In a group, a student who came late has a score of their own: shown when it differs from the station's.
    const own = mine !== undefined && mine !== station.progress.score ? ` (you ${mine})` : '';
    this.el.score.textContent = `Score ${station.progress.score}${own}`;
    this.el.reopen.hidden = !finished;
    const lit = current?.highlight ? (station.highlight[current.id] ?? []) : [];
    this.highlights.show(lit);
    this.properties.suggest(lit.find((id) => this.state.objects[id]?.properties.some((p) => p.interactive !== false)) ?? null);
    this.checkpoint.show(current);
    this.tick();
  }

  /** Not at a station: pick one, or wait to be placed. */
  renderUnplaced() {
    const { assignment } = this.state.stationRules;
    this.el.progress.hidden = true;
    this.el.reopen.hidden = true;
    this.highlights.show([]);
    this.checkpoint.hide();
    this.properties.suggest(null);
    this.el.station.textContent = '';
    if (assignment === 'choose') {
      this.el.step.textContent = 'Choose your lab station:';
      const buttons = this.stationChoices().map(({ number, label, full }) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.dataset.station = String(number);
        button.textContent = label;
        button.disabled = full;
        return button;
      });
      this.el.picker.replaceChildren(...buttons);
      this.el.picker.hidden = false;
    } else {
      this.el.step.textContent =
        assignment === 'teacher' ? 'Waiting for the teacher to place you at a station…' : 'Every station is full: the teacher will place you.';
      this.el.picker.hidden = true;
    }
    this.el.step.dataset.step = '';
  }

  /** The stations a student may choose, as the picker offers them: {number, label, full}. */
  stationChoices() {
    const size = this.state.stationRules.groupSize;
    return [...this.state.stations.values()].map((station) => ({
      number: station.number,
      label: `${station.title}${size ? ` · ${station.members.length}/${size}` : ''}`,
      full: size !== null && station.members.length >= size,
    }));
  }

  /** Ask the room for a station (the picker's buttons, and the VR panel's). */
  chooseStation(number) {
    this.connection.send(messages.chooseStation(number));
  }

  /**
   * What the HUD says now, as plain words (the VR panel draws the same ones):
   * whether it is shown, the title, the station line, the step line, the
   * progress and score (empty when hidden) and the stations on offer (empty
   * unless the picker is shown).
   */
  words() {
    const progress = !this.el.progress.hidden;
    return {
      shown: !this.root.hidden,
      title: this.el.title.textContent,
      station: this.el.station.textContent,
      step: this.el.step.textContent,
      count: progress ? this.el.count.textContent : '',
      score: progress ? this.el.score.textContent : '',
      stations: this.el.picker.hidden ? [] : this.stationChoices(),
    };
  }

  /** Keep the timer running (four times a second). */
  tick() {
    const progress = this.state.stations.get(this.station)?.progress;
    if (!this.active || !progress || progress.started === null) {
      this.el.timer.textContent = '';
      return;
    }
    const end = progress.finished ?? this.state.roomNow();
    this.el.timer.textContent = `Time ${formatDuration(end - progress.started)}`;
  }

  /**
   * Toasts, chimes and the summary for an event (called after state.js applied it).
   * @param {object} event
   */
  onEvent(event) {
    if (!this.active) return;
    const me = this.state.me.id;
    const mine = event.station !== undefined && event.station === this.station;
    switch (event.type) {
      case 'station':
        if (event.participant === me) {
          const station = this.state.stations.get(event.station);
          if (station) this.hud.toast(`You are at ${station.title}.`);
          else if (event.full) this.hud.toast('Every station is full: the teacher will place you.', 'error');
          else if (this.state.stationRules.declared) this.hud.toast('You are not at a station now.');
          this.summary.hide();
        }
        break;
      case 'step_done':
        if (mine) {
          const step = this.stepById(event.step);
          const who = event.by && event.by !== me ? `${this.state.participants[event.by]?.name ?? 'Your partner'}: ` : '';
          this.hud.toast(`+${event.points}  ${who}${step?.text ?? event.step}`, 'points', '', POINTS_TOAST_MS);
          if (this.state.stations.get(event.station)?.progress.finished === null) this.chime.play('step');
        }
        break;
      case 'mistake':
        if (mine) {
          this.hud.toast(`${event.explanation}${event.penalty ? ` (−${event.penalty})` : ''}`, 'mistake', event.mistake, MISTAKE_TOAST_MS);
          this.chime.play('mistake');
          this.checkpoint.mistake(event);
        }
        break;
      case 'checkpoint_answer':
        if (mine) this.checkpoint.answered(event);
        break;
      case 'challenge_done':
        if (mine) {
          this.hud.toast(`Challenge complete! Score ${event.score}${event.bonus ? ` (time bonus +${event.bonus})` : ''}`, 'points', '', POINTS_TOAST_MS);
          this.chime.play('finish');
          this.showSummary();
        }
        break;
      case 'score':
        if (mine && this.summary.shown) this.showSummary(); // the finish's own score comes after it
        break;
      case 'step_overdue':
        if (mine) this.hud.toast('This step is past its time limit: it now earns half its points. Keep going!');
        break;
      default:
        break;
    }
  }

  showSummary() {
    const station = this.state.stations.get(this.station);
    if (!station || !this.state.challenge) return;
    this.summary.show({
      title: this.state.challenge.title,
      steps: this.state.challenge.steps,
      progress: station.progress,
      myScore: station.scores[this.state.me.id] ?? null,
    });
  }

  stepById(id) {
    return this.state.challenge?.steps.find((step) => step.id === id) ?? null;
  }

  /** The challenge as this page shows it, for tests (a fresh copy each time). */
  view() {
    const number = this.station;
    const station = this.state.stations.get(number);
    const current = this.state.currentStep(number);
    const progress = station?.progress;
    return {
      station: number,
      stationTitle: station?.title ?? null,
      assignment: this.state.stationRules.assignment,
      title: this.state.challenge?.title ?? null,
      current: current ? { id: current.id, text: current.text, checkpoint: current.checkpoint ?? null } : null,
      done: progress ? Object.keys(progress.done) : [],
      total: this.state.challenge?.steps.length ?? 0,
      score: progress?.score ?? 0,
      myScore: station?.scores[this.state.me?.id] ?? null,
      mistakes: progress ? Object.values(progress.mistakes).reduce((a, b) => a + b, 0) : 0,
      started: progress?.started ?? null,
      finished: progress?.finished ?? null,
      bonus: progress?.bonus ?? 0,
      timer: this.el.timer.textContent,
      stepText: this.el.step.textContent,
      highlighted: this.highlights.ids,
      checkpoint: this.checkpoint.last ? { ...this.checkpoint.last } : null,
      summary: this.summary.shown ? { ...this.summary.shown } : null,
      chimes: { ...this.chime.played },
    };
  }
}
