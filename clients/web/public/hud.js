/**
 * What the page tells the person in words: the heads-up line (practical,
 * name, connection, how many are here, locked/paused; while reconnecting the
 * count is marked as out of date), short toasts for
 * refusals, room news and the challenge's points and mistakes (challenge.js
 * decides which), and a notice that stays when the practical is over for
 * this page (removed, ended, left).
 *
 * @module hud
 */

/** How long a toast stays up, ms: long enough to read a sentence. */
const TOAST_MS = 4500;
/** Toasts shown at once; an older one makes way for a new one. */
const MAX_TOASTS = 4;

const STATE_TEXT = { connecting: 'connecting…', connected: 'connected', closed: 'disconnected' };

export class Hud {
  /** @param {Document} doc */
  constructor(doc) {
    this.root = doc.getElementById('hud');
    this.fields = {
      title: doc.getElementById('hud-title'),
      name: doc.getElementById('hud-name'),
      state: doc.getElementById('hud-state'),
      count: doc.getElementById('hud-count'),
      flags: doc.getElementById('hud-flags'),
    };
    this.toasts = doc.getElementById('toasts');
    this.doc = doc;
    this.noticeBox = doc.getElementById('notice');
    this.noticeText = doc.getElementById('notice-text');
    this.noticeRetry = doc.getElementById('notice-retry');
    /** @type {(() => void) | null} what "Try again" does for the notice up now */
    this.retry = null;
    this.noticeRetry.addEventListener('click', () => {
      const retry = this.retry;
      this.clearNotice();
      retry?.();
    });
    /** @type {((toast: {text: string, kind: string, code: string, ms: number}) => void)[]} */
    this.toastListeners = [];
  }

  /**
   * Also tell `listener` of every toast: a headset in VR draws no DOM, so the
   * in-world panel (vrpanel.js) shows them there.
   * @param {(toast: {text: string, kind: string, code: string, ms: number}) => void} listener
   */
  onToast(listener) {
    this.toastListeners.push(listener);
  }

  /**
   * @param {object} view
   * @param {string} view.title
   * @param {string} view.name
   * @param {'connecting'|'connected'|'closed'} view.state
   * @param {boolean} view.reconnecting getting back in after a drop: what the room last said may be stale
   * @param {number} view.count participants in the room
   * @param {boolean} view.locked
   * @param {boolean} view.frozen
   */
  update({ title, name, state, reconnecting, count, locked, frozen }) {
    this.root.hidden = false;
    this.fields.title.textContent = title;
    this.fields.name.textContent = name;
    // Both are cut with an ellipsis when the line is short (a phone, a 40-letter name): the title says them whole.
    this.fields.title.title = title;
    this.fields.name.title = name;
    this.fields.state.textContent = reconnecting ? 'reconnecting…' : STATE_TEXT[state];
    this.fields.state.dataset.state = state;
    this.fields.count.textContent = `${count} ${count === 1 ? 'person' : 'people'} here${reconnecting ? ' (reconnecting)' : ''}`;
    this.fields.count.classList.toggle('stale', reconnecting);
    const flags = [locked && 'locked', frozen && 'paused by the teacher'].filter(Boolean);
    this.fields.flags.textContent = flags.join(' · ');
  }

  /**
   * A short message that goes away by itself.
   * @param {string} text
   * @param {'info'|'error'|'points'|'mistake'} [kind] `points`: a step done; `mistake`: what went wrong and why
   * @param {string} [code] the server's error code (or the mistake's id), kept on the element for tests and styling
   * @param {number} [ms] how long it stays up
   */
  toast(text, kind = 'info', code = '', ms = TOAST_MS) {
    const toast = document.createElement('div');
    toast.className = `toast ${kind}`;
    toast.textContent = text;
    if (code) toast.dataset.code = code;
    this.toasts.append(toast);
    while (this.toasts.childElementCount > MAX_TOASTS) this.toasts.firstElementChild.remove();
    setTimeout(() => toast.remove(), ms);
    for (const listener of this.toastListeners) listener({ text, kind, code, ms });
  }

  /**
   * A message that stays: this page is out of the practical. The lab behind it is hidden
   * (body.out in style.css), with the toasts, so the sentence shows once, on its own.
   * @param {string} text
   * @param {(() => void) | null} [retry] offer "Try again", which clears the notice and calls this
   */
  notice(text, retry = null) {
    this.noticeText.textContent = text;
    this.retry = retry;
    this.noticeRetry.hidden = !retry;
    this.noticeBox.hidden = false;
    this.doc.body.classList.add('out');
    this.toasts.replaceChildren();
  }

  /** Back in (a retry was let in): take the notice away and show the lab again. */
  clearNotice() {
    this.retry = null;
    this.noticeBox.hidden = true;
    this.doc.body.classList.remove('out');
  }
}
