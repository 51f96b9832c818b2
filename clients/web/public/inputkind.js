/**
 * Which kind of input the person is using now, for whatever shows per device
 * (the stick, help text): `document.body.dataset.input` is `'touch'` (a phone
 * or tablet), `'mouse'` (a desktop, keyboard included) or `'xr'` (a headset
 * or AR session is presenting). CSS reads it as `body[data-input="touch"]`.
 *
 * It starts from what the screen's main pointer is (a coarse one is a
 * finger), follows the last pointer used (a laptop with a touch screen
 * switches both ways), and is `'xr'` from a session's start to its end.
 *
 * @module inputkind
 */

/**
 * Keep `document.body.dataset.input` up to date.
 * @param {import('three').WebGLRenderer} renderer tells when an XR session starts and ends
 */
export function watchInputKind(renderer) {
  let kind = matchMedia('(pointer: coarse)').matches ? 'touch' : 'mouse';
  const show = () => {
    document.body.dataset.input = renderer.xr.isPresenting ? 'xr' : kind;
  };
  addEventListener(
    'pointerdown',
    (event) => {
      kind = event.pointerType === 'mouse' ? 'mouse' : 'touch'; // a pen draws on a touch screen
      show();
    },
    { capture: true, passive: true },
  );
  renderer.xr.addEventListener('sessionstart', show);
  renderer.xr.addEventListener('sessionend', show);
  show();
}
