/**
 * The voice controls over the 3D view: mute, push-to-talk, the call's state,
 * who is speaking now (a dot per speaker), and the notices a teacher causes
 * (forced mute, "speaking to everyone").
 *
 * It draws from the Voice object and the room state only; clicks go to Voice,
 * which tells the server.
 *
 * @module voicebar
 */

/** A speaker's level (RMS 0..1) above which they count as speaking: above the noise of an open mic. */
export const SPEAKING_LEVEL = 0.01;

const STATE_TEXT = { off: 'voice off', connecting: 'voice connecting…', connected: 'voice on', failed: 'voice unavailable' };

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
    this.status = doc.getElementById('voice-status');
    this.broadcast = doc.getElementById('voice-broadcast');
    this.speakers = doc.getElementById('voice-speakers');
    this.mute.addEventListener('click', () => voice.setMuted(!voice.muted));
    this.ptt.addEventListener('change', () => voice.setPushToTalk(this.ptt.checked));
    voice.addEventListener('change', () => this.render());
    voice.addEventListener('levels', () => this.renderSpeakers());
  }

  render() {
    const { voice } = this;
    this.root.hidden = false;
    this.status.textContent = STATE_TEXT[voice.state];
    this.status.dataset.state = voice.state;
    this.mute.hidden = !voice.canSpeak;
    this.ptt.parentElement.hidden = !voice.canSpeak;
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
        return item;
      });
    this.speakers.replaceChildren(...items);
  }
}
