/**
 * A practical's page once signed in: the 3D lab, the room, the HUD and the
 * teacher panel kept in step with what the room says. Everything here needs
 * three.js (about 2 MB before compression), so main.js loads this module
 * while the join form is already on screen: on a slow link a student types
 * their name while it arrives.
 *
 * This module only wires the pieces together; each piece lives in the module
 * named for what it does. It also exposes `window.amaliy`, a small read-mostly
 * view of the page for automated tests (tests/browser) and for poking at a
 * live class from the devtools console.
 *
 * @module classroom
 */

import { Color, DirectionalLight, HemisphereLight, NeutralToneMapping, Scene, WebGLRenderer } from 'three';

import { Avatars } from './avatars.js';
import { ConfirmStrip } from './confirm.js';
import { Connection } from './connection.js';
import { CloseCode } from './protocol.js';
import { DesktopControls } from './controls.js';
import { PreviewDebug } from './debug.js';
import { foldableHelp } from './help.js';
import { Holding } from './holding.js';
import { Hover } from './hover.js';
import { watchInputKind } from './inputkind.js';
import { RENDER_DELAY_MS } from './interpolation.js';
import { KeyboardControls } from './keyboard.js';
import { signOut } from './landing.js';
import { LinkBadge } from './linkbadge.js';
import { Nearby } from './nearby.js';
import { Placing } from './placing.js';
import { Pouring } from './pouring.js';
import { Practical } from './practical.js';
import { ReconnectBanner } from './reconnecting.js';
import { Rig } from './rig.js';
import { Lab } from './scene.js';
import { RoomState } from './state.js';
import { Stick } from './stick.js';
import { Sync } from './sync.js';
import { TeacherPanel } from './teacher.js';
import { Voice } from './voice.js';
import { VoiceBar } from './voicebar.js';
import { XR } from './xr.js';

const SKY = 0xcfe0ec;

/** Error codes a refused join sends just before its final close: the notice says it, once; no toast. */
const JOIN_REFUSALS = new Set(['room_locked', 'room_full', 'session_ended', 'forbidden', 'unauthorized']);
/** Final closes after which "Try again" can help: the teacher may unlock, make room, or let a removed student back. */
const RETRYABLE = new Set([CloseCode.KICKED, CloseCode.ROOM_FULL, CloseCode.ROOM_LOCKED]);

/**
 * Build the page for one practical and join it.
 * @param {import('./connection.js').Credentials} credentials
 * @param {import('./hud.js').Hud} hud
 */
