/**
 * The help line folds away to a "?" and opens again from it. On a phone its two lines sit
 * over the bench, and a student who knows the controls wants the view back; one who forgot
 * them taps "?". Folded or not is kept on this device (localStorage), so a student who folded
 * it does not find it open again at every join.
 *
 * @module help
 */

const KEY = 'amaliy.help.folded';

/**
 * Make the help line foldable with its button.
 * @param {Document} doc
 * @param {Storage|undefined} storage where the choice is kept (none: for this page only)
 */
export function foldableHelp(doc, storage = globalThis.localStorage) {
  const help = doc.getElementById('help');
  const button = doc.getElementById('help-fold');
  const show = (folded) => {
    help.dataset.folded = String(folded);
    button.textContent = folded ? '?' : '×';
    button.setAttribute('aria-expanded', String(!folded));
    button.title = folded ? 'Show how to walk, look and pick up' : 'Hide these tips';
    button.setAttribute('aria-label', button.title);
  };
  let folded = false;
  try {
    folded = storage?.getItem(KEY) === 'true';
  } catch {
    // storage refused (a private window): fold for this page only
  }
  show(folded);
  button.addEventListener('click', () => {
    folded = !folded;
    show(folded);
    try {
      storage?.setItem(KEY, String(folded));
    } catch {
      // as above
    }
  });
}
