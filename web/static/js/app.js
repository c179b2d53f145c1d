// app.js: the monitor's shell — hash routing, the 2-second poll while the
// tab is visible, the confirmation dialog, login and logout.
import { get, send, hasSession, setUnauthorizedHandler, ApiError } from './api.js';
import { h } from './dom.js';
import { act } from './ui.js';
import { overview } from './pages/overview.js';
import { workflowList, workflowDetail, startForm } from './pages/workflows.js';
import { jobList, jobDetail } from './pages/jobs.js';
import { farm } from './pages/farm.js';
import { triggers } from './pages/triggers.js';
import { templateList, templateView } from './pages/templates.js';
import { alerts } from './pages/alerts.js';
import { audit, isAdmin } from './pages/audit.js';

const pollEvery = 2000;

const routes = [
  [/^$/, 'overview', overview],
  [/^workflows$/, 'workflows', workflowList],
  [/^workflows\/(\d+)$/, 'workflows', workflowDetail],
  [/^start\/([^/]+)$/, 'workflows', startForm],
  [/^jobs$/, 'jobs', jobList],
  [/^jobs\/(\d+)$/, 'jobs', jobDetail],
  [/^farm$/, 'farm', farm],
  [/^triggers$/, 'triggers', triggers],
  [/^templates$/, 'templates', templateList],
  [/^templates\/([^/]+)$/, 'templates', templateView],
  [/^alerts$/, 'alerts', alerts],
  [/^audit$/, 'audit', audit],
];

const view = document.getElementById('view');
const live = document.getElementById('live');
const banner = document.getElementById('banner');
let page = null; // {refresh}
let timer = 0;
let generation = 0; // bumps on every navigation: stale refreshes drop their result
let loggingIn = false;

/** navigate sets the hash (and so the page). */
export function navigate(hash) { location.hash = hash; }

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  // Decode the path only: the query is URLSearchParams' own encoding, and
  // decoding it twice would turn an escaped & or % in a name into syntax.
  let decoded = path;
  try { decoded = decodeURIComponent(path); } catch { /* keep it as typed */ }
  return { path: decoded.replace(/\/$/, ''), query: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)) };
}

function mount() {
  if (loggingIn) return;
  generation++;
  clearTimeout(timer);
  const { path, query } = parseHash();
  let found = null;
  for (const [re, name, fn] of routes) {
    const m = path.match(re);
    if (m) { found = { name, fn, params: m.slice(1) }; break; }
  }
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', !!found && a.dataset.page === found.name);
  view.replaceChildren();
  if (!found) {
    page = null;
    view.append(h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, location.hash), '. ', h('a', { href: '#/' }, 'Back to the overview')));
    return;
  }
  const gen = generation;
  page = found.fn(view, { params: found.params, query, navigate, isCurrent: () => gen === generation, refreshNow: () => tick(gen) });
  tick(gen);
}

async function tick(gen) {
  clearTimeout(timer);
  if (gen !== generation || loggingIn) return;
  if (document.visibilityState !== 'visible') {
    live.className = 'live paused';
    live.textContent = 'paused (tab hidden)';
    return;
  }
  try {
    if (page && page.refresh) await page.refresh();
    if (gen !== generation) return;
    banner.hidden = true;
    live.className = 'live ok';
    live.textContent = `LIVE ${new Date().toLocaleTimeString([], { hour12: false })}`;
  } catch (e) {
    if (gen !== generation || loggingIn) return;
    live.className = 'live down';
    if (e instanceof ApiError) {
      live.textContent = `server answered ${e.status}`;
      banner.textContent = e.message;
    } else {
      live.textContent = 'OFFLINE';
      banner.textContent = `Cannot reach the server (${e.message}); retrying every ${pollEvery / 1000}s.`;
    }
    banner.hidden = false;
  }
  if (gen === generation) timer = setTimeout(() => tick(gen), pollEvery);
}

document.addEventListener('visibilitychange', () => tick(generation));
window.addEventListener('hashchange', mount);

function showLogin(message) {
  if (loggingIn) return;
  loggingIn = true;
  clearTimeout(timer);
  generation++;
  live.className = 'live down';
  live.textContent = 'signed out';
  document.querySelector('#nav a[data-page=audit]').hidden = true;
  const token = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'err', role: 'alert' }, message || '');
  const form = h('form', { class: 'panel login', id: 'login-form' },
    h('h1', {}, 'Sign in to dpe'),
    h('label', {}, 'Token', token, h('span', { class: 'help' }, 'An API token (dpe --token, DPE_TOKEN, or one made with dpe token).')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'login' }, 'Sign in')),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await send('POST', '/v1/session', { token: token.value }, { noLoginRedirect: true });
      loggingIn = false;
      await whoami();
      mount();
    } catch (e) {
      err.textContent = e.status === 401 ? 'That token is not valid.' : e.message;
    }
  });
  view.replaceChildren(form);
  token.focus();
}

async function whoami() {
  const who = document.getElementById('who');
  const out = document.getElementById('logout');
  try {
    const s = (await get('/v1/session')).data;
    who.textContent = s.required ? `role: ${s.role}` : '';
    document.body.dataset.role = s.required ? s.role : '';
    out.hidden = !(s.required && hasSession());
  } catch {
    who.textContent = '';
    out.hidden = true;
  }
  document.querySelector('#nav a[data-page=audit]').hidden = !isAdmin();
}

document.getElementById('logout').addEventListener('click', async () => {
  await act(() => send('DELETE', '/v1/session'));
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  showLogin('Signed out.');
});

setUnauthorizedHandler(() => showLogin('Please sign in.'));

(async () => {
  try {
    const s = await fetch('/v1/session', { credentials: 'same-origin', cache: 'no-store' });
    if (s.status === 401) { showLogin(''); return; }
  } catch { /* the poll reports the server as unreachable */ }
  await whoami();
  mount();
})();
