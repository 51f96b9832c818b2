/**
 * Leave asks first. On a phone the Leave button sits in the status line right
 * above the voice bar's Mute, so a thumb meant for Mute can land on it; leaving
 * frees the student's place and ends their call, so one stray tap would throw
 * them out of the practical mid-step. The strip under the status line says what
 * leaving means and offers Stay (focused, and what Escape does) beside Leave.
 *
 * @module leaving
 */

/**
 * Ask before leaving.
 * @param {HTMLButtonElement} button the status line's Leave
 * @param {HTMLElement} strip the question with its `[data-leave="yes"]` and `[data-leave="no"]` buttons
 * @param {() => void} leave what leaving does (the socket's leave)
 */
export function askBeforeLeaving(button, strip, leave) {
  const stay = () => {
    strip.hidden = true;
    button.setAttribute('aria-expanded', 'false');
  };
  button.setAttribute('aria-expanded', 'false');
  button.addEventListener('click', () => {
    strip.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    strip.querySelector('[data-leave="no"]').focus();
  });
  strip.addEventListener('click', (event) => {
    const answer = event.target.closest('button')?.dataset.leave;
    if (answer === 'yes') {
      stay();
      leave();
    } else if (answer === 'no') {
      stay();
      button.focus();
    }
  });
  strip.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    event.stopPropagation();
    stay();
    button.focus();
  });
}
