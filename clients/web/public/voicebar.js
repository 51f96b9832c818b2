/**
 * The voice controls over the 3D view: mute, push-to-talk, the call's state,
 * who is speaking now (a dot per speaker), and the notices a teacher causes
 * (forced mute, "speaking to everyone"). A page without a microphone says it
 * is listening only, and shows no Mute or push-to-talk: there is nothing to mute.
 *
 * It draws from the Voice object and the room state only; clicks go to Voice,
 * which tells the server.
 *
 * @module voicebar
 */

/** A speaker's level (RMS 0..1) above which they count as speaking: above the noise of an open mic. */
export const SPEAKING_LEVEL = 0.01;

const STATE_TEXT = { off: 'voice off', connecting: 'voice connecting…', connected: 'voice on', failed: 'voice unavailable' };
/** The connected call of a page with no microphone (none, refused, or not allowed outside https). */
const LISTEN_ONLY_TEXT = 'Listening only (no microphone)';

export class VoiceBar {
  /**
   * @param {Document} doc
   * @param {import('./voice.js').Voice} voice
   * @param {import('./state.js').RoomState} state
   */
  constructor(doc, voice, state) {
    this.voice = voice;
    this.state = state;
    this.root = doc.getElementById('voice-bar');
    this.mute = doc.getElementById('voice-mute');
    this.ptt = doc.getElementById('voice-ptt');
    this.talk = doc.getElementById('voice-talk');
    this.status = doc.getElementById('voice-status');
    this.broadcast = doc.getElementById('voice-broadcast');
    this.speakers = doc.getElementById('voice-speakers');
    this.mute.addEventListener('click', () => voice.setMuted(!voice.muted));
    this.ptt.addEventListener('change', () => voice.setPushToTalk(this.ptt.checked));
    // Held with a finger or the mouse: what V does on a keyboard. Leaving the button lets go.
    this.talk.addEventListener('pointerdown', (event) => {
      this.talk.setPointerCapture?.(event.pointerId);
      voice.hold(true);
    });
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) this.talk.addEventListener(type, () => voice.hold(false));
    this.talk.addEventListener('contextmenu', (event) => event.preventDefault()); // a long press is the talking, not a menu
    voice.addEventListener('change', () => this.render());
    voice.addEventListener('levels', () => this.renderSpeakers());
  }

  render() {
    const { voice } = this;
    this.root.hidden = false;
    const listenOnly = voice.listenOnly && voice.state === 'connected';
    this.status.textContent = listenOnly ? LISTEN_ONLY_TEXT : STATE_TEXT[voice.state];
    this.status.title = voice.listenOnly ? voice.noMic : '';
    this.status.dataset.state = voice.state;
    this.status.dataset.listenOnly = String(voice.listenOnly);
    this.mute.hidden = !voice.canSpeak || voice.listenOnly;
    this.ptt.parentElement.hidden = !voice.canSpeak || voice.listenOnly;
    this.talk.hidden = this.ptt.parentElement.hidden || !voice.pushToTalk || voice.forced;
    this.talk.setAttribute('aria-pressed', String(voice.talking));
    this.mute.disabled = voice.forced;
    this.mute.textContent = voice.forced ? 'Muted by the teacher' : voice.muted ? 'Unmute' : 'Mute';
    this.mute.setAttribute('aria-pressed', String(voice.muted || voice.forced));
    this.root.dataset.forced = String(voice.forced);
    const others = [...this.state.broadcast].filter((id) => id !== this.state.me?.id);
    this.broadcast.hidden = others.length === 0;
    this.renderSpeakers();
  }

  /** One dot and name per participant speaking now. */
  renderSpeakers() {
    const items = Object.entries(this.voice.levels)
      .filter(([id, level]) => level > SPEAKING_LEVEL && this.state.participants[id])
      .map(([id]) => {
        const item = document.createElement('li');
        item.dataset.participant = id;
        item.textContent = this.state.participants[id].name; // typed by students: never innerHTML
        item.title = item.textContent; // cut with an ellipsis when long
        return item;
      });
    this.speakers.replaceChildren(...items);
  }
}
