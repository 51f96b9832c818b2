/**
 * The Amaliy web client's entry: sign in, then enter the practical.
 *
 * The join and sign-in forms need only small modules, so they show at once;
 * the practical's page (classroom.js, with three.js) starts loading at the
 * same moment and is usually there by the time Join is pressed. On a slow
 * link that is the difference between a form in a second and a blank page
 * for as long as three.js takes. If it is still on its way after sign-in,
 * "Loading lab…" says so.
 *
 * @module main
 */

import { Hud } from './hud.js';
import { signIn } from './landing.js';
import { LoadingStatus } from './loadingstatus.js';

async function main() {
  const hud = new Hud(document);
  const classroom = import('./classroom.js');
  // once the page's modules are all here, so the worker is told of every one of them; a failure
  // to load them is told where they are awaited, not as an unhandled rejection
  classroom.then(keepForOffline, () => {});
  try {
    const credentials = await signIn();
    const waiting = new LoadingStatus(document);
    let enter;
    try {
      ({ enter } = await classroom);
    } finally {
      waiting.remove();
    }
    await enter(credentials, hud);
  } catch (error) {
    console.error(error);
    hud.notice(error.message);
  }
}

/**
 * Keep this page loadable while the server is away (sw.js): a reload during an outage then
 * comes back to the reconnecting banner and in by itself, not to the browser's error page.
 * Outside a secure context (https, or localhost) there is no service worker: a page opened at a
 * plain-http LAN address goes without. A worker taking this page over did not see it load, so
 * it is told what the page fetched, to keep as well.
 */
function keepForOffline() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    const loaded = performance.getEntriesByType('resource').map((entry) => entry.name);
    navigator.serviceWorker.controller?.postMessage({ keep: [location.href, ...loaded] });
  });
  navigator.serviceWorker.register('/sw.js').catch((error) => console.warn('This page will not load offline:', error));
}

main();
