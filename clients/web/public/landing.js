/**
 * How a tab gets into a practical, from the link it was opened with:
 *
 * - `/#token=JWT`: a teacher link; the token is used as it is. It sits in
 *   the fragment so it never reaches a server log.
 * - `/?signin=ABCDEFGH`: a student's personal link (the QR code on the
 *   teacher's printed sign-in sheet): sign in with it at once. The code is
 *   taken out of the address bar first, so it is not left in the history or
 *   on the screen for whoever uses the device next.
 * - `/?code=ABC123`: a student link; ask only for a display name.
 * - `/`: ask for the join code and a name or, behind "I have a sign-in
 *   code", for the student's personal sign-in code (POST /api/signin: they
 *   enter their course's open practical as themselves, with their records).
 *
 * A student's token is kept in sessionStorage (per tab), so reloading the
 * page comes back as the same participant, holds and all, within the room's
 * resume window instead of joining a second time: a guest's under the join
 * code, a signed-in student's under a key of its own, so a reload of `/`
 * goes straight back in. The code itself is never stored. That holds while the
 * server is down too: the page comes from the service worker's copy (sw.js),
 * needs no request to get its credentials, and the room socket's retries show
 * the reconnecting banner until the server is back.
 *
 * @module landing
 */

import { joinWithCode, joinWithToken, reach, sceneModelUrl } from './connection.js';
import { groupSigninCode, normaliseSigninCode } from './format.js';

const STORAGE_PREFIX = 'amaliy:';
/** Where a student signed in with their personal code keeps this tab's credentials. */
const SIGNED_IN = `${STORAGE_PREFIX}signin`;
/** A sign-in code's length (server/store.py, SIGNIN_CODE_LENGTH): shown as two groups of four. */
const SIGNIN_CODE_LENGTH = 8;

/** @type {import('./connection.js').Credentials | null} this tab's, once in */
let current = null;
/** The sessionStorage key this tab's credentials are under (null for a teacher link). */
let storedUnder = null;

/**
 * @returns {Promise<import('./connection.js').Credentials>}
 */
export async function signIn() {
  current = await credentials();
  return current;
}

/**
 * This tab's credentials once in (for REST calls as this participant: `token`; a student
 * signed in with their code also has `course`, {id, name}), or null.
 */
export function roomCredentials() {
  return current;
}

async function credentials() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) return joinWithToken(token);
  const params = new URLSearchParams(location.search);
  if (params.has('signin')) {
    const typed = params.get('signin') ?? '';
    params.delete('signin');
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}`);
    try {
      return await signInWithCode(typed);
    } catch (failure) {
      return ask('', { signin: typed, error: failure.message });
    }
  }
  const code = params.get('code')?.trim().toUpperCase() ?? '';
  const key = code ? STORAGE_PREFIX + code : SIGNED_IN;
  const stored = sessionStorage.getItem(key);
  if (stored) {
    storedUnder = key;
    return JSON.parse(stored);
  }
  return ask(code);
}

/** Forget this tab's student token (it was removed, or the practical is over). */
export function signOut() {
  if (storedUnder) sessionStorage.removeItem(storedUnder);
}



/**
 * Trade a student's personal sign-in code for their credentials in their course's open
 * practical (POST /api/signin), and keep them for a reload.
 * @param {string} typed the code as typed (any case; spaces and dashes ignored)
 * @returns {Promise<import('./connection.js').Credentials>}
 */
async function signInWithCode(typed) {
  const code = normaliseSigninCode(typed);
  if (code.length !== SIGNIN_CODE_LENGTH) {
    throw new Error(`A sign-in code has ${SIGNIN_CODE_LENGTH} letters and digits; check the one your teacher gave you.`);
  }
  const response = await reach('/api/signin', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(typeof body.detail === 'string' ? body.detail : `The server answered ${response.status}.`);
  }
  const credentials = {
    token: body.token,
    wsUrl: body.ws_url,
    wsUrls: body.ws_urls ?? [body.ws_url],
    title: body.title,
    glbUrl: sceneModelUrl(body),
    course: body.course,
    student: { id: body.student?.id, name: body.student?.name },
  };
  sessionStorage.setItem(SIGNED_IN, JSON.stringify(credentials));
  storedUnder = SIGNED_IN;
  return credentials;
}

/**
 * Show the join form (or, with `signin`, the sign-in form) until the server lets the
 * student in by either.
 * @param {string} knownCode the join code from a student link ('' if none)
 * @param {{signin: string, error: string}} [signin] a sign-in link's code that was refused, and why
 */
function ask(knownCode, signin = undefined) {
  const join = document.getElementById('join-form');
  const byCode = document.getElementById('signin-form');
  const show = (form) => {
    join.hidden = form !== join;
    byCode.hidden = form !== byCode;
    const first = form === join ? join.elements.namedItem(knownCode ? 'name' : 'code') : byCode.elements.namedItem('signin');
    first.focus();
  };
  join.querySelector('[data-switch]').addEventListener('click', () => show(byCode));
  byCode.querySelector('[data-switch]').addEventListener('click', () => show(join));
  return new Promise((resolve) => {
    const done = (credentials) => {
      join.hidden = true;
      byCode.hidden = true;
      resolve(credentials);
    };
    askAndJoin(join, knownCode, done);
    askSigninCode(byCode, done);
    if (signin) {
      byCode.elements.namedItem('signin').value = groupSigninCode(signin.signin);
      document.getElementById('signin-error').textContent = signin.error;
    }
    show(signin ? byCode : join);
  });
}

/** The join form: a join code (unless the link has it) and a display name. */
function askAndJoin(form, knownCode, done) {
  const codeInput = form.elements.namedItem('code');
  const nameInput = form.elements.namedItem('name');
  const error = document.getElementById('join-error');
  document.getElementById('code-field').hidden = Boolean(knownCode);
  codeInput.value = knownCode;
  codeInput.required = !knownCode;
  untilAccepted(form, error, done, async () => {
    const code = codeInput.value.trim().toUpperCase();
    const credentials = await joinWithCode(code, nameInput.value.trim());
    sessionStorage.setItem(STORAGE_PREFIX + code, JSON.stringify(credentials));
    storedUnder = STORAGE_PREFIX + code;
    history.replaceState(null, '', `/?code=${encodeURIComponent(code)}`);
    return credentials;
  });
}

/**
 * Submit ``form`` with ``attempt`` until it gives credentials, then hand them to ``done``
 * once: the button is off while a try is under way, and a refusal is shown in ``error``.
 */
function untilAccepted(form, error, done, attempt) {
  form.addEventListener('submit', async function submit(event) {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    error.textContent = '';
    try {
      const credentials = await attempt();
      form.removeEventListener('submit', submit);
      done(credentials);
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      button.disabled = false;
    }
  });
}

/** The sign-in form: the student's personal code, shown grouped 4-4 as it is typed. */
function askSigninCode(form, done) {
  const input = form.elements.namedItem('signin');
  const error = document.getElementById('signin-error');
  input.addEventListener('input', () => {
    // Regroup as typed, keeping the caret after the same number of code characters.
    const before = normaliseSigninCode(input.value.slice(0, input.selectionStart ?? input.value.length)).length;
    input.value = groupSigninCode(input.value);
    let caret = 0;
    for (let seen = 0; caret < input.value.length && seen < before; caret += 1) {
      if (input.value[caret] !== ' ') seen += 1;
    }
    input.setSelectionRange(caret, caret);
  });
  untilAccepted(form, error, done, async () => {
    const credentials = await signInWithCode(input.value);
    history.replaceState(null, '', '/');
    return credentials;
  });
}
