/**
 * "Loading lab…" over the page: while the practical's page (classroom.js) is
 * still on its way after sign-in, and then with the percentage while the lab
 * model downloads (scene.js). Needs no three.js, so it can show before it.
 *
 * @module loadingstatus
 */

/** "Loading lab… 42 %" over the page while the lab downloads (the size is known from Content-Length). */
export class LoadingStatus {
  /** @param {Document} doc */
  constructor(doc) {
    this.element = doc.createElement('p');
    this.element.id = 'lab-loading';
    this.element.setAttribute('role', 'status');
    this.element.style.cssText =
      'position:fixed;left:50%;top:40%;transform:translateX(-50%);margin:0;padding:.6em 1em;border-radius:.5em;' +
      'background:rgba(20,30,40,.85);color:#fff;font:600 1.1rem system-ui,sans-serif;white-space:nowrap;z-index:10;pointer-events:none';
    this.element.textContent = 'Loading lab…';
    (doc.getElementById('overlay') ?? doc.body).append(this.element);
  }

  /** @param {ProgressEvent} event */
  show(event) {
    this.element.textContent = event.lengthComputable && event.total
      ? `Loading lab… ${Math.floor((100 * event.loaded) / event.total)} %`
      : `Loading lab… ${(event.loaded / 1e6).toFixed(1)} MB`;
  }

  remove() {
    this.element.remove();
  }
}
