// The console's shell: sign-in, the live feed, and the router (#/page/id) to the pages.
import { api, h, onSignedOut, reportError, setCsrf, toast } from './core.js';
import { dashboardPage, updateDashboard } from './dashboard.js';
import { quarantineEntryPage, quarantineListPage } from './quarantine.js';
import { reviewEntryPage, reviewListPage } from './review.js';
import { studiesPage, studyPage } from './studies.js';
import { uploadPage } from './upload.js';

const main = document.getElementById('main');
const header = document.querySelector('header.top');
let feed;
/** The page on screen: told of live status and changes. */
let current = { status() {}, changed() {} };
let lastStatus;

function signInPage() {
  header.hidden = true;
  document.title = 'Sign in · deid console';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, 'aria-describedby': 'token-help' });
  const error = h('p.error', { id: 'sign-in-error', role: 'alert' });
  const form = h('form.signin', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        const s = await api('/console/session', { method: 'POST', body: { token: input.value } });
        input.value = '';
        started(s);
      } catch (e) {
        error.textContent = `${e.code}: ${e.message}${e.detail ? ` (${e.detail})` : ''}`;
        input.focus();
      }
    },
  },
  h('h1', h('span.brand', 'deid', h('span', 'console'))),
  h('p.muted', 'DICOM de-identification service'),
  h('label', { for: 'token' }, 'Admin token'),
  input,
  h('p.hint', { id: 'token-help' }, 'The token is in admin-token in the service\'s data directory, or DEID_ADMIN_TOKEN.'),
  error,
  h('button', { type: 'submit' }, 'Sign in'));
  main.replaceChildren(form);
  input.focus();
}

function started(session) {
  setCsrf(session.csrf);
  header.hidden = false;
  connect();
  route();
}

function connect() {
  feed?.close();
  const live = document.getElementById('live');
  feed = new EventSource('/api/console/events');
  feed.addEventListener('open', () => { live.textContent = 'live'; live.classList.add('on'); });
  feed.addEventListener('error', () => { live.textContent = 'reconnecting'; live.classList.remove('on'); });
  feed.addEventListener('status', (ev) => {
    lastStatus = JSON.parse(ev.data);
    const q = lastStatus.inQuarantine || 0;
    document.getElementById('nav-review').textContent = lastStatus.review ? String(lastStatus.review) : '';
    document.getElementById('nav-quarantine').textContent = q ? String(q) : '';
    current.status(lastStatus);
  });
  feed.addEventListener('changed', (ev) => current.changed(JSON.parse(ev.data)));
}

async function route() {
  const [path, query = ''] = (location.hash || '#/dashboard').split('?');
  const [, page = 'dashboard', id] = path.split('/');
  const params = new URLSearchParams(query);
  for (const a of document.querySelectorAll('nav a')) a.toggleAttribute('aria-current', a.getAttribute('href') === `#/${page}`);
  const pages = {
    dashboard: () => dashboardPage(lastStatus),
    studies: () => (id ? studyPage(id) : studiesPage(params)),
    quarantine: () => (id ? quarantineEntryPage(id) : quarantineListPage(params)),
    review: () => (id ? reviewEntryPage(id) : reviewListPage()),
    upload: () => uploadPage(),
  };
  try {
    const view = await (pages[page] || pages.dashboard)();
    current = { status: view.status || (() => {}), changed: view.changed || (() => {}) };
    main.replaceChildren(view.node);
    main.focus({ preventScroll: true });
  } catch (e) {
    reportError('Opening the page', e);
  }
}

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('/console/session', { method: 'DELETE' });
  } catch (e) {
    reportError('Signing out', e);
  }
  feed?.close();
  setCsrf('');
  toast('Signed out.', 'info');
  signInPage();
});
onSignedOut(() => { feed?.close(); signInPage(); });
window.addEventListener('hashchange', () => { if (!header.hidden) route(); });

api('/console/session').then(started, () => signInPage());
export { updateDashboard };
