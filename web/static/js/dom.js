// dom.js: building elements and formatting values. Every text goes in with
// textContent (never innerHTML): names and errors come from the outside.

/** h creates an element: h('a', {href: '#/', class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** replace swaps el's children for the given ones. A <details> the user
 * opened stays open when the new content has one with the same data-key:
 * a live re-render must not fold what the operator is reading. */
export function replace(el, ...children) {
  const open = new Set([...el.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
  el.replaceChildren();
  append(el, children);
  if (open.size) for (const d of el.querySelectorAll('details[data-key]')) if (open.has(d.dataset.key)) d.open = true;
}

const symbols = {
  succeeded: '✔', failed: '✖', running: '▶', queued: '◷', pending: '◷', canceled: '⊘', skipped: '↷',
  active: '★', live: '●', stale: '⚠', expired: '⚠', none: '⚠', draining: '⏏',
  firing: '⚠', resolved: '✔',
};

/** badge shows a state as colour, symbol and word, so colour is never the only cue. */
export function badge(state, label) {
  const s = String(state || 'unknown');
  return h('span', { class: `badge st-${s.replace(/[^a-z]/g, '')}` }, `${symbols[s] || '•'} ${label || s}`);
}

function pad(n) { return String(n).padStart(2, '0'); }

/** time formats an ISO time in local time: "HH:MM:SS" today, else
 * "YYYY-MM-DD HH:MM:SS" ("—" when absent). */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d) || d.getFullYear() < 1971) return '—';
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === new Date().toDateString()) return clock;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

/** duration formats milliseconds as "1h 02m", "3m 04s", "5.2s" or "120ms". */
export function duration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

/** span is the duration from start to end (to now while running). */
export function span(start, end, now = Date.now()) {
  if (!start) return '—';
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : now;
  return duration(b - a) + (end ? '' : ' …');
}

/** ago formats the age of an ISO time ("12s ago"). */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (isNaN(t) || t < 31536000000) return '—';
  return `${duration(now - t)} ago`;
}

/** json shows a JSON value (already parsed) indented, or "—". */
export function json(v) {
  if (v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0)) return h('span', { class: 'muted' }, '—');
  return h('pre', { class: 'json' }, JSON.stringify(v, null, 2));
}

/** facts renders a definition grid from [label, value] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v ?? '—'))));
}

/** progress draws a bar with its number. */
export function progress(p) {
  const bar = h('span');
  bar.style.width = `${Math.max(0, Math.min(100, p || 0))}%`;
  return h('span', {}, h('span', { class: 'progress', role: 'img', 'aria-label': `${p || 0}%` }, bar), ` ${p || 0}%`);
}

/** table builds a table from column heads and rows of cells. */
export function table(heads, rows, rowClass) {
  return h('div', { class: 'wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { class: x.startsWith('#') ? 'num' : undefined }, x.replace(/^#/, ''))))),
    h('tbody', {}, rows.length ? rows.map((r, i) => h('tr', { class: rowClass ? rowClass(i) : undefined },
      r.map((c, k) => h('td', { class: heads[k].startsWith('#') ? 'num' : /error|description/i.test(heads[k]) ? 'wide' : undefined }, c))))
      : h('tr', {}, h('td', { colspan: heads.length, class: 'muted' }, 'Nothing here.')))));
}

/** countCap is where the server stops counting (model.CountCap). */
export const countCap = 10000;

/** count formats a count with thousands separators; a capped one (the
 * server stopped counting at countCap: total_capped, jobs_capped) shows
 * as "10,000+". */
export function count(n, capped) {
  const v = Number(n) || 0;
  return capped ? `${Math.max(v, countCap).toLocaleString('en-US')}+` : v.toLocaleString('en-US');
}

/** errorText shows an error message (or "—"). */
export function errorText(s) { return s ? h('span', { class: 'err' }, s) : ''; }

/** link builds an in-page link. */
export function link(hash, text) { return h('a', { href: hash }, text); }
