/**
 * How well this page's link carries the room: a small badge in the status
 * line, for a student who wonders why the others move in jumps.
 *
 * It shows what the server's private `quality` message says it now sends
 * this page (protocol version 2): good (everything, at the full rate),
 * reduced (fewer updates) or weak (fewer still, and no hands). And it shows
 * "no updates" when nothing has come from the room for STALL_MS while the
 * socket is still open: connection.js asks the server every second when the
 * room is quiet, so a silence that long is the link, not a still room, and
 * comes well before the page gives the socket up (SILENCE_MS there).
 *
 * Not by colour alone: a word and a number of bars, and for screen readers
 * a status region (role=status) that reads the word and the server's reason.
 * While the page is getting back in after a drop it is hidden, since the
 * reconnecting banner says more.
 *
 * @module linkbadge
 */

/** Nothing from the room this long (ms), while connected, and the badge says so. */
export const STALL_MS = 2_500;
/** How often the badge looks for a stall (ms). */
const CHECK_MS = 500;

/** What each `quality.level` reads as, and its bars out of 3. */
const LEVELS = [
  { word: 'good', bars: 3 },
  { word: 'reduced', bars: 2 },
  { word: 'weak', bars: 1 },
];
const STALLED = { word: 'no updates', bars: 0 };

export class LinkBadge {
  /**
   * @param {HTMLElement} root the badge element (index.html #link-badge)
   * @param {import('./connection.js').Connection} connection
   */
  constructor(root, connection) {
    this.root = root;
    this.connection = connection;
    this.bars = root.appendChild(document.createElement('span'));
    this.bars.className = 'link-bars';
    this.bars.setAttribute('aria-hidden', 'true');
    for (let i = 0; i < 3; i++) this.bars.appendChild(document.createElement('i'));
    this.word = root.appendChild(document.createElement('span'));
    this.word.className = 'link-word';
    this.word.setAttribute('aria-hidden', 'true'); // the sentence below says it, with the reason
    this.detail = root.appendChild(document.createElement('span'));
    this.detail.className = 'link-detail';
    /** What is shown now ('hidden', a level's word, or STALLED's), so an unchanged state is not read out again. */
    this.shown = null;
    for (const type of ['quality', 'state', 'welcome']) connection.addEventListener(type, () => this.render());
    setInterval(() => this.render(), CHECK_MS);
    this.render();
  }

  /** @returns {{word: string, bars: number} | null} what to show now; null: nothing */
  current() {
    const { connection } = this;
    if (connection.state !== 'connected') return null;
    if (performance.now() - connection.lastReceived > STALL_MS) return STALLED;
    if (connection.protocol < 2) return LEVELS[connection.quality?.level] ?? null; // an older server says nothing
    return LEVELS[connection.quality?.level ?? 0] ?? null; // every link starts at full quality
  }

  render() {
    const now = this.current();
    const reason = now === STALLED ? `Nothing has come from the practical for ${STALL_MS / 1000} seconds.` : (this.connection.quality?.reason ?? '');
    const key = now ? `${now.word}|${reason}` : 'hidden';
    if (key === this.shown) return;
    this.shown = key;
    this.root.hidden = !now;
    if (!now) return;
    this.root.dataset.bars = String(now.bars);
    this.word.textContent = now.word;
    this.detail.textContent = `Connection: ${now.word}.${reason ? ` ${reason}` : ''}`;
    this.root.title = reason;
  }

  /** For the test hooks: what the badge says, or null while it is hidden. */
  get text() {
    return this.root.hidden ? null : this.word.textContent;
  }
}
