/**
 * Getting into a practical and staying in it: the REST join, the room socket,
 * keep-alive, and resume after a drop.
 *
 * The room socket is not on the HTTP port (the server runs it on a lean
 * asyncio path of its own), so its address always comes from the server:
 * POST /api/join answers it for students, GET /api/sessions/{id} for the
 * teacher link.
 *
 * A deployment of several nodes (server/cluster.py) hosts each practical on
 * one node; when that node dies another adopts the room within a second or
 * two. So the page keeps every node's socket (`ws_urls` from the join), and
 * after a drop it goes where the server sends it, or on to the next node,
 * rather than waiting on a dead one (the Python SDK's `reconnect()` does the
 * same).
 *
 * The page asks for protocol version 2 (protocol.js) and speaks whatever
 * `welcome.protocol` says: tick frames are decoded by their kind byte, and on
 * version 2 the page acks the newest tick it processed, at most every
 * ACK_MS while ticks arrive, so the server can tell what the link carries and
 * send less to a weak one (its `quality` message says what it chose). A server
 * older than version 2 refuses the `protocol` field of the join: the page joins
 * again without it and speaks version 1.
 *
 * @module connection
 */

import { CloseCode, PROTOCOL_VERSION, decodeTickFrame, messages, readGrid } from './protocol.js';

/** The server drops sockets silent for 30 s; ping well before that when no pose was sent. */
const KEEPALIVE_MS = 10_000;
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 8_000;
/** Close code this page uses when it drops its own socket to resume (the 3000s are for applications). */
const MISSED_EVENTS = 3000;
/**
 * A node that froze (paused, stuck) keeps its TCP connections open and says nothing, and a
 * socket opened to it never completes its handshake. So: probe with a ping once nothing came for
 * PROBE_MS, give a joined socket up after SILENCE_MS without a word, and a socket that is not
 * welcomed within CONNECT_MS; then try the next node (this page's own close code, SILENT).
 */
const PROBE_MS = 1_000;
const SILENCE_MS = 6_000;
const CONNECT_MS = 10_000;
const SILENT = 3001;
/** What the browser reports for a socket that ended without a close frame (never sent by a server). */
const ABNORMAL_CLOSE = 1006;
/**
 * Join refusals that only say where to connect (the close that follows acts on them):
 * the page's business, not the student's, so they are not dispatched as `servererror`.
 */
const ROUTING_ERRORS = new Set(['room_elsewhere', 'room_moving']);
/** Version 2: at most one ack per this many ms (4 a second), sent while tick frames arrive. */
const ACK_MS = 250;
/** The protocol versions this page speaks. */
const SPOKEN = new Set([1, 2]);

/**
 * Close codes after which reconnecting cannot help (or would fight another
 * tab): the participant was removed, the practical is over or closed to them,
 * or their token is no good. Every other close is treated as a network drop
 * and resumed.
 */
const FINAL_CLOSES = new Set([
  CloseCode.LEFT,
  CloseCode.UNAUTHORIZED,
  CloseCode.REPLACED,
  CloseCode.KICKED,
  CloseCode.SESSION_ENDED,
  CloseCode.ROOM_FULL,
  CloseCode.ROOM_LOCKED,
]);

/**
 * Where this browser keeps the device key POST /api/join answers (server/admission.py). It is
 * per browser, not per tab: a teacher's removal holds for the device, and the same device asking
 * for its own name again gets its own place back. Clearing site storage makes a new device.
 */
const DEVICE_KEY = 'amaliy:device';

/** What a person should read for a close code whose server reason is terse. */
const CLOSE_TEXT = {
  [CloseCode.KICKED]: 'The teacher removed you from this practical; ask them to let you back in, then try again.',
  [CloseCode.SESSION_ENDED]: 'This practical has ended.',
  [CloseCode.REPLACED]: 'You opened this practical in another tab or device; this one is closed.',
  [CloseCode.ROOM_FULL]: 'This practical is full.',
  [CloseCode.ROOM_LOCKED]: 'The teacher has locked this practical; ask them to let you in.',
  [CloseCode.UNAUTHORIZED]: 'Your link is no longer valid; join again with the join code.',
  [CloseCode.LEFT]: 'You left the practical.',
};

/**
 * @typedef {object} Credentials
 * @property {string} token participant token (JWT), passed back in `join`
 * @property {string} wsUrl room socket address
 * @property {string[]} [wsUrls] every node's room socket, the host's first (several nodes);
 *   without it, `[wsUrl]`
 * @property {string} title practical title
 * @property {string} glbUrl the practical's scene model
 */

