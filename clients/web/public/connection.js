/**
 * Getting into a practical and staying in it: the REST join, the room socket,
 * keep-alive, and resume after a drop.
 *
 * The room socket is not on the HTTP port (the server runs it on a lean
 * asyncio path of its own), so its address always comes from the server:
 * POST /api/join answers it for students, GET /api/sessions/{id} for the
 * teacher link.
 *
 * @module connection
 */

import { CloseCode, PROTOCOL_VERSION, decodeTick, messages } from './protocol.js';

/** The server drops sockets silent for 30 s; ping well before that when no pose was sent. */
const KEEPALIVE_MS = 10_000;
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 8_000;
/** Close code this page uses when it drops its own socket to resume (the 3000s are for applications). */
const MISSED_EVENTS = 3000;

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
  const response = await fetch('/api/join', {
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
  return { token: body.token, wsUrl: body.ws_url, title: body.title, glbUrl: sceneModelUrl(body) };
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
  const response = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const body = await readJson(response);
  return { token, wsUrl: body.ws_url, title: body.title, glbUrl: sceneModelUrl(body) };
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
 * - `message` (detail: any other unsequenced message: rtc_answer, rtc_closed, voice_levels);
 * - `dropped` (detail: {code, reason, text, final}) when the socket closes.
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
    this.retryMs = RECONNECT_FIRST_MS;
    this.keepalive = setInterval(() => this.keepAlive(), 1000);
  }

  /** Open the socket and join; resumes with `last_seq` once any event has been seen. */
  open() {
    this.setState('connecting');
    const socket = new WebSocket(this.credentials.wsUrl);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => this.send(messages.join(this.credentials.token, this.lastSeq));
    // A socket we gave up on may still deliver a little; only the current one speaks for the room.
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.dropped(event.code, event.reason);
    };
  }

  /** Join again after a final close (a locked or full practical, a removal since lifted): same token, fresh socket. */
  retry() {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => this.keepAlive(), 1000);
    this.retryMs = RECONNECT_FIRST_MS;
    this.open();
  }

  /** Send a control message (ignored while disconnected: the room state will be resent on resume). */
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
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.socket.send(data);
    this.lastSent = performance.now();
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      this.emit('tick', decodeTick(data));
      return;
    }
    const message = JSON.parse(data);
    if (message.type === 'welcome') {
      if (message.protocol !== PROTOCOL_VERSION) {
        console.warn(`Server speaks protocol ${message.protocol}; this page speaks ${PROTOCOL_VERSION}.`);
      }
      // A snapshot reflects every event up to `seq`; a resume without one is followed by the replay.
      if (message.snapshot) this.lastSeq = message.seq;
      this.retryMs = RECONNECT_FIRST_MS;
      this.emit('welcome', message);
      this.setState('connected'); // after the welcome is applied, so 'connected' means the state is there
    } else if (message.type === 'error') {
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
    } else {
      this.emit('message', message);
    }
  }

  dropped(code, reason) {
    this.socket = null;
    const final = FINAL_CLOSES.has(code);
    const text = CLOSE_TEXT[code] ?? (reason ? `Connection lost: ${reason}.` : 'Connection lost.');
    this.emit('dropped', { code, reason, text, final });
    if (final) {
      clearInterval(this.keepalive);
      this.setState('closed');
      return;
    }
    this.setState('connecting');
    setTimeout(() => this.open(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
  }

  keepAlive() {
    if (this.state === 'connected' && performance.now() - this.lastSent > KEEPALIVE_MS) this.send(messages.ping());
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
