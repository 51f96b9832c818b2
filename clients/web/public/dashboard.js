/**
 * The teacher dashboard (/dashboard.html): sign in with the teacher's key,
 * then courses: make, rename and delete them, and for each its roster and
 * sign-in codes, the printable sign-in sheet, its practicals (results, and a
 * live grid while one is open), the full ladder, the course settings and each
 * student's term.
 *
 * Everything comes from the REST API with the key (dashboard-api.js); the
 * page only asks and shows what the server answers, its refusals included,
 * in the server's own sentences.
 *
 * | module | does |
 * | --- | --- |
 * | dashboard-api.js | the key, requests, refusals as sentences, downloads |
 * | dashboard-ui.js | DOM helpers, tables, the confirm strip, dates and codes |
 * | dashboard-course.js | one course: header, tabs, downloads, the ladder |
 * | dashboard-roster.js | the roster: add, import, remove, new codes |
 * | dashboard-sheet.js | the printable sign-in sheet |
 * | dashboard-settings.js | XP rate, level curve, ladder mode; the thresholds |
 * | dashboard-term.js | one student over the term |
 * | dashboard-practical.js | a practical's results, and its live grid |
 * | dashboard-skills.js | the heat map of mastery per skill per student |
 *
 * @module dashboard
 */

import { Api, ApiError, remember, storedKey } from './dashboard-api.js';
import { CourseView } from './dashboard-course.js';
import { el } from './dashboard-ui.js';

const $ = (id) => document.getElementById(id);

class Dashboard {
  constructor() {
    this.api = new Api();
    this.api.onUnauthorized = (error) => this.signOut(error.message);
    /** @type {CourseView | null} */
    this.course = null;
    this.courses = [];
    $('signin').addEventListener('submit', (event) => {
      event.preventDefault();
      this.signIn($('key-input').value.trim());
    });
    $('sign-out').addEventListener('click', () => this.signOut(''));
    $('new-course').addEventListener('submit', (event) => {
      event.preventDefault();
      this.createCourse();
    });
    window.addEventListener('hashchange', () => {
      if (new URLSearchParams(location.hash.slice(1)).has('key')) this.signIn(storedKey());
    });
  }

  start() {
    const key = storedKey();
    if (key) this.signIn(key);
    else this.showSignIn('');
  }

  showSignIn(message) {
    $('workspace').hidden = true;
    $('sign-out').hidden = true;
    $('signin').hidden = false;
    const error = $('signin-error');
    error.textContent = message;
    error.hidden = !message;
    $('key-input').focus();
  }

  /** Try the key on the course list: a wrong one answers the server's sentence. */
  async signIn(key) {
    if (!key) return this.showSignIn('Paste your teacher key first.');
    this.api.key = key;
    const button = $('signin').querySelector('button');
    button.disabled = true;
    try {
      this.courses = await this.api.call('/api/courses');
    } catch (error) {
      // Only a refused key is forgotten: a server that is away or busy (0, 5xx) keeps it for the next try.
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) remember('');
      this.showSignIn(error.message);
      return;
    } finally {
      button.disabled = false;
    }
    remember(key);
    $('key-input').value = '';
    $('signin').hidden = true;
    $('workspace').hidden = false;
    $('sign-out').hidden = false;
    this.renderCourses();
  }

  signOut(message) {
    remember('');
    this.api.key = '';
    this.closeCourse();
    this.showSignIn(message);
  }

  async reloadCourses() {
    try {
      this.courses = await this.api.call('/api/courses');
      this.renderCourses();
    } catch (error) {
      setStatus($('courses-status'), error.message);
    }
  }

  renderCourses() {
    const chosen = this.course?.id;
    const items = this.courses.map((course) => {
      const live = course.open_practicals.length;
      const pick = el(
        'button',
        { type: 'button', class: 'course-pick', 'aria-current': course.id === chosen ? 'true' : null, data: { course: course.id } },
        el('span', { class: 'name' }, course.name),
        el('span', { class: 'meta' }, `${course.students} student${course.students === 1 ? '' : 's'}`, live ? el('span', { class: 'live-dot' }, ' · live now') : null),
      );
      pick.addEventListener('click', () => this.openCourse(course.id));
      return el('li', {}, pick);
    });
    $('course-list').replaceChildren(...items);
    $('courses-empty').hidden = this.courses.length > 0;
    $('pick-course').hidden = Boolean(this.course);
  }

  async createCourse() {
    const input = $('new-course-name');
    const status = $('courses-status');
    try {
      const course = await this.api.call('/api/courses', { method: 'POST', json: { name: input.value } });
      input.value = '';
      setStatus(status, '');
      await this.reloadCourses();
      await this.openCourse(course.id);
    } catch (error) {
      setStatus(status, error.message);
    }
  }

  async openCourse(id) {
    this.closeCourse();
    const section = $('course');
    this.course = new CourseView(this.api, id, section, {
      changed: () => this.reloadCourses(),
      deleted: () => {
        this.closeCourse();
        this.reloadCourses();
      },
    });
    section.hidden = false;
    this.renderCourses();
    await this.course.load();
  }

  closeCourse() {
    this.course?.leave();
    this.course = null;
    $('course').hidden = true;
    $('course').replaceChildren();
    $('pick-course').hidden = false;
  }
}

function setStatus(node, text) {
  node.textContent = text;
  node.dataset.kind = 'error';
  node.setAttribute('role', 'alert');
  node.hidden = !text;
}

const dashboard = new Dashboard();
/** For tests and the console: the page's own state, read-only by convention. */
window.amaliyDashboard = dashboard;
dashboard.start();
