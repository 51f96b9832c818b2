/**
 * The service worker (registered by main.js, scope `/`): keeps the student page loadable while
 * the server is away, so a reload during an outage shows "Reconnecting to the practical…" and
 * gets back in by itself (the tab's credentials are in sessionStorage), not the browser's error
 * page.
 *
 * Network first: every request of the app shell (the page, its modules and styles) goes to the
 * server, the files revalidated by their ETag every time, and each good answer is kept in the
 * cache; only when the server cannot be reached does the cache answer. So an update shows on the
 * next load, never a stale copy while the server is up. three.js comes from an address that names
 * its version (/vendor/three@<version>/, which the page's import map names): a kept copy of it is
 * used at once, since it never changes.
 *
 * Left to the network, never kept: the server's own routes (/api/*, among them the lab's model,
 * which the browser's HTTP cache keeps: its address is per version and cached for a year;
 * /healthz, /metrics, the API docs), anything but GET, other origins, and the dashboard's page
 * (offline it could do nothing, and its sign-in would take the unreachable server for a refused
 * key and forget it). The room socket is a WebSocket, which never passes through a worker.
 *
 * Service workers exist only in a secure context: https, or http on localhost/127.0.0.1. A page
 * opened at a plain-http LAN address has none, and a reload during an outage fails there as
 * before (docs/operations.md).
 */

/** Bump when what is kept, or under which key, changes: activation deletes every other cache. */
const CACHE = 'amaliy-shell-v2';
/** Addresses that name their content's version (three.js under /vendor/three@<version>/): what they
 * serve never changes, so a kept copy is used without asking the server. */
const VERSIONED = /^\/vendor\/three@[^/]+\//;
/** Paths the worker leaves alone: the server's routes, and the dashboard (see above). */
const NOT_SHELL = /^\/(api|healthz|metrics|docs|redoc|openapi\.json|dashboard\.html)(\/|$)/;

self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      // Take the page that registered us at once: its next reload may already be in an outage.
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || !isShell(new URL(request.url))) return;
  event.respondWith(networkFirst(event, request));
});

/**
 * The page that registered us was loaded before we were there: it sends what it loaded
 * (main.js), and we keep the shell's part of it, so its very first reload can be offline.
 */
self.addEventListener('message', (event) => {
  const urls = (event.data?.keep ?? []).filter((url) => isShell(new URL(url, self.location.href)));
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.allSettled(urls.map((url) => cache.add(key(url))))));
});

/** @param {URL} url */
function isShell(url) {
  return url.origin === self.location.origin && !NOT_SHELL.test(url.pathname);
}

/**
 * What a response is kept under: its address, except a page's, kept without its query, since
 * `/?code=ABC123` and `/` are the same page: one copy, the newest, not one per practical's code
 * (an older one of which a search-ignoring match could pick).
 * @param {string} url
 */
function key(url) {
  const parsed = new URL(url, self.location.href);
  return parsed.pathname === '/' || parsed.pathname.endsWith('.html') ? parsed.origin + parsed.pathname : parsed.href;
}

/**
 * @param {FetchEvent} event
 * @param {Request} request
 */
async function networkFirst(event, request) {
  if (VERSIONED.test(new URL(request.url).pathname)) {
    const kept = await caches.match(key(request.url));
    if (kept) return kept;
  }
  let response;
  try {
    // A navigation keeps the browser's own cache mode (a navigation request cannot be rebuilt);
    // anything else is revalidated every time: a 304 is cheap, a stale module is not.
    // A versioned address may come from the browser's cache: it never changes.
    const revalidate = request.mode !== 'navigate' && !VERSIONED.test(new URL(request.url).pathname);
    response = await (revalidate ? fetch(request, { cache: 'no-cache' }) : fetch(request));
  } catch (failure) {
    const kept = await caches.match(key(request.url));
    if (kept) return kept;
    throw failure;
  }
  // Only whole good answers: not a 206 (the Cache refuses parts), nor an error page.
  if (response.status === 200) {
    const copy = response.clone();
    event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key(request.url), copy)));
  }
  return response;
}
