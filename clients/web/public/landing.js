/**
 * How a tab gets into a practical, from the link it was opened with:
 *
 * - `/#token=JWT`: a teacher link; the token is used as it is. It sits in
 *   the fragment so it never reaches a server log.
 * - `/?code=ABC123`: a student link; ask only for a display name.
 * - `/`: ask for the join code and a name.
 *
 * A student's token is kept in sessionStorage (per tab), so reloading the
 * page comes back as the same participant, holds and all, within the room's
 * resume window instead of joining a second time.
 *
 * @module landing
 */

import { joinWithCode, joinWithToken } from './connection.js';

const STORAGE_PREFIX = 'amaliy:';

/**
 * @returns {Promise<import('./connection.js').Credentials>}
 */
export async function signIn() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) return joinWithToken(token);
  const code = new URLSearchParams(location.search).get('code')?.trim().toUpperCase() ?? '';
  const stored = code && sessionStorage.getItem(STORAGE_PREFIX + code);
  if (stored) return JSON.parse(stored);
  return askAndJoin(code);
}

/** Forget this tab's student token (it was removed, or the practical is over). */
export function signOut() {
  const code = new URLSearchParams(location.search).get('code')?.trim().toUpperCase();
  if (code) sessionStorage.removeItem(STORAGE_PREFIX + code);
}

/** Show the join form until the server accepts a code and name. */
function askAndJoin(knownCode) {
  const form = document.getElementById('join-form');
  const codeInput = form.elements.namedItem('code');
  const nameInput = form.elements.namedItem('name');
  const error = document.getElementById('join-error');
  document.getElementById('code-field').hidden = Boolean(knownCode);
  codeInput.value = knownCode;
  codeInput.required = !knownCode;
  form.hidden = false;
  (knownCode ? nameInput : codeInput).focus();
  return new Promise((resolve) => {
    form.addEventListener('submit', async function submit(event) {
      event.preventDefault();
      const code = codeInput.value.trim().toUpperCase();
      const button = form.querySelector('button');
      button.disabled = true;
      error.textContent = '';
      try {
        const credentials = await joinWithCode(code, nameInput.value.trim());
        sessionStorage.setItem(STORAGE_PREFIX + code, JSON.stringify(credentials));
        history.replaceState(null, '', `/?code=${encodeURIComponent(code)}`);
        form.removeEventListener('submit', submit);
        form.hidden = true;
        resolve(credentials);
      } catch (failure) {
        error.textContent = failure.message;
      } finally {
        button.disabled = false;
      }
    });
  });
}