/**
 * Where a practical's scene model is: the version it was opened with, not
 * the newest (the same address the room later sends as `snapshot.scene.glb_url`;
 * knowing it before joining lets the lab load first).
 */
export function sceneModelUrl(body) {
  return `/api/scenes/${encodeURIComponent(body.scene)}/versions/${body.scene_version}/scene.glb`;
}

/**
 * Trade a join code and a display name for a participant token (POST /api/join).
 * @param {string} code
 * @param {string} name
 * @returns {Promise<Credentials>}
 */
export async function joinWithCode(code, name) {
  const response = await reach('/api/join', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code, name, ...(storedDevice() ? { device: storedDevice() } : {}) }),
  });
  const body = await readJson(response);
  if (body.device) {
    try {
      localStorage.setItem(DEVICE_KEY, body.device);
    } catch {
      // storage refused (a locked-down browser): this page is a new device next time
    }
  }
  return { token: body.token, wsUrl: body.ws_url, wsUrls: body.ws_urls ?? [body.ws_url], title: body.title, glbUrl: sceneModelUrl(body) };
}

/**
 * Look up the practical a teacher link's token belongs to (GET /api/sessions/{id}),
 * for its socket address, title and scene model. The session id is the token's `sid` claim;
 * the token itself is the bearer credential.
 * @param {string} token
 * @returns {Promise<Credentials>}
 */
