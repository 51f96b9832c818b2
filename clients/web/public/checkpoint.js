/**
 * A checkpoint question of the current step: the question, then a button per
 * choice, or a number field with its unit; the answer goes to the room as
 * `answer`, and the room's verdict comes back for the whole station
 * (`checkpoint_answer`, and for a wrong answer a `mistake` with the
 * explanation to read). Refusals (answering too fast, a question no longer
 * open) come back as errors for this page's request and are shown here too.
 *
 * The panel is DOM inside the challenge HUD, itself in the overlay that AR
 * sessions use as their DOM overlay, so a phone or headset in AR answers it
 * with a tap; the buttons are large enough for a finger. In immersive VR no
 * DOM is drawn: the in-world panel (vrpanel.js) shows this panel's question,
 * state and verdict, and sends its answers through `send` / `sendNumber`.
 *
 * @module checkpoint
 */

import { messages } from './protocol.js';

/** How long the buttons wait for the room's verdict before they can be used again, ms. */
const ANSWER_TIMEOUT_MS = 4000;

export class CheckpointPanel {
  /**
   * @param {HTMLElement} root the panel element (index.html `#checkpoint`)
   * @param {import('./connection.js').Connection} connection
   */
  constructor(root, connection) {
    this.root = root;
    this.connection = connection;
    /** @type {import('./state.js').Step|null} the step whose question is shown */
    this.step = null;
    this.requests = 0;
    /** @type {string|null} id of the answer sent and not yet judged */
    this.waiting = null;
    this.waitTimer = 0;
    /** What the newest answer got: {step, result: 'sent'|'right'|'wrong'|'refused', message, code?} */
    this.last = null;
    this.question = document.createElement('p');
    this.question.className = 'checkpoint-question';
    this.question.id = 'checkpoint-question';
    this.answers = document.createElement('div');
    this.answers.className = 'checkpoint-answers';
    this.feedback = document.createElement('p');
    this.feedback.className = 'checkpoint-feedback';
    this.feedback.setAttribute('role', 'status');
    this.feedback.setAttribute('aria-live', 'polite');
    this.root.setAttribute('role', 'group');
    this.root.setAttribute('aria-labelledby', this.question.id);
    this.root.replaceChildren(this.question, this.answers, this.feedback);
  }

  /** Show a step's question (a step without one hides the panel). Showing the same step again keeps what was typed. */
  show(step) {
    if (!step?.checkpoint) {
      this.hide();
      return;
    }
    if (this.step?.id === step.id) return;
    this.step = step;
    this.waiting = null;
    this.question.textContent = step.checkpoint.question;
    this.setFeedback('', '');
    this.answers.replaceChildren(...(step.checkpoint.choices ? this.choiceButtons(step) : [this.numberForm(step)]));
    this.root.hidden = false;
  }

  hide() {
    this.step = null;
    this.waiting = null;
    this.root.hidden = true;
  }

  choiceButtons(step) {
    return step.checkpoint.choices.map((choice, index) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'choice';
      button.dataset.choice = String(index);
      button.textContent = choice;
      button.addEventListener('click', () => this.send(index, button));
      return button;
    });
  }

  numberForm(step) {
    const form = document.createElement('form');
    form.className = 'checkpoint-number';
    const input = document.createElement('input');
    input.type = 'number';
    input.step = 'any';
    input.required = true;
    input.inputMode = 'decimal';
    input.setAttribute('aria-label', 'Your answer');
    const unit = document.createElement('span');
    unit.className = 'unit';
    unit.textContent = step.checkpoint.number?.unit ?? '';
    const submit = document.createElement('button');
    submit.type = 'submit';
    submit.textContent = 'Answer';
    form.append(input, unit, submit);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.sendNumber(input.valueAsNumber, submit);
    });
    return form;
  }

  /**
   * Send a typed number (the field here, or the VR panel's keypad); anything
   * that is not a number is not sent, and the panel asks for one.
   * @returns {string|null} the request id, or null when nothing was sent
   */
  sendNumber(value, control = null) {
    if (Number.isFinite(value)) return this.send(value, control);
    this.setFeedback('Type a number first.', 'wrong');
    return null;
  }

  /** Whether an answer waits for the room's verdict (the buttons are off meanwhile). */
  get busy() {
    return this.waiting !== null;
  }

  /** The line under the question: {text, kind: '' | 'right' | 'wrong' | 'refused'}. */
  get status() {
    return { text: this.feedback.textContent, kind: this.feedback.dataset.result ?? '' };
  }

  /**
   * Send an answer (a choice's index or a number) for the shown step, or for another step by id.
   * @returns {string|null} the request id, or null while an answer waits for its verdict or the page reconnects
   */
  send(value, control = null, step = this.step?.id) {
    if (!step || this.waiting || this.connection.state !== 'connected') return null;
    const id = `answer-${++this.requests}`;
    this.waiting = id;
    this.last = { step, result: 'sent', message: '', value };
    for (const button of this.answers.querySelectorAll('button')) button.classList.remove('wrong');
    control?.classList.add('chosen');
    this.setBusy(true);
    clearTimeout(this.waitTimer);
    this.waitTimer = setTimeout(() => this.settle(), ANSWER_TIMEOUT_MS);
    this.connection.send(messages.answer(step, value, id));
    this.setFeedback('Checking…', '');
    return id;
  }

  /** The room judged an answer at our station (ours or a partner's). */
  answered(event) {
    if (event.step !== this.step?.id) return;
    const chosen = this.answers.querySelector('.chosen');
    if (event.correct) {
      this.last = { ...this.last, step: event.step, result: 'right', message: 'Right!' };
      this.setFeedback('Right!', 'right');
    } else {
      chosen?.classList.add('wrong');
      this.last = { ...this.last, step: event.step, result: 'wrong', message: 'Not quite.' };
      this.setFeedback('Not quite.', 'wrong');
    }
    this.settle();
  }

  /** The mistake that a wrong answer counts as: its explanation is what to read. */
  mistake(event) {
    if (event.step !== this.step?.id || event.mistake !== 'wrong_answer') return;
    this.last = { ...this.last, step: event.step, result: 'wrong', message: event.explanation };
    this.setFeedback(`${event.explanation} (−${event.penalty})`, 'wrong');
  }

  /**
   * The room refused one of our answers (rate_limited, step_not_open, bad_value...).
   * @returns {boolean} whether the error was about an answer
   */
  refused(error) {
    if (typeof error.re !== 'string' || !error.re.startsWith('answer-')) return false;
    this.last = { ...this.last, result: 'refused', code: error.code, message: error.message };
    this.setFeedback(error.message, 'refused');
    if (error.re === this.waiting) this.settle();
    return true;
  }

  settle() {
    clearTimeout(this.waitTimer);
    this.waiting = null;
    for (const button of this.answers.querySelectorAll('.chosen')) button.classList.remove('chosen');
    this.setBusy(false);
  }

  setBusy(busy) {
    for (const control of this.answers.querySelectorAll('button, input')) control.disabled = busy;
  }

  setFeedback(text, kind) {
    this.feedback.textContent = text;
    this.feedback.dataset.result = kind;
  }
}
