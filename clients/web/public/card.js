/**
 * The learner part of the summary card: what the practical earned this student.
 *
 * A student of a course (signed in with their personal code) sees the XP it
 * gained them, their level with a bar to the next one ("Level up!" when they
 * just reached it), the badges earned in it, each downloadable as its signed
 * Open Badges 3.0 credential (a VC-JWT file), and their place on the course
 * ladder. Everyone, guests too, sees the practical's station ladder. The XP,
 * level and badges are `root`, a column of the summary of its own; the
 * ladders are `ladders`, which the summary puts under the station's own
 * results. Both
 * ladders show only what the course's ladder mode lets a student see: their
 * neighbours without names (`relative`), everyone with names (`full`), or
 * nothing (`off`); the server decides, this module draws what it sends.
 *
 * All of it is one GET /api/me/card with the tab's room token; the server
 * writes the practical's records before it answers, so one fetch after the
 * finish is enough. A failed fetch leaves a quiet line (and "Try again"),
 * never a broken card. Names and badge texts are set as text, never as HTML.
 *
 * @module card
 */

import { saveResponse } from './format.js';

/** What the student reads while the card is fetched, and when it could not be: a course student's, a guest's. */
const LOADING = { course: 'Adding up your XP and badges…', guest: 'Loading the ladder…' };
const FAILED = { course: 'Your XP and badges could not be loaded just now.', guest: 'The ladder could not be loaded just now.' };

/**
 * A gap on a ladder (their XP or score minus mine) in words: "20 ahead", "5 behind".
 * @param {number|undefined|null} gap
 */
export function gapText(gap) {
  if (gap === undefined || gap === null) return '';
  if (gap > 0) return `${gap} ahead`;
  if (gap < 0) return `${-gap} behind`;
  return 'same as you';
}