export async function enter(credentials, hud) {
  const renderer = new WebGLRenderer({ antialias: true, alpha: true });
  renderer.setPixelRatio(Math.min(devicePixelRatio, 2));
  renderer.toneMapping = NeutralToneMapping; // keeps white benches from burning out
  document.getElementById('viewport').append(renderer.domElement);

  const scene = new Scene();
  scene.background = new Color(SKY);
  // Ingest gives every mesh a matte material, so plain lights suffice (no environment map
  // to prefilter: that costs seconds on a software renderer).
  scene.add(new HemisphereLight(0xffffff, 0x8d8d80, 2.0));
  const sun = new DirectionalLight(0xffffff, 1.2);
  sun.position.set(2, 5, 3);
  scene.add(sun);

  const rig = new Rig();
  scene.add(rig.group);
  const resize = () => {
    renderer.setSize(innerWidth, innerHeight);
    rig.fit(innerWidth, innerHeight);
  };
  resize();
  addEventListener('resize', resize);

  const lab = await Lab.load(scene, credentials.glbUrl);
  const state = new RoomState();
  const connection = new Connection(credentials);
  new ReconnectBanner(document, connection, hud);
  const linkBadge = new LinkBadge(document.getElementById('link-badge'), connection);
  const holding = new Holding(lab, state, connection, rig.holdPoint, new Placing(scene, lab, state, () => rig.group.scale.x));
  const avatars = new Avatars(scene);
  const sync = new Sync(connection, state, rig, holding);
  const teacher = new TeacherPanel(document.getElementById('teacher-panel'), state, connection, rig);
  const voice = new Voice(connection, state, (text, kind) => hud.toast(text, kind));
  const voiceBar = new VoiceBar(document, voice, state);
  voice.addEventListener('levels', () => {
    avatars.showLevels(voice.levels);
    teacher.showLevels(voice.levels);
  });
  const hover = new Hover(renderer, rig.camera, lab, state, holding, document.getElementById('overlay'));
  const practical = new Practical({ doc: document, scene, lab, state, connection, hud, hover, holding, rig });
  const debug = new PreviewDebug(document.getElementById('overlay'), credentials.token, () => state.me?.id); // only on a preview link
  const controls = new DesktopControls(rig, renderer.domElement, renderer, lab, holding, hover);
  const nearby = new Nearby(rig, lab, state, holding, document.getElementById('nearby'));
  controls.addMotion(new KeyboardControls(renderer.domElement, rig, controls, holding, nearby));
  controls.addMotion(new Stick(document.getElementById('overlay')));
  const pouring = new Pouring(document.getElementById('pour'), rig, controls, holding);
  watchInputKind(renderer);
  foldableHelp(document);
  const xr = new XR(renderer, scene, rig, lab, holding, hover, (text) => hud.toast(text, 'error'), practical.vrPanel, nearby);
  xr.offerSessions(document.getElementById('xr-buttons'), document.getElementById('overlay'));
  // Leave asks first: on a phone it sits just above Mute, and leaving ends the student's place and call.
  const leaving = new ConfirmStrip(document.getElementById('leave-confirm'));
  document.getElementById('leave').addEventListener('click', () =>
    leaving.ask('Leave the practical? Your place and your call end; you can join again with the same link.', 'Leave', () => connection.leave()),
  );

  const refresh = () => {
    hud.update({
      title: credentials.title,
      name: state.me ? `${state.me.name} (${state.me.role})` : '',
      state: connection.state,
      reconnecting: connection.reconnect !== null,
      count: Object.keys(state.participants).length,
      locked: state.locked,
      frozen: state.frozen,
    });
    teacher.render();
    voiceBar.render();
  };

  let everIn = false;
  connection.addEventListener('welcome', ({ detail: welcome }) => {
    everIn = true;
    hud.clearNotice(); // back in after "Try again"
    state.applyWelcome(welcome);
    if (welcome.snapshot) {
      lab.setObjects(state.objects);
      avatars.retain(new Set(Object.keys(state.participants)));
    }
    holding.keepOnly(welcome.held);
    sync.rejoined(welcome);
    if (state.isTeacher()) teacher.show();
    practical.welcome();
    refresh();
    voice.start(); // a call ends with its socket: every (re)join offers again
  });

  connection.addEventListener('event', ({ detail: event }) => {
    const who = state.participants[event.participant]?.name ?? 'Someone'; // read before `left` drops them
    state.applyEvent(event);
    const mine = event.participant === state.me.id;
    switch (event.type) {
      case 'joined':
        if (event.participant.id !== state.me.id) hud.toast(`${event.participant.name} joined.`);
        break;
      case 'left':
        avatars.remove(event.participant);
        if (!mine) hud.toast(event.reason === 'kicked' ? `${who} was removed by the teacher.` : `${who} left.`);
        break;
      case 'presence':
        avatars.setConnected(event.participant, event.connected);
        break;
      case 'grabbed':
        if (mine) holding.granted(event.object);
        break;
      case 'released':
        if (mine) holding.forget(event.object);
        lab.snap(event.object, event.transform);
        if (mine && event.reason === 'lease') hud.toast(`${state.objects[event.object].title} slipped from your hand: its hold ran out.`);
        break;
      case 'locked':
        hud.toast(event.locked ? 'The teacher locked the practical: nobody new can join.' : 'The practical is open to join again.');
        break;
      case 'frozen':
        hud.toast(event.frozen ? 'The teacher paused interaction.' : 'Interaction is back on.');
        break;
      case 'summoned':
        if (event.by !== state.me.id) {
          rig.gatherAt(event.position, state.me.slot);
          hud.toast('The teacher called everyone over.');
        }
        break;
      case 'reset':
        holding.keepOnly([]);
        lab.setObjects(state.objects);
        hud.toast('The teacher reset the lab.');
        break;
      case 'ended':
        hud.notice('This practical has ended. Thank you for taking part!');
        voice.hangUp();
        break;
      case 'muted':
        if (mine) {
          voice.applyMute();
          if (event.by !== state.me.id) hud.toast(event.muted ? 'The teacher muted you.' : 'The teacher let you speak again.');
        }
        break;
      case 'broadcast':
        if (event.by !== state.me.id) hud.toast(event.on ? 'The teacher is speaking to everyone.' : 'The teacher stopped speaking to everyone.');
        break;
      default:
        break;
    }
    practical.event(event);
    refresh();
  });

  connection.addEventListener('tick', ({ detail: frame }) => {
    const arrival = performance.now();
    state.applyTick(frame);
    for (const record of frame.poses) {
      const id = state.ownerOf(record.slot);
      if (id === null) continue;
      if (id !== state.me.id) {
        avatars.push(state.participants[id], record.stamp, record.pose, arrival);
      } else if (!rig.placed) {
        rig.placeAt(record.pose); // our spawn point; after that we move ourselves
      }
    }
    for (const record of frame.objects) lab.push(state.objectIds[record.index], record.transform, arrival);
  });

  connection.addEventListener('servererror', ({ detail: error }) => {
    if (connection.state !== 'connected' && JOIN_REFUSALS.has(error.code)) return; // the close's notice says it
    if (practical.error(error)) return; // said in its own place (a hint's cooldown counts down in the hint panel)
    hud.toast(error.message, 'error', error.code);
  });
  connection.addEventListener('dropped', ({ detail: drop }) => {
    voice.hangUp(); // the server ends the call with the socket; the next welcome offers again
    if (drop.final) {
      // A practical that refused entry at the door (an ended one too) may take us on a later try.
      const endedAtDoor = drop.code === CloseCode.SESSION_ENDED && !everIn;
      const retryable = RETRYABLE.has(drop.code) || endedAtDoor;
      // The tab keeps its token for a retry or a reload while one can help; an ended practical is
      // forgotten at once, so a reload shows the join and sign-in forms ("Try again" still has the token).
      if (!retryable || endedAtDoor) signOut();
      hud.notice(drop.text, retryable ? () => connection.retry() : null);
    }
    refresh(); // a first try that failed stays 'connecting': the state event does not come
  });
  connection.addEventListener('state', refresh);

  let last = performance.now();
  renderer.setAnimationLoop(() => {
    const now = performance.now();
    controls.update(Math.min((now - last) / 1000, 0.1));
    last = now;
    pouring.update();
    holding.update();
    lab.render(now - RENDER_DELAY_MS);
    hover.update();
    nearby.update(now);
    practical.frame(now);
    avatars.render(now - RENDER_DELAY_MS);
    renderer.render(scene, rig.camera);
  });

  window.amaliy = {
    get state() {
      return connection.state;
    },
    /** Getting back in after a drop (the banner is up, interaction is frozen) until the next welcome. */
    get reconnecting() {
      return connection.reconnect !== null;
    },
    /** The link badge's word (good, reduced, weak, no updates), or null while it is hidden; the protocol version in use. */
    get link() {
      return { badge: linkBadge.text, protocol: connection.protocol };
    },
    get me() {
      return state.me;
    },
    get participants() {
      return state.participants;
    },
    /** Where each remote avatar's head is drawn now (interpolated), by participant id. */
    get avatars() {
      return avatars.positions();
    },
    /** Each remote avatar's speaking glow (0 silent .. 1 loud), by participant id. */
    get glows() {
      return avatars.glows();
    },
    /** Each object's holder (participant id or null) and position as the room last said. */
    get objects() {
      return Object.fromEntries(
        Object.values(state.objects).map((o) => [o.id, { holder: o.holder, position: o.transform.slice(0, 3) }]),
      );
    },
    /** The voice call: its state, whether the microphone is silent (and whether by the teacher), and the newest speaking levels by participant id. */
    get voice() {
      return { state: voice.state, muted: voice.silent, forced: voice.forced, levels: voice.levels };
    },
    /** inbound-rtp audio stats of the call ({packetsReceived, audioLevel, totalAudioEnergy}), or null. */
    voiceStats: () => voice.stats(),
    moveBy: (dx, dy, dz) => rig.moveBy(dx, dy, dz),
    /** Turn to face someone's avatar (as a student would with the mouse). */
    lookAt: (id) => {
      const head = avatars.positions()[id]?.position;
      if (head) rig.faceTowards(head);
    },
    grab: (id) => holding.grab(id),
    release: (id) => holding.release(id),
    /** Whether what the hand holds is being poured (the Pour button or P held). */
    get pouring() {
      return pouring.pouring;
    },
    /** The objects this page draws in the hand. */
    get held() {
      return holding.ids();
    },
    /** The floor point under our own head. */
    get position() {
      return rig.floorPoint();
    },
    /** The view: its top-to-bottom field of view (degrees) and how far a finger's drag turns it (radians per pixel). */
    get view() {
      return { fov: rig.camera.fov, touchLookSpeed: controls.touchLookSpeed(renderer.domElement) };
    },
    /** Where a lab-space point is on the page, in CSS pixels (to point the mouse at it), or null. */
    screenPoint: (x, y, z) => hover.screenPoint(x, y, z),
    /** The equipment highlighted under the pointer (or a controller), or null. */
    get hovered() {
      return hover.id;
    },
    /** Ghosts of what we hold: where each would land now, and the snap point (`objectId/snapId`) it would take. */
    get ghosts() {
      return holding.placing.ghosts();
    },
  };
  Object.defineProperties(window.amaliy, Object.getOwnPropertyDescriptors(practical.hooks()));
  Object.defineProperties(window.amaliy, Object.getOwnPropertyDescriptors(debug.hooks()));
  Object.defineProperties(window.amaliy, Object.getOwnPropertyDescriptors(xr.hooks()));

  refresh();
  connection.open();
}

