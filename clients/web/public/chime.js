/**
 * Short sounds for the challenge, made on the spot with Web Audio: no audio
 * files to download or serve.
 *
 * A browser lets a page make sound only after the person has interacted with
 * it (a click, a key). The audio context is made at the first chime after
 * that, or at the first interaction after a chime was asked for too early; a
 * chime asked for before any interaction is counted and stays silent.
 *
 * @module chime
 */

/** Notes (Hz) and their length (s) of each sound: a rising pair for a step done, a falling one for a mistake. */
const SOUNDS = {
  step: [[659.25, 0.11], [987.77, 0.18]],
  finish: [[523.25, 0.1], [659.25, 0.1], [783.99, 0.1], [1046.5, 0.3]],
  mistake: [[392.0, 0.12], [311.13, 0.22]],
};
const VOLUME = 0.18;

export class Chime {
  constructor() {
    /** @type {AudioContext|null} */
    this.context = null;
    /** Chimes asked for, by sound (tests read these; whether they were audible depends on the browser). */
    this.played = { step: 0, finish: 0, mistake: 0 };
    const unlock = () => {
      if (this.context?.state === 'suspended') this.context.resume().catch(() => {});
    };
    addEventListener('pointerdown', unlock, { capture: true });
    addEventListener('keydown', unlock, { capture: true });
  }

  /** @param {'step'|'finish'|'mistake'} sound */
  play(sound) {
    this.played[sound] += 1;
    const context = this.audio();
    if (!context || context.state !== 'running') return;
    let at = context.currentTime + 0.01;
    for (const [frequency, length] of SOUNDS[sound]) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = 'sine';
      oscillator.frequency.value = frequency;
      // A quick rise and an exponential fall: a soft bell, no click at either end.
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(VOLUME, at + 0.012);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + length + 0.02);
      at += length * 0.8;
    }
  }

  /** @returns {AudioContext|null} the context, made once the page may make sound */
  audio() {
    if (!this.context) {
      const activated = navigator.userActivation?.hasBeenActive ?? true;
      if (!activated || typeof AudioContext === 'undefined') return null;
      this.context = new AudioContext();
    }
    return this.context;
  }
}
