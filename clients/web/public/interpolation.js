/**
 * Smooth motion from bursty updates.
 *
 * Poses and object transforms arrive in tick frames (30 per second by
 * default) with network jitter on top. Drawing each update as it arrives
 * makes remote people stutter, so updates are buffered and drawn a fixed
 * delay in the past, interpolating between the two samples around that time.
 *
 * Under protocol version 2 the server sends someone far away less often (a
 * few times a second) and a weak link gets everyone less often: a buffer
 * learns how far apart its samples come and is drawn that much further back,
 * so there is always a newer sample to move towards rather than a stop.
 *
 * @module interpolation
 */

import { Quaternion } from 'three';

/** How far behind the newest update things are drawn: about three ticks, to ride out jitter. */
export const RENDER_DELAY_MS = 100;

/** Floats per rigid transform in every layout: position xyz then quaternion xyzw. */
const GROUP = 7;
/** Upper bound on buffered samples, so a stalled renderer cannot grow the buffer forever. */
const MAX_SAMPLES = 64;
/** How fast the clock offset is allowed to creep up when the network gets slower (ms per sample). */
const OFFSET_RELAX_MS = 0.05;
/** Samples this far apart or more are a pause (nothing changed), not how often the sender is heard. */
const PAUSE_MS = 1000;
/** How much of each new spacing the estimate takes (the first one it takes whole): a few samples follow a change of rate. */
const SPACING_GAIN = 0.25;
/** Samples at the tick rate (30 Hz) are RENDER_DELAY_MS behind: one spacing plus this much jitter. */
const TICK_SPACING_MS = 1000 / 30;
const JITTER_MS = RENDER_DELAY_MS - TICK_SPACING_MS;

/**
 * Timed samples of one or more rigid transforms (`width` floats, a multiple of
 * 7), sampled at any time by linear position and spherical rotation blending.
 */
export class SampleBuffer {
  /** @param {number} width floats per sample */
  constructor(width) {
    this.width = width;
    /** @type {{time: number, values: Float32Array}[]} */
    this.samples = [];
    /** How far apart samples come, ms (a moving average of the gaps, pauses left out); null before two samples. */
    this.spacing = null;
  }

  /**
   * How much further back than RENDER_DELAY_MS to draw this buffer (ms): 0 for
   * samples at the tick rate, more for samples that come less often.
   */
  get lag() {
    return Math.max(0, (this.spacing ?? TICK_SPACING_MS) + JITTER_MS - RENDER_DELAY_MS);
  }

  /**
   * Add a sample. A sample not newer than the last replaces it, so a
   * duplicate (a full refresh resending the same pose) does no harm.
   * @param {number} time local milliseconds (performance.now() timeline)
   * @param {ArrayLike<number>} values
   */
  push(time, values) {
    const last = this.samples[this.samples.length - 1];
    if (last && time <= last.time) {
      last.values.set(values);
      return;
    }
    const gap = last ? time - last.time : PAUSE_MS;
    if (gap < PAUSE_MS) this.spacing = this.spacing === null ? gap : this.spacing + (gap - this.spacing) * SPACING_GAIN;
    this.samples.push({ time, values: Float32Array.from(values) });
    if (this.samples.length > MAX_SAMPLES) this.samples.shift();
  }

  /** Forget every sample: the next one is drawn as is (a teleport). */
  clear() {
    this.samples.length = 0;
  }

  get empty() {
    return this.samples.length === 0;
  }

  /**
   * The values at `time`, held at the ends rather than extrapolated (a guess
   * past the newest sample would overshoot whenever someone stops).
   * @param {number} time local milliseconds
   * @param {Float32Array} out receives `width` floats
   * @returns {Float32Array} out
   */
  sample(time, out) {
    const samples = this.samples;
    // Drop what is no longer needed: keep one sample at or before `time`.
    while (samples.length > 2 && samples[1].time <= time) samples.shift();
    const [a, b] = samples;
    if (!b || time <= a.time) {
      out.set(a.values);
      return out;
    }
    if (time >= b.time) {
      out.set(b.values);
      return out;
    }
    const t = (time - a.time) / (b.time - a.time);
    for (let g = 0; g < this.width; g += GROUP) {
      for (let i = 0; i < 3; i++) out[g + i] = a.values[g + i] + (b.values[g + i] - a.values[g + i]) * t;
      Quaternion.slerpFlat(out, g + 3, a.values, g + 3, b.values, g + 3, t);
    }
    return out;
  }
}

/**
 * Maps a sender's u32 millisecond stamps onto this page's clock.
 *
 * A pose carries the time its sender sampled it; spacing samples by those
 * stamps rather than by arrival removes the network's jitter. The offset
 * between the two clocks is estimated as the smallest (arrival - stamp) seen,
 * the sample that travelled fastest, and allowed to creep up slowly so a
 * network that gets slower does not leave us drawing stale poses forever.
 */
export class SenderClock {
  constructor() {
    this.reset();
  }

  reset() {
    this.lastStamp = null;
    this.unwrapped = 0;
    this.offset = 0;
  }

  /**
   * @param {number} stamp the sender's u32 stamp
   * @param {number} arrival local performance.now() when it arrived
   * @returns {number|null} the sample's local time, or null for a stamp seen before
   *   (after a jump backwards, a sender that restarted, the clock starts over)
   */
  toLocal(stamp, arrival) {
    if (this.lastStamp !== null) {
      const step = (stamp - this.lastStamp) | 0; // signed difference survives the u32 wrap
      if (step === 0) return null;
      if (step < 0) this.reset();
    }
    if (this.lastStamp === null) {
      this.unwrapped = 0;
      this.offset = arrival;
    } else {
      this.unwrapped += (stamp - this.lastStamp) | 0;
      this.offset = Math.min(this.offset + OFFSET_RELAX_MS, arrival - this.unwrapped);
    }
    this.lastStamp = stamp;
    return this.unwrapped + this.offset;
  }
}
