/**
 * Voice: this page's WebRTC call with the server, which mixes the room and
 * sends back one stereo stream (docs/protocol.md §14).
 *
 * Signaling rides on the room socket: one complete offer (ICE gathering
 * finished, no trickle), one complete answer. No STUN/TURN servers: schools
 * run this on a LAN without internet, and the server's answer already lists
 * its own addresses. A call ends with the socket, so every (re)join offers
 * again; a call the server drops (`rtc_closed`, `media_unavailable`) is
 * offered again after a pause, a bounded number of times.
 *
 * Mute is both local (the track is disabled, so nothing leaves the page) and
 * told to the server (so the mix and everyone's speaking indicators agree).
 *
 * Nobody is left out of the mix for want of a microphone: with none, one the
 * person refused, or a page opened at a plain-http LAN address (no
 * `navigator.mediaDevices` outside a secure context), the call still goes,
 * receiving only (a `recvonly` audio section, which the server answers
 * `sendonly`), and the voice bar says "Listening only". The microphone is asked
 * for once per page, so a refusal is not asked again on every rejoin.
 *
 * @module voice
 */

import { messages } from './protocol.js';

/** Pause before offering again after the server dropped the call, ms. */
const RETRY_MS = 3000;
/** Offers in a row that may fail before voice gives up until the next join (the server allows a burst of 4). */
const MAX_RETRIES = 3;
/** The key held for push-to-talk. */
const PTT_KEY = 'KeyV';
/** voice_levels come 5 times a second only while anyone speaks: after this long without one, all are silent, ms. */
const LEVELS_STALE_MS = 1000;

/** @typedef {'off'|'connecting'|'connected'|'failed'} VoiceState */

export class Voice extends EventTarget {
  /**
   * @param {import('./connection.js').Connection} connection
   * @param {import('./state.js').RoomState} state
   * @param {(text: string, kind?: 'info'|'error') => void} toast
   */
  constructor(connection, state, toast) {
    super();
    this.connection = connection;
    this.room = state;
    this.toast = toast;
    /** @type {VoiceState} */
    this.state = 'off';
    /** What the person chose; the track is live only when this is false (or PTT is held). */
    this.muted = false;
    /** Push-to-talk mode: muted unless V is held. */
    this.pushToTalk = false;
    /** @type {Record<string, number>} newest voice_levels by participant id */
    this.levels = {};
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {MediaStreamTrack|null} */
    this.mic = null;
    /** Why this page has no microphone (a sentence), or '' while it has one or has not asked yet. */
    this.noMic = '';
    /** @type {Promise<void>|null} the one request for the microphone (every call waits for it) */
    this.micRequest = null;
    this.retries = 0;
    this.retryTimer = 0;
    this.levelsTimer = 0;
    /** Push-to-talk key held now. */
    this.talking = false;
    this.audio = document.createElement('audio');
    this.audio.autoplay = true;
    document.body.append(this.audio);

    connection.addEventListener('message', ({ detail }) => this.receive(detail));
    connection.addEventListener('servererror', ({ detail }) => {
      if (detail.code === 'media_unavailable') this.dropped();
    });
    addEventListener('keydown', (event) => this.pushKey(event, true));
    addEventListener('keyup', (event) => this.pushKey(event, false));
  }

  /** May this page send its voice (students and teachers; observers only listen)? */
  get canSpeak() {
    return this.room.me?.role !== 'observer';
  }

  /** A speaker's page without a microphone: its call only receives. */
  get listenOnly() {
    return this.canSpeak && this.noMic !== '';
  }

  /** Forced mute by a teacher: this page may not unmute. */
  get forced() {
    return Boolean(this.room.me && this.room.participants[this.room.me.id]?.forced_muted);
  }

  /** Start (or restart) the call; called on every welcome, since a call ends with its socket. */
  async start() {
    clearTimeout(this.retryTimer);
    this.hangUp();
    this.setState('connecting');
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    try {
      if (this.canSpeak) await (this.micRequest ??= this.askMicrophone());
      if (this.pc !== pc) return; // replaced while the person was asked
      if (this.canSpeak && this.mic) {
        pc.addTransceiver(this.mic, { direction: 'sendrecv' });
      } else {
        pc.addTransceiver('audio', { direction: 'recvonly' });
      }
      pc.ontrack = (event) => this.play(new MediaStream([event.track]));
      pc.onconnectionstatechange = () => {
        if (this.pc !== pc) return;
        if (pc.connectionState === 'connected') {
          this.retries = 0;
          this.setState('connected');
        } else if (pc.connectionState === 'failed') {
          this.dropped();
        }
      };
      await pc.setLocalDescription();
      await iceGathered(pc);
      if (this.pc !== pc) return; // replaced while gathering
      this.applyMute();
      this.connection.send(messages.rtcOffer(pc.localDescription.sdp));
    } catch (error) {
      if (this.pc !== pc) return;
      this.hangUp();
      this.setState('failed');
      this.toast(`Voice is off: ${error.message}`, 'error');
    }
  }

