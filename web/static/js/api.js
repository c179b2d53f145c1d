// api.js: the monitor's only way to the server — the /v1 JSON API.
// GETs revalidate with the ETag of the last answer (If-None-Match), so an
// unchanged page costs a 304 and no re-render; mutating calls carry the
// CSRF header the server asks of cookie sessions (double submit).

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : (problem.title || `HTTP ${status}`));
    this.status = status;
    this.problem = problem;
  }
}

let onUnauthorized = () => {};
/** Sets what happens when the server answers 401 (the login page). */
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

const cache = new Map(); // url -> {etag, data}, most recently used last
const cacheMax = 200;

async function problemOf(r) {
  try {
    const p = await r.json();
    return new ApiError(r.status, p);
  } catch {
    return new ApiError(r.status, { title: `HTTP ${r.status} ${r.statusText}` });
  }
}

/**
 * get reads a JSON resource. It answers {data, changed}: changed is false
 * when the server answered 304 (same ETag as last time).
 */
export async function get(url) {
  const hit = cache.get(url);
  const headers = { Accept: 'application/json' };
  if (hit) headers['If-None-Match'] = hit.etag;
  const r = await fetch(url, { headers, credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 304 && hit) {
    cache.delete(url);
    cache.set(url, hit);
    return { data: hit.data, changed: false };
  }
  if (r.status === 401) onUnauthorized();
  if (!r.ok) throw await problemOf(r);
  const data = await r.json();
  const etag = r.headers.get('ETag');
  if (etag) {
    cache.delete(url);
    cache.set(url, { etag, data });
    if (cache.size > cacheMax) cache.delete(cache.keys().next().value);
  }
  return { data, changed: true };
}

/** getData is get for callers that always use the value. */
export async function getData(url) { return (await get(url)).data; }

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

/** hasSession reports whether the page holds a login session. */
export function hasSession() { return cookie('dpe_csrf') !== ''; }

/**
 * send makes a mutating call. body is sent as JSON unless a contentType is
 * given (then as is). It answers the parsed JSON, or null for 204.
 */
export async function send(method, url, body, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const csrf = cookie('dpe_csrf');
  if (csrf) headers['X-DPE-CSRF'] = csrf;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = opts.contentType || 'application/json';
    payload = opts.contentType ? body : JSON.stringify(body);
  }
  const r = await fetch(url, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401 && !opts.noLoginRedirect) onUnauthorized();
  if (!r.ok) throw await problemOf(r);
  if (r.status === 204) return null;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

/** idempotencyKey makes a fresh key so that a repeated click starts one thing. */
export function idempotencyKey() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'web-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

const routeCache = new Map();
/**
 * hasPostRoute reports whether the server serves POST at path, without
 * calling it: the API's router answers a GET on a POST-only route with 405
 * and an unknown path with 404. The monitor offers an action (retry) only
 * when the server it talks to has it.
 */
export function hasPostRoute(path) {
  if (!routeCache.has(path)) {
    routeCache.set(path, fetch(path, { credentials: 'same-origin', cache: 'no-store' })
      .then((r) => r.status === 405 && (r.headers.get('Allow') || '').includes('POST')).catch(() => false));
  }
  return routeCache.get(path);
}
