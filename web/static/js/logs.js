// logs.js: the log lines of a workflow instance or a job, as the detail
// pages show them (GET /v1/workflows/{id}/logs, GET /v1/jobs/{id}/logs).
import { h, time, link } from './dom.js';

/** logLimit is how many lines a detail page reads; the CLI has them all. */
export const logLimit = 1000;

/** logURL is the first page of a log. */
export function logURL(kind, id) { return `/v1/${kind}/${id}/logs?limit=${logLimit}`; }

/**
 * logSection renders lines (a LogPage's) under a "Log" heading; withJob
 * names the job each of an instance's job lines came from.
 */
export function logSection(page, withJob) {
  const lines = (page && page.lines) || [];
  return [
    h('h2', {}, `Log (${lines.length}${lines.length >= logLimit ? '+' : ''})`),
    lines.length
      ? h('pre', { id: 'log-lines', class: 'log' }, lines.map((l) => h('div', { class: `log-${l.level}` },
        `${time(l.at)} ${l.level.toUpperCase().padEnd(5)} `,
        withJob && l.job_id ? [link(`#/jobs/${l.job_id}`, `job #${l.job_id}`), ': '] : null,
        l.message)))
      : h('p', { class: 'muted' }, 'No log lines.'),
    lines.length >= logLimit ? h('p', { class: 'muted' }, `First ${logLimit} lines; dpe workflow logs prints them all.`) : null,
  ];
}