  /** Ask for the microphone, once per page; without one, say why and listen only. */
  async askMicrophone() {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.noMic = 'This page cannot use a microphone here (it needs https or localhost).';
    } else {
      try {
        this.mic = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0] ?? null;
        if (!this.mic) this.noMic = 'No microphone was found.';
      } catch (error) {
        this.noMic = error.name === 'NotAllowedError' ? 'The microphone was not allowed.' : 'No microphone was found.';
      }
    }
    if (this.noMic) this.toast(`${this.noMic} You can listen; the others cannot hear you.`, 'info');
  }

  /** @param {object} message an unsequenced server message */
  async receive(message) {
    switch (message.type) {
      case 'rtc_answer': {
        const pc = this.pc;
        if (pc?.signalingState !== 'have-local-offer') break; // an answer to a call we already replaced
        try {
          await pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        } catch (error) {
          console.warn('The server\'s voice answer did not apply:', error);
          if (this.pc === pc) this.dropped();
        }
        break;
      }
      case 'rtc_closed':
        this.dropped();
        break;
      case 'voice_levels':
        this.setLevels(message.levels);
        clearTimeout(this.levelsTimer);
        this.levelsTimer = setTimeout(() => this.setLevels({}), LEVELS_STALE_MS);
        break;
      default:
        break;
    }
  }

  /** @param {Record<string, number>} levels newest level by participant id */
  setLevels(levels) {
    this.levels = levels;
    this.emit('levels');
  }

  /** The server (or the network) ended the call: offer again after a pause, a few times. */
  dropped() {
    if (!this.pc) return;
    this.hangUp();
    if (this.retries >= MAX_RETRIES) {
      this.setState('failed');
      this.toast('Voice is unavailable right now.', 'error');
      return;
    }
    this.retries += 1;
    this.setState('connecting');
    this.toast('Voice dropped; reconnecting…', 'error');
    this.retryTimer = setTimeout(() => this.start(), RETRY_MS);
  }

  /** Close the peer connection, keeping the microphone for the next call. */
  hangUp() {
    if (!this.pc) return;
    const pc = this.pc;
    this.pc = null;
    pc.close();
    this.setState('off');
  }

  /**
   * Play the server's mix. Autoplay with sound may be refused until the
   * person has interacted with the page; then the next click starts it.
   * @param {MediaStream} stream
   */
  play(stream) {
    this.audio.srcObject = stream;
    this.audio.play().catch(() => {
      this.toast('Click anywhere to hear the others.');
      addEventListener('click', () => this.audio.play().catch(() => {}), { once: true });
    });
  }

  /** @param {boolean} muted what the person chose (ignored while a teacher holds them muted) */
  setMuted(muted) {
    if (!muted && this.forced) {
      this.toast('The teacher has muted you.', 'error');
      return;
    }
    this.muted = muted;
    this.applyMute();
  }

  /** @param {boolean} on push-to-talk mode: silent unless V is held */
  setPushToTalk(on) {
    this.pushToTalk = on;
    this.applyMute();
  }

  pushKey(event, down) {
    if (event.code !== PTT_KEY || event.repeat || event.target.closest?.('input, textarea')) return;
    this.hold(down);
  }

  /** @param {boolean} down push-to-talk held (V, or the voice bar's Talk button on a touch screen) */
  hold(down) {
    if (!this.pushToTalk || this.talking === down) return;
    this.talking = down;
    this.applyMute();
  }

  /** Is the microphone silent, all things considered (none at all, choice, push-to-talk, teacher)? */
  get silent() {
    return this.listenOnly || this.muted || this.forced || (this.pushToTalk && !this.talking);
  }

  /**
   * Make the track and the server agree with `silent`. Called after every
   * change on either side, including `muted` events about this page: when a
   * teacher lifts a forced mute, a person who had also muted themselves is
   * told to the server as muted again.
   */
  applyMute() {
    const silent = this.silent;
    if (this.mic) this.mic.enabled = !silent;
    const told = this.room.me && this.room.participants[this.room.me.id]?.muted;
    if (this.canSpeak && this.connection.state === 'connected' && told !== silent) {
      this.connection.send(messages.mute(silent));
    }
    this.emit('change');
  }

  /** inbound-rtp audio stats of the current call, or null without one (for tests and diagnostics). */
  async stats() {
    if (!this.pc) return null;
    for (const report of (await this.pc.getStats()).values()) {
      if (report.type === 'inbound-rtp' && report.kind === 'audio') {
        const { packetsReceived, audioLevel, totalAudioEnergy } = report;
        return { packetsReceived, audioLevel, totalAudioEnergy };
      }
    }
    return null;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.emit('change');
  }

  emit(type) {
    this.dispatchEvent(new Event(type));
  }
}

/** @param {RTCPeerConnection} pc @returns {Promise<void>} once every local candidate is in the description */
function iceGathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
}
