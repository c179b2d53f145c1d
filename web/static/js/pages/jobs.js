// jobs: the paged, filtered list and a job's detail (params, result,
// attempts, lease holder, progress, output, log lines); cancel and priority.
import { get, send, hasPostRoute } from '../api.js';
import { h, replace, badge, time, span, json, facts, progress, table, errorText, link, count } from '../dom.js';
import { confirmDialog, act } from '../ui.js';
import { changePriority } from './workflows.js';
import { logURL, logSection } from '../logs.js';
import { waveformOf, waveformCanvas } from '../waveform.js';

const jobStates = ['queued', 'running', 'succeeded', 'failed', 'canceled'];

export function jobList(root, ctx) {
  const q = ctx.query;
  const form = h('form', { class: 'filters', id: 'job-filters' },
    h('label', {}, 'State', h('select', { name: 'state' }, h('option', { value: '' }, 'any'),
      jobStates.map((s) => h('option', { value: s, selected: s === q.get('state') }, s)))),
    h('label', {}, 'Type', h('input', { name: 'type', value: q.get('type') || '', size: 18, placeholder: 'e.g. util.copy' })),
    h('label', {}, 'Workflow id', h('input', { name: 'workflow', value: q.get('workflow') || '', size: 8, inputmode: 'numeric' })),
    h('button', { type: 'submit' }, 'Apply'), h('a', { class: 'button ghost', href: '#/jobs' }, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    ctx.navigate(`#/jobs?${p}`);
  });
  const body = h('div', { id: 'job-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', {}, 'Jobs'), form, body);
  const p = new URLSearchParams();
  for (const k of ['state', 'type', 'workflow', 'after']) if (q.get(k)) p.set(k, q.get(k));
  p.set('limit', '50');
  return {
    async refresh() {
      const { data, changed } = await get(`/v1/jobs?${p}`);
      if (!changed && body.dataset.ready && !data.items.some((j) => j.state === 'running')) return;
      body.dataset.ready = '1';
      const now = Date.now();
      const next = new URLSearchParams(q);
      next.set('after', data.next || '');
      const first = new URLSearchParams(q);
      first.delete('after');
      replace(body, table(['#Id', 'Type', 'State', '#Priority', 'Attempt', 'Processor', 'Progress', 'Workflow', 'Created', 'Duration', 'Error'],
        data.items.map((j) => [link(`#/jobs/${j.id}`, `#${j.id}`), j.type, badge(j.state), String(j.priority), `${j.attempt}/${j.max_attempts}`,
          j.processor || '—', progress(j.progress), j.instance_id ? link(`#/workflows/${j.instance_id}`, `#${j.instance_id} ${j.step || ''}`) : '—',
          time(j.created_at), span(j.started_at, j.finished_at, now), errorText(j.error)]), (k) => `row-${data.items[k].state}`),
      h('div', { class: 'pager' }, h('span', {}, `${data.items.length} shown of ${count(data.total, data.total_capped)} matching`),
        q.get('after') ? h('a', { class: 'button ghost', href: `#/jobs?${first}` }, '⇤ Newest') : null,
        data.next ? h('a', { class: 'button ghost', href: `#/jobs?${next}` }, 'Older →') : null));
    },
  };
}

export function jobDetail(root, ctx) {
  const id = ctx.params[0];
  const title = h('h1', {}, `Job #${id}`);
  const cancel = h('button', { class: 'danger act', id: 'cancel', disabled: true }, 'Cancel…');
  const prio = h('button', { class: 'ghost act', id: 'priority', disabled: true }, 'Priority…');
  const retry = h('button', { class: 'act', id: 'retry', hidden: true }, 'Retry…');
  const body = h('div', { id: 'job-detail' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(title, h('div', { class: 'actions' }, cancel, prio, retry), body);
  let job = null;
  let canRetry = false;
  hasPostRoute(`/v1/jobs/${id}/retry`).then((ok) => { canRetry = ok; });
  retry.addEventListener('click', async () => {
    if (!job) return;
    const ok = await confirmDialog({ title: `Retry job #${job.id}?`, text: `The ${job.type} job is queued again.`, confirm: 'Retry', keep: 'Keep as is', danger: false });
    if (ok && await act(() => send('POST', `/v1/jobs/${job.id}/retry`))) ctx.refreshNow();
  });
  cancel.addEventListener('click', async () => {
    if (!job) return;
    const ok = await confirmDialog({ title: `Cancel job #${job.id}?`, text: `The ${job.type} job stops: a running attempt is asked to stop.`, confirm: 'Cancel job', keep: 'Keep running' });
    if (ok && await act(() => send('POST', `/v1/jobs/${job.id}/cancel`))) ctx.refreshNow();
  });
  prio.addEventListener('click', () => job && changePriority(`job #${job.id}`, `/v1/jobs/${job.id}/priority`, job.priority, ctx.refreshNow));
  return {
    async refresh() {
      const [{ data: j, changed }, log] = await Promise.all([get(`/v1/jobs/${id}`), get(logURL('jobs', id))]);
      job = j;
      const final = ['succeeded', 'failed', 'canceled'].includes(j.state);
      cancel.disabled = final || j.cancel_requested;
      prio.disabled = final;
      retry.hidden = !(canRetry && (j.state === 'failed' || j.state === 'canceled'));
      if (!changed && !log.changed && body.dataset.ready && final) return;
      body.dataset.ready = '1';
      const now = Date.now();
      replace(title, `Job #${j.id} ${j.type}`, badge(j.state), j.cancel_requested && !final ? badge('canceled', 'cancel asked') : null);
      replace(body,
        j.error ? h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Error: '), j.error) : null,
        facts([
          ['State', badge(j.state)], ['Progress', progress(j.progress)], ['Priority', String(j.priority)],
          ['Attempts', `${j.attempt} of ${j.max_attempts}`], [final ? 'Last processor' : 'Lease holder', j.processor || '—'],
          ['Lease until', time(j.lease_until)], ['Epoch', String(j.epoch)],
          ['Workflow', j.instance_id ? link(`#/workflows/${j.instance_id}`, `#${j.instance_id} step ${j.step || ''}`) : '—'],
          ['Created', time(j.created_at)], ['Run after', time(j.run_after)], ['Started', time(j.started_at)], ['Finished', time(j.finished_at)],
          ['Duration', span(j.started_at, j.finished_at, now)], ['Timeout', j.timeout && j.timeout !== '0s' ? j.timeout : 'none'],
          j.selector ? ['Selector', Object.entries(j.selector).map(([k, v]) => `${k}=${v}`).join(', ')] : null,
        ]),
        waveformOf(j) ? h('section', { id: 'waveform' }, h('h2', {}, 'Waveform'), waveformCanvas(waveformOf(j), { label: `Waveform of ${j.result.path || 'the file'}` }),
          h('p', { class: 'help' }, `${j.result.path || ''} · ${j.result.duration_s ?? '—'} s · picture ${j.result.png || 'not made'} and peaks ${j.result.peaks || '—'} on the processor`)) : null,
        h('h2', {}, 'Output'), j.message ? h('pre', { id: 'job-output' }, j.message) : h('p', { class: 'muted' }, 'No message reported.'),
        logSection(log.data, false),
        h('div', { class: 'grid' },
          h('section', {}, h('h2', {}, 'Params'), json(j.params)),
          h('section', {}, h('h2', {}, 'Result'), json(waveformOf(j) ? { ...j.result, overview: `${waveformOf(j).columns} columns, drawn above` } : j.result))));
    },
  };
}
