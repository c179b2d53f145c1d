// chart.js: the overview's throughput chart, drawn as SVG from job times.
import { h } from './dom.js';

const ns = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const k of kids) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}

/**
 * bins counts finished jobs per bin over the window ending at now:
 * [{ok, bad}] oldest first. Jobs that ended canceled are left out.
 */
export function bins(jobs, now, windowMs, n) {
  const out = Array.from({ length: n }, () => ({ ok: 0, bad: 0 }));
  const start = now - windowMs;
  for (const j of jobs) {
    if (!j.finished_at) continue;
    const t = Date.parse(j.finished_at);
    if (t < start || t > now) continue;
    const i = Math.min(n - 1, Math.floor((t - start) / (windowMs / n)));
    if (j.state === 'succeeded') out[i].ok++;
    else if (j.state === 'failed') out[i].bad++;
  }
  return out;
}

/** throughputChart draws bars of finished jobs per bin (succeeded and
 * failed stacked) and the failure rate as a line. */
export function throughputChart(data, { minutes }) {
  const W = 900, H = 280, L = 56, R = 70, T = 20, B = 40;
  const iw = W - L - R, ih = H - T - B;
  const max = Math.max(1, ...data.map((d) => d.ok + d.bad));
  const bw = iw / data.length;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'Jobs finished per interval and failure rate' });
  svg.append(s('line', { x1: L, y1: T + ih, x2: L + iw, y2: T + ih, class: 'axis' }));
  svg.append(s('text', { x: L - 8, y: T + 14, 'text-anchor': 'end' }, max));
  svg.append(s('text', { x: L - 8, y: T + ih, 'text-anchor': 'end' }, 0));
  svg.append(s('text', { x: L + iw + 8, y: T + 14 }, '100%'));
  svg.append(s('text', { x: L + iw + 8, y: T + ih }, '0%'));
  const pts = [];
  data.forEach((d, i) => {
    const x = L + i * bw + 3, w = Math.max(1, bw - 6);
    const hOk = (d.ok / max) * ih, hBad = (d.bad / max) * ih;
    if (d.ok) svg.append(s('rect', { x, y: T + ih - hOk, width: w, height: hOk, class: 'ok' }, s('title', {}, `${d.ok} succeeded`)));
    if (d.bad) svg.append(s('rect', { x, y: T + ih - hOk - hBad, width: w, height: hBad, class: 'bad' }, s('title', {}, `${d.bad} failed`)));
    const n = d.ok + d.bad;
    if (n) pts.push([L + i * bw + bw / 2, T + ih - (d.bad / n) * ih, Math.round((100 * d.bad) / n)]);
  });
  if (pts.length > 1) svg.append(s('polyline', { points: pts.map((p) => `${p[0]},${p[1]}`).join(' '), class: 'rate' }));
  for (const p of pts) svg.append(s('circle', { cx: p[0], cy: p[1], r: 4, class: 'dot' }, s('title', {}, `${p[2]}% failed`)));
  const step = data.length / 4;
  for (let k = 0; k <= 4; k++) {
    const x = L + k * step * bw;
    const label = k === 4 ? 'now' : `−${Math.round(minutes - (k * minutes) / 4)}m`;
    svg.append(s('text', { x, y: H - 8, 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle' }, label));
  }
  const legend = h('div', { class: 'legend' },
    h('span', {}, h('span', { class: 'sw ok' }), 'succeeded'),
    h('span', {}, h('span', { class: 'sw bad' }), 'failed'),
    h('span', {}, h('span', { class: 'sw rate' }), 'failure rate'));
  return h('div', {}, svg, legend);
}