export async function joinWithToken(token) {
  let sessionId;
  try {
    sessionId = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sid;
  } catch {
    throw new Error('This teacher link is damaged; copy it again from the server.');
  }
  const response = await reach(`/api/sessions/${encodeURIComponent(sessionId)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await readJson(response);
  // Only the host's socket is answered here; a `room_elsewhere` on the way adds the next host's.
  return { token, wsUrl: body.ws_url, wsUrls: body.ws_urls ?? [body.ws_url], title: body.title, glbUrl: sceneModelUrl(body) };
}

/**
 * fetch, with a server that cannot be reached said as a sentence rather than the browser's
 * "Failed to fetch": the page itself may have come from the service worker's copy (sw.js).
 */
export async function reach(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    throw new Error('The server could not be reached; check the connection and try again.');
  }
}

function storedDevice() {
  try {
    return localStorage.getItem(DEVICE_KEY);
  } catch {
    return null;
  }
}

async function readJson(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (typeof body.detail === 'string') throw new Error(body.detail);
    // A refused name comes back as a validation error whose message is a sentence for the student.
    const name = Array.isArray(body.detail) ? body.detail.find((e) => e.type === 'display_name') : undefined;
    if (name) throw new Error(name.msg);
    throw new Error(response.status === 422 ? 'Check the join code and your name.' : `The server answered ${response.status}.`);
  }
  return body;
}

/**
 * One participant's room socket, kept open across network drops.
 *
 * Dispatches:
 * - `state` (detail: 'connecting' | 'connected' | 'closed') when the state changes;
 * - `welcome` (detail: the welcome message) on every (re)join;
 * - `event` (detail: a sequenced event) once per event, duplicates from a resume removed;
 * - `tick` (detail: a decoded TickFrame);
 * - `servererror` (detail: an `error` message);
 * - `quality` (detail: the server's `quality` message: what it sends this page over its link);
 * - `message` (detail: any other unsequenced message: rtc_answer, rtc_closed, voice_levels);
 * - `dropped` (detail: {code, reason, text, final}) when the socket closes.
 *
 * Nothing but `join` goes out until the welcome of the current socket: a request made while
 * the page is getting back in would act on a room state it has not caught up with.
 *
 * Across nodes (see nextTry): a `room_elsewhere` error names the host, and its close (4011)
 * goes there at once; a 4011 without one (the node lost the room) goes to the next node at
 * once; a socket no node answered goes to the next node at once. Only after a full round of
 * the addresses like that does the page wait (doubling, as for any other drop), so a dead
 * host costs a refused connection, not a backoff.
 */
export class Connection extends EventTarget {
  /** @param {Credentials} credentials */
  constructor(credentials) {
    super();
    this.credentials = credentials;
    /** @type {'connecting'|'connected'|'closed'} */
    this.state = 'closed';
    /** Highest event `seq` applied; sent as `last_seq` so a resume replays only what was missed. */
    this.lastSeq = null;
    this.socket = null;
    this.lastSent = 0;
    /** When the current socket last brought anything, or was opened (performance.now() ms). */
    this.lastReceived = 0;
    this.retryMs = RECONNECT_FIRST_MS;
    /** Room sockets to try, in order (the host's first); grows with any host a `room_elsewhere` names. */
    this.urls = credentials.wsUrls?.length ? [...credentials.wsUrls] : [credentials.wsUrl];
    /** The socket address of the current (or next) try. */
    this.url = credentials.wsUrl ?? this.urls[0];
    /** Where the last `room_elsewhere` said the practical is, until the close it came before. */
    this.movedTo = null;
    /** Tries in a row made at once (a dead node passed over, a move followed): a full round of them, then wait. */
    this.quick = 0;
    /**
     * From a drop that will be resumed until the next welcome: which try the next one is
     * (1 for the first) and when it starts, in performance.now() ms; otherwise null.
     * @type {{attempt: number, at: number} | null}
     */
    this.reconnect = null;
    /** The protocol version the last welcome chose, and its position grid (version 2). */
    this.protocol = 1;
    /** @type {import('./protocol.js').Grid|null} */
    this.grid = null;
    /** The server's newest `quality` message on this socket, or null before the first. */
    this.quality = null;
    /** When the last ack, and the last ping probing a quiet socket, went out (performance.now() ms). */
    this.ackedAt = -Infinity;
    this.probedAt = -Infinity;
    this.keepalive = setInterval(() => this.keepAlive(), 1000);
  }

  /** Open the socket and join; resumes with `last_seq` once any event has been seen. */
  open() {
    this.setState('connecting');
    const socket = new WebSocket(this.url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.lastReceived = performance.now();
    /** Whether a node spoke on this socket: one that never did is passed over (nextTry). */
    let answered = false;
    /** Until the welcome: whether the join asked for a version (an older server refuses the field). */
    this.asked = true;
    socket.onopen = () => socket.send(JSON.stringify(messages.join(this.credentials.token, this.lastSeq)));
    // A socket we gave up on may still deliver a little; only the current one speaks for the room.
    socket.onmessage = (event) => {
      answered = true;
      this.lastReceived = performance.now();
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.dropped(event.code, event.reason, answered);
    };
  }

  /** Join again after a final close (a locked or full practical, a removal since lifted): same token, fresh socket. */
  retry() {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => this.keepAlive(), 1000);
    this.retryMs = RECONNECT_FIRST_MS;
    this.quick = 0;
    this.open();
  }

  /** Send a control message (ignored until connected: the room state will be resent on resume). */
  send(message) {
    this.sendRaw(JSON.stringify(message));
  }

  /** Send a binary frame built by protocol.js. */
  sendBinary(buffer) {
    this.sendRaw(buffer);
  }

  /** Leave for good: the room frees our place and the socket is not reopened. */
  leave() {
    this.send(messages.leave());
  }

  sendRaw(data) {
    if (this.state !== 'connected' || this.socket?.readyState !== WebSocket.OPEN) return;
    this.socket.send(data);
    this.lastSent = performance.now();
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      const frame = decodeTickFrame(data, this.grid);
      this.emit('tick', frame);
      this.ack(frame.tick);
      return;
    }
    const message = JSON.parse(data);
    if (message.type === 'welcome') {
      if (!SPOKEN.has(message.protocol)) {
        console.warn(`Server speaks protocol ${message.protocol}; this page speaks 1 to ${PROTOCOL_VERSION}.`);
      }
      this.grid = message.grid ? readGrid(message.grid) : null;
      this.protocol = message.protocol >= 2 && !this.grid ? 1 : message.protocol;
      if (this.protocol !== message.protocol) console.warn('A version 2 welcome without its grid: this page speaks version 1.');
      this.asked = false;
      this.quality = null; // the server says it again for this socket
      // A snapshot reflects every event up to `seq`; a resume without one is followed by the replay.
      if (message.snapshot) this.lastSeq = message.seq;
      this.retryMs = RECONNECT_FIRST_MS;
      this.quick = 0;
      this.reconnect = null;
      this.emit('welcome', message);
      this.setState('connected'); // after the welcome is applied, so 'connected' means the state is there
    } else if (message.type === 'error') {
      if (this.asked && message.code === 'invalid_message' && this.state === 'connecting') {
        // A server older than version 2 knows no `protocol` in a join: ask again without, and speak 1.
        this.asked = false;
        this.socket.send(JSON.stringify(messages.join(this.credentials.token, this.lastSeq, null)));
        return;
      }
      if (ROUTING_ERRORS.has(message.code)) {
        if (message.code === 'room_elsewhere' && typeof message.ws_url === 'string') this.movedTo = message.ws_url;
        return;
      }
      this.emit('servererror', message);
    } else if (typeof message.seq === 'number') {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) return; // already in our state
      if (this.lastSeq !== null && message.seq > this.lastSeq + 1) {
        // Events arrive without gaps; a gap means our state is wrong. Resume to get what is missing.
        const socket = this.socket;
        this.dropped(MISSED_EVENTS, 'missed events'); // from here on nothing from this socket counts
        socket.close(MISSED_EVENTS, 'missed events');
        return;
      }
      this.lastSeq = message.seq;
      this.emit('event', message);
    } else if (message.type === 'quality') {
      this.quality = message;
      this.emit('quality', message);
    } else {
      this.emit('message', message);
    }
  }

  /** Version 2: tell the server the newest tick processed, at most every ACK_MS. */
  ack(tick) {
    const now = performance.now();
    if (this.protocol < 2 || now - this.ackedAt < ACK_MS) return;
    this.ackedAt = now;
    this.send(messages.ack(tick));
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} [answered] a node sent something on the socket (false: nobody was there)
   */
  dropped(code, reason, answered = true) {
    this.socket = null;
    const final = FINAL_CLOSES.has(code);
    const text = CLOSE_TEXT[code] ?? (reason ? `Connection lost: ${reason}.` : 'Connection lost.');
    const wait = final ? 0 : this.nextTry(code, answered);
    this.reconnect = final ? null : { attempt: (this.reconnect?.attempt ?? 0) + 1, at: performance.now() + wait };
    this.emit('dropped', { code, reason, text, final });
    if (final) {
      clearInterval(this.keepalive);
      this.setState('closed');
      return;
    }
    this.setState('connecting');
    setTimeout(() => this.open(), wait);
  }

  /**
   * Choose the address of the next try after a drop that is not final, and how long to wait
   * before it (ms).
   *
   * - 4011 (MOVED): the practical is elsewhere. With the `room_elsewhere` address, go there;
   *   without (this node lost the room), to the next node. At once: someone hosts it.
   * - closed before any message (1006): nobody is at this address (a dead node): the next, at once.
   * - anything else (1013 while the room is between nodes or this node cannot reach Redis, a drop
   *   of a working socket, a restart): wait, doubling. After 1013, or a socket given up for its
   *   silence (SILENT), the wait is followed by the next node, since this one may be cut off or frozen.
   *
   * At most a round of the addresses go at once in a row, then the page waits all the same:
   * nodes that send each other on, or a whole deployment down, must not spin.
   */
  nextTry(code, answered) {
    const movedTo = this.movedTo;
    this.movedTo = null;
    const quick = code === CloseCode.MOVED || (code === ABNORMAL_CLOSE && !answered);
    if (code === CloseCode.MOVED && movedTo) {
      if (!this.urls.includes(movedTo)) this.urls.push(movedTo);
      this.url = movedTo;
    } else if (quick || code === CloseCode.TRY_AGAIN || code === SILENT) {
      this.url = this.urls[(this.urls.indexOf(this.url) + 1) % this.urls.length];
    }
    if (quick && ++this.quick < this.urls.length) return 0;
    this.quick = 0;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    return wait;
  }

  /** Every second: ping when idle or quiet, and give up a socket that went silent (PROBE_MS, SILENCE_MS above). */
  keepAlive() {
    const now = performance.now();
    const quiet = now - this.lastReceived;
    const socket = this.socket;
    if (socket && quiet > (this.state === 'connected' ? SILENCE_MS : CONNECT_MS)) {
      this.dropped(SILENT, 'the server went silent', this.state === 'connected'); // nothing more from it counts
      socket.close(SILENT, 'silent');
      return;
    }
    // Probing while poses go out too: a quiet socket then always means a quiet link (linkbadge.js).
    const idle = now - this.lastSent;
    if (this.state === 'connected' && (idle > KEEPALIVE_MS || (quiet > PROBE_MS && now - this.probedAt > PROBE_MS))) {
      this.probedAt = now;
      this.send(messages.ping());
    }
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
