/**
 * The confirm strip: what cannot be undone with one tap asks here first, in a
 * sentence saying what will happen; only its yes button does it. The teacher
 * panel (reset, mute all, remove, end), the dashboard (delete, new codes) and
 * the status line's Leave all ask through it, so they behave alike: the safe
 * answer has the focus, Escape is the safe answer too, and saying no puts the
 * focus back where it was.
 *
 * @module confirm
 */

export class ConfirmStrip {
  /**
   * @param {HTMLElement|null} root a strip the page already holds (a `p` for the question, buttons with
   *   `data-confirm="yes"` and `data-confirm="no"`); without one the strip is built (put `root` in the page)
   */
  constructor(root = null) {
    this.root = root ?? ConfirmStrip.build();
    this.text = this.root.querySelector('p');
    this.yes = this.root.querySelector('[data-confirm="yes"]');
    this.no = this.root.querySelector('[data-confirm="no"]');
    this.root.hidden = true;
    /** @type {(() => void) | null} what yes does */
    this.pending = null;
    /** @type {Element | null} where the focus was when asked, for a no */
    this.back = null;
    this.yes.addEventListener('click', () => {
      const run = this.pending;
      this.cancel();
      run?.();
    });
    this.no.addEventListener('click', () => this.refuse());
    this.root.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      event.stopPropagation();
      this.refuse();
    });
  }

  static build() {
    const root = document.createElement('div');
    root.className = 'confirm';
    root.setAttribute('role', 'alertdialog');
    const text = document.createElement('p');
    text.id = `confirm-${Math.random().toString(36).slice(2, 8)}`;
    root.setAttribute('aria-labelledby', text.id);
    const actions = document.createElement('div');
    actions.className = 'actions';
    for (const [answer, label] of [['yes', ''], ['no', 'Cancel']]) {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.confirm = answer;
      button.textContent = label;
      if (answer === 'yes') button.className = 'danger';
      actions.append(button);
    }
    root.append(text, actions);
    return root;
  }

  /** Ask: `text` says what will happen, the `yes` button (labelled `yes`) does `run`. A new question replaces the one before. */
  ask(text, yes, run) {
    this.pending = run;
    this.text.textContent = text; // may hold a student's name: never innerHTML
    this.yes.textContent = yes;
    if (this.root.hidden) this.back = document.activeElement;
    this.root.hidden = false;
    this.no.focus();
  }

  /** Put the question away without doing it. */
  cancel() {
    this.pending = null;
    this.root.hidden = true;
  }

  /** The safe answer: nothing done, the focus back where it was. */
  refuse() {
    this.cancel();
    if (this.back instanceof HTMLElement) this.back.focus();
    this.back = null;
  }
}