/** An element with a class and text (text only: never HTML). */
function el(tag, className = '', text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** One ladder row: "#3 · 120 XP · 20 ahead", the student's own marked "You". */
function ladderRow(entry, parts) {
  const row = el('li');
  row.dataset.rank = String(entry.rank);
  if (entry.you) row.dataset.you = 'true';
  const shown = [`#${entry.rank}`, ...parts.filter(Boolean)];
  shown.forEach((part, i) => {
    if (i) row.append(el('span', 'sep', ' · '));
    row.append(el('span', i === 0 ? 'rank' : '', part));
  });
  if (entry.you) {
    row.append(el('span', 'sep', ' · '));
    row.append(el('strong', 'you', 'You'));
  }
  return row;
}

export class LearnerCard {
  /**
   * @param {() => {token: string, course?: {id: string}|null}|null} room this tab's credentials
   * (landing.js `roomCredentials`): the token to fetch with, and whether it is a course student's
   */
  constructor(room) {
    this.room = room;
    /** The course student's XP, level and badges: a column of its own on a wide card. */
    this.root = el('section', 'learner-card');
    this.root.setAttribute('aria-label', 'What you earned');
    this.root.hidden = true;
    /** The course ladder (a course student's) and the practical's station ladder (everyone's). */
    this.ladders = el('div', 'card-ladders');
    this.ladders.hidden = true;
    /** Which finish the card is for (the station's `finished` time): a new finish fetches again. */
    this.key = undefined;
    /** The card as the server sent it, once it came (for tests and the devtools console). */
    this.card = null;
  }

  /** 'loading' | 'shown' | 'failed' (also the root's `data-state`, for tests). */
  get state() {
    return this.root.dataset.state ?? null;
  }

  /**
   * Show the card for one finish: fetched the first time, kept after that (the summary
   * redraws on the score that follows the finish; that needs no second fetch).
   * @param {unknown} key what tells one finish from another
   */
  load(key) {
    if (key === this.key && this.state !== 'failed') return;
    this.key = key;
    this.fetch(key);
  }

  async fetch(key) {
    const room = this.room();
    if (!room?.token) return;
    this.card = null;
    const who = room.course ? 'course' : 'guest';
    this.quiet('loading', el('p', 'card-quiet', LOADING[who]), room);
    let card;
    try {
      const response = await fetch('/api/me/card', { headers: { Authorization: `Bearer ${room.token}` }, cache: 'no-store' });
      if (!response.ok) throw new Error(`GET /api/me/card answered ${response.status}`);
      card = await response.json();
    } catch (error) {
      if (key !== this.key) return;
      console.warn(error);
      const line = el('p', 'card-quiet', `${FAILED[who]} `);
      const again = el('button', 'switch', 'Try again');
      again.type = 'button';
      again.addEventListener('click', () => this.fetch(this.key));
      line.append(again);
      this.quiet('failed', line, room);
      return;
    }
    if (key !== this.key) return; // a newer finish is loading
    this.card = card;
    this.render(card);
  }

  /** A line instead of the card (loading, failed): where the card will be, so nothing jumps. */
  quiet(state, line, room) {
    this.root.dataset.state = state;
    const course = Boolean(room.course);
    this.root.replaceChildren(...(course ? [line] : []));
    this.root.hidden = !course;
    this.ladders.replaceChildren(...(course ? [] : [line]));
    this.ladders.hidden = course;
  }

  /** Draw a card from GET /api/me/card. */
  render(card) {
    const earned = card.course ? [this.level(card), this.badges(card)].filter(Boolean) : [];
    this.root.replaceChildren(...earned);
    this.root.hidden = earned.length === 0;
    const ladders = [card.course ? this.courseLadder(card.ladder) : null, this.stationLadder(card.practical_ladder)].filter(Boolean);
    this.ladders.replaceChildren(...ladders);
    this.ladders.hidden = ladders.length === 0;
    this.root.dataset.state = 'shown';
  }

  /** "+N XP", the level ("Level up!" when just reached) and a bar to the next one. */
  level(card) {
    const box = el('div', 'card-level');
    const top = el('p', 'card-xp-line');
    top.append(el('strong', 'card-xp', `+${card.xp_gained} XP`));
    const level = el('span', 'card-level-name', `Level ${card.level}`);
    if (card.level_up) top.append(el('strong', 'level-up', 'Level up!'));
    top.append(level);
    const bar = el('div', 'bar');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-label', 'XP towards the next level');
    const fill = el('div', 'fill');
    const next = card.next_level_xp;
    let words;
    if (next === null || next === undefined) {
      fill.style.width = '100%';
      words = `Top level · ${card.xp} XP in all`;
    } else {
      const span = Math.max(1, next - card.level_xp);
      const into = Math.min(span, Math.max(0, card.xp - card.level_xp));
      fill.style.width = `${(100 * into) / span}%`;
      bar.setAttribute('aria-valuemin', String(card.level_xp));
      bar.setAttribute('aria-valuemax', String(next));
      bar.setAttribute('aria-valuenow', String(card.xp));
      words = `${card.to_next} XP to level ${card.level + 1} · ${card.xp} XP in all`;
    }
    bar.append(fill);
    box.append(top, bar, el('p', 'card-next', words));
    return box;
  }

  /** The badges this practical earned, each with its criteria and a Download button; none: nothing. */
  badges(card) {
    if (!card.badges?.length) return null;
    const box = el('div', 'card-badges');
    box.append(el('h3', '', card.badges.length === 1 ? 'Badge earned' : 'Badges earned'));
    const list = el('ul');
    for (const badge of card.badges) {
      const item = el('li');
      item.dataset.badge = badge.id;
      const name = el('strong', 'badge-name', badge.name);
      if (badge.description) name.title = badge.description;
      const criteria = el('span', 'badge-criteria', badge.criteria || badge.description || '');
      const button = el('button', '', 'Download');
      button.type = 'button';
      button.setAttribute('aria-label', `Download the ${badge.name} badge`);
      const problem = el('p', 'badge-error');
      problem.setAttribute('role', 'alert');
      button.addEventListener('click', () => this.download(badge, button, problem));
      item.append(name, button, criteria, problem);
      list.append(item);
    }
    box.append(list);
    return box;
  }

  /** Fetch the badge's signed credential with the room token and save it as a file. */
  async download(badge, button, problem) {
    button.disabled = true;
    problem.textContent = '';
    try {
      const response = await fetch(`/api/me/badges/${encodeURIComponent(badge.id)}`, {
        headers: { Authorization: `Bearer ${this.room()?.token}` },
        cache: 'no-store',
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(typeof body.detail === 'string' ? body.detail : `The server answered ${response.status}.`);
      }
      await saveResponse(response, `amaliy-badge-${badge.id}.jwt`);
    } catch (error) {
      problem.textContent = `The badge could not be downloaded: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  /** The course ladder: neighbours without names (relative), everyone with names (full), nothing (off). */
  courseLadder(ladder) {
    if (!ladder || ladder.mode === 'off' || !ladder.ladder?.length) return null;
    const box = el('div', 'card-ladder card-course');
    box.dataset.mode = ladder.mode;
    const heading = el('h3', '', 'Course ladder');
    if (ladder.students) heading.append(el('span', 'of', ` · ${ladder.students} student${ladder.students === 1 ? '' : 's'}`));
    const list = el('ol');
    for (const entry of ladder.ladder) {
      const name = ladder.mode === 'full' ? entry.name : null;
      list.append(ladderRow(entry, [name, `${entry.xp} XP`, entry.you ? '' : gapText(entry.gap)]));
    }
    box.append(heading, list);
    return box;
  }

  /** The practical's stations by score, as the course's mode lets a student see them. */
  stationLadder(ladder) {
    if (!ladder || ladder.mode === 'off' || !ladder.ladder?.length) return null;
    const box = el('div', 'card-ladder card-stations');
    box.dataset.mode = ladder.mode;
    const heading = el('h3', '', 'Stations');
    if (ladder.stations) heading.append(el('span', 'of', ` · ${ladder.stations} in this practical`));
    const list = el('ol');
    for (const entry of ladder.ladder) {
      const members = entry.members?.length ? entry.members.join(', ') : null;
      list.append(
        ladderRow(entry, [`Station ${entry.station}`, members, `${entry.score} points`, entry.you ? '' : gapText(entry.gap)]),
      );
    }
    box.append(heading, list);
    return box;
  }
}
