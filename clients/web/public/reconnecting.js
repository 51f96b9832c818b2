/**
 * Getting back into the practical after a drop (the server restarting, the
 * Wi-Fi gone): a banner says so for as long as it lasts, and the panels that
 * ask the room for something are frozen meanwhile.
 *
 * A toast would go away while the page is still out, and the student would go
 * on handling a lab the room no longer hears: connection.js sends nothing
 * until the next welcome, and holding.js, checkpoint.js, hints.js and
 * properties.js ignore their controls meanwhile (what is in the hand stays
 * there; the welcome says what is still held). The banner stays from the
 * drop to the welcome, says which try is next and in how many seconds, then
 * makes way for a short "Back in the practical." toast.
 *
 * @module reconnecting
 */

/** The panels whose controls ask the room for something: inert, and greyed (style.css), while reconnecting. */
const FROZEN = ['side', 'teacher-panel', 'grid-panel'];
/** How often the countdown is redrawn, ms: often enough that a second never shows late. */
const REDRAW_MS = 250;

export class ReconnectBanner {
  /**
   * @param {Document} doc
   * @param {import('./connection.js').Connection} connection
   * @param {import('./hud.js').Hud} hud for the toast when the page is back
   */
  constructor(doc, connection, hud) {
    this.doc = doc;
    this.connection = connection;
    this.root = doc.getElementById('reconnecting');
    this.next = doc.getElementById('reconnecting-next');
    this.attempt = doc.getElementById('reconnecting-try');
    this.timer = 0;
    connection.addEventListener('dropped', ({ detail: drop }) => this.show(!drop.final));
    connection.addEventListener('welcome', () => {
      if (this.shown) hud.toast('Back in the practical.');
      this.show(false);
    });
  }

  get shown() {
    return !this.root.hidden;
  }

  /** @param {boolean} on */
  show(on) {
    clearInterval(this.timer);
    this.root.hidden = !on;
    this.doc.body.classList.toggle('reconnecting', on);
    for (const id of FROZEN) this.doc.getElementById(id).inert = on;
    if (!on) return;
    this.render();
    this.timer = setInterval(() => this.render(), REDRAW_MS);
  }

  render() {
    const { attempt, at } = this.connection.reconnect;
    const seconds = Math.ceil((at - performance.now()) / 1000);
    this.next.textContent = seconds > 0 ? `next try in ${seconds} s` : 'trying now';
    this.attempt.textContent = `(try ${attempt})`;
  }
}
