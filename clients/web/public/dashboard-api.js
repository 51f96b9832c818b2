/**
 * The teacher dashboard's REST calls: every request carries the teacher's
 * key as `Authorization: Bearer <key>`, and every refusal becomes an
 * {@link ApiError} whose message is the server's own sentence (`detail`),
 * or pydantic's messages made readable for a 422, never a blank page.
 *
 * The key lives in sessionStorage (this tab only, gone when it closes); a
 * link may carry it in the fragment (`/dashboard.html#key=ak_…`, which never
 * reaches a server log), and it is taken from there and wiped from the
 * address bar at once.
 *
 * @module dashboard-api
 */

import { saveResponse } from './format.js';

const KEY_STORAGE = 'amaliy:teacher-key';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message a sentence for the teacher
   * @param {{line: number, problem: string}[]} problems a roster import's bad rows
   */
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

/** The key from `#key=` (removed from the address bar), else the one this tab keeps. */
export function storedKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const linked = fragment.get('key');
  if (linked) {
    fragment.delete('key');
    const rest = fragment.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    remember(linked.trim());
    return linked.trim();
  }
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function remember(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage refused (a locked-down browser): the key lasts as long as the page
  }
}

/**
 * pydantic's 422 list as sentences: "curve → coefficient: Input should be ≥ 1.01".
 * @param {unknown} detail
 */
export function describeDetail(detail, status) {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((error) => {
        const where = (error.loc ?? []).filter((part) => part !== 'body').join(' → ');
        return where ? `${where}: ${error.msg}` : String(error.msg);
      })
      .join('\n');
  }
  return `The server answered ${status}.`;
}

export class Api {
  constructor(key = '') {
    this.key = key;
    /** Called when the server refuses the key itself (401), to show the sign-in form again. */
    this.onUnauthorized = () => {};
  }

  /**
   * @param {string} path
   * @param {{method?: string, json?: unknown, body?: BodyInit, type?: string}} [options]
   * @returns {Promise<any>} the answer's JSON, or null for a 204
   */
  async call(path, { method = 'GET', json, body, type } = {}) {
    const headers = { Authorization: `Bearer ${this.key}` };
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (type) {
      headers['Content-Type'] = type;
    }
    const response = await this.send(path, { method, headers, body });
    if (response.status === 204) return null;
    return response.json();
  }

  /** fetch, with any refusal thrown as an ApiError carrying the server's sentence. */
  async send(path, init) {
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'The server cannot be reached; check the network and try again.');
    }
    if (response.ok) return response;
    const answer = await response.json().catch(() => ({}));
    const error = new ApiError(response.status, describeDetail(answer.detail, response.status), answer.problems ?? []);
    if (response.status === 401) this.onUnauthorized(error);
    throw error;
  }

  /**
   * Download a file a route answers (it needs the key, so a plain link cannot): fetch it,
   * then save the bytes as a Blob under the name the server gives.
   */
  async download(path, fallbackName) {
    const response = await this.send(path, { headers: { Authorization: `Bearer ${this.key}` } });
    await saveResponse(response, fallbackName);
  }
}
