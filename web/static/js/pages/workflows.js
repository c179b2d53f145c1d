// workflows: the paged, filtered list; an instance's detail with its steps
// in run order; cancel and priority; starting one from a template's form.
import { get, getData, send, idempotencyKey, hasPostRoute } from '../api.js';
import { h, replace, badge, time, span, json, facts, progress, table, errorText, link, count } from '../dom.js';
import { confirmDialog, act } from '../ui.js';
import { logURL, logSection } from '../logs.js';
import { waveformOf, waveformCanvas } from '../waveform.js';

export const instanceStates = ['pending', 'running', 'succeeded', 'failed', 'canceled'];
const pageSize = 50;

function final(state) { return state === 'succeeded' || state === 'failed' || state === 'canceled'; }

/** listQuery builds the API query of the list from the page's hash query. */
function listQuery(q) {
  const p = new URLSearchParams();
  for (const k of ['state', 'template', 'name', 'trigger', 'created_after', 'created_before', 'after']) if (q.get(k)) p.set(k, q.get(k));
  p.set('limit', String(pageSize));
  return p;
}

/** timeFilters are the created-time bounds: RFC 3339 in the hash and the
 * API, local time in the form's inputs. */
const timeFilters = ['created_after', 'created_before'];

/** localInput turns an RFC 3339 time into a datetime-local input's value. */
function localInput(iso) {
  const d = new Date(iso || '');
  if (!iso || isNaN(d)) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function select(name, label, options, value) {
  return h('label', {}, label, h('select', { name, id: `f-${name}` },
    h('option', { value: '' }, 'any'), options.map((o) => h('option', { value: o, selected: o === value }, o))));
}

export function workflowList(root, ctx) {
  const q = ctx.query;
  const templateSel = select('template', 'Template', q.get('template') ? [q.get('template')] : [], q.get('template'));
  const triggerSel = select('trigger', 'Started by trigger', q.get('trigger') ? [q.get('trigger')] : [], q.get('trigger'));
  const form = h('form', { class: 'filters', id: 'wf-filters' },
    select('state', 'State', instanceStates, q.get('state')),
    templateSel,
    triggerSel,
    h('label', {}, 'Created after', h('input', { type: 'datetime-local', name: 'created_after', id: 'f-created_after', value: localInput(q.get('created_after')) })),
    h('label', {}, 'Created before', h('input', { type: 'datetime-local', name: 'created_before', id: 'f-created_before', value: localInput(q.get('created_before')) })),
    h('label', {}, 'Name (exact)', h('input', { name: 'name', id: 'f-name', value: q.get('name') || '', size: 24 })),
    h('button', { type: 'submit' }, 'Apply'),
    h('a', { class: 'button ghost', href: '#/workflows' }, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) {
      if (!v) continue;
      if (timeFilters.includes(k)) {
        const d = new Date(v); // a datetime-local value reads as local time
        if (!isNaN(d)) p.set(k, d.toISOString());
      } else p.set(k, v);
    }
    ctx.navigate(`#/workflows?${p}`);
  });
  const starter = h('select', { id: 'start-template', 'aria-label': 'Template to start' }, h('option', { value: '' }, 'Start a workflow from…'));
  starter.addEventListener('change', () => { if (starter.value) ctx.navigate(`#/start/${encodeURIComponent(starter.value)}`); });
  const body = h('div', { id: 'wf-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', {}, 'Workflows'), h('div', { class: 'actions' }, starter), form, body);

  getData('/v1/templates').then((t) => {
    const names = [...new Set((t.items || []).map((x) => x.name))].sort();
    const sel = templateSel.querySelector('select');
    for (const n of names) {
      if (n !== q.get('template')) sel.append(h('option', { value: n }, n));
      starter.append(h('option', { value: n }, n));
    }
  }).catch(() => {});
  getData('/v1/triggers').then((t) => {
    const sel = triggerSel.querySelector('select');
    for (const n of (t.items || []).map((x) => x.name).sort()) if (n !== q.get('trigger')) sel.append(h('option', { value: n }, n));
  }).catch(() => {});

  const url = `/v1/workflows?${listQuery(q)}`;
  return {
    async refresh() {
      const { data, changed } = await get(url);
      if (!changed && body.dataset.ready) return;
      body.dataset.ready = '1';
      const now = Date.now();
      const rows = data.items.map((i) => [
        link(`#/workflows/${i.id}`, `#${i.id}`), [link(`#/workflows/${i.id}`, i.name), i.trigger ? h('div', { class: 'help' }, `by trigger ${i.trigger}`) : null], `${i.template} v${i.version}`,
        badge(i.state), progress(i.progress), String(i.priority), time(i.created_at), span(i.started_at, i.finished_at, now),
        errorText(i.error && i.error.length > 160 ? i.error.slice(0, 160) + '…' : i.error)]);
      const pager = h('div', { class: 'pager' },
        h('span', {}, `${data.items.length} shown of ${count(data.total, data.total_capped)} matching`),
        q.get('after') ? h('a', { class: 'button ghost', href: pageHash(q, '') }, '⇤ Newest') : null,
        data.next ? h('a', { class: 'button ghost', id: 'older', href: pageHash(q, data.next) }, 'Older →') : null);
      replace(body, table(['#Id', 'Name', 'Template', 'State', 'Progress', '#Priority', 'Created', 'Duration', 'Error'], rows,
        (k) => `row-${data.items[k].state}`), pager);
    },
  };
}

function pageHash(q, after) {
  const p = new URLSearchParams(q);
  if (after) p.set('after', after); else p.delete('after');
  return `#/workflows?${p}`;
}

/** stepPositions numbers the step ids of a canonical template in document
 * order (depth first), wherever they nest (then, do, parallel, try, ...). */
export function stepPositions(canonical) {
  const pos = new Map();
  (function walk(v) {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (!v || typeof v !== 'object') return;
    if (typeof v.id === 'string' && !pos.has(v.id)) pos.set(v.id, pos.size);
    for (const [k, x] of Object.entries(v)) if (k !== 'args' && k !== 'params' && k !== 'output') walk(x);
  })(canonical && canonical.steps);
  return pos;
}

/** runOrder sorts steps by when they started; steps started by the same
 * decision (equal times) keep the template's order, then their paths'. */
export function runOrder(steps, positions = new Map()) {
  const at = (st) => positions.has(st.id) ? positions.get(st.id) : Infinity;
  return [...steps].sort((a, b) => (Date.parse(a.started_at) - Date.parse(b.started_at)) || (at(a) - at(b)) || a.path.localeCompare(b.path));
}

function depth(path) { return Math.min(4, (path.match(/\//g) || []).length); }

/** priorityEditor asks for a new priority through the dialog and sets it. */
export async function changePriority(what, url, current, after) {
  const input = h('input', { type: 'number', id: 'priority-input', min: -1000, max: 1000, step: 1, value: String(current), required: true });
  const ok = await confirmDialog({ title: `Change the priority of ${what}`, text: 'Higher runs first. Queued jobs are reordered at once.',
    confirm: 'Set priority', keep: 'Keep', danger: false, extra: h('label', {}, 'Priority', input) });
  if (!ok) return;
  await act(() => send('POST', url, { priority: Number(input.value) }));
  after();
}

export function workflowDetail(root, ctx) {
  const id = ctx.params[0];
  const title = h('h1', {}, `Workflow #${id}`);
  const cancel = h('button', { class: 'danger act', id: 'cancel', disabled: true }, 'Cancel…');
  const prio = h('button', { class: 'ghost act', id: 'priority', disabled: true }, 'Priority…');
  const retry = h('button', { class: 'act', id: 'retry', hidden: true }, 'Retry…');
  const body = h('div', { id: 'wf-detail' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(title, h('div', { class: 'actions' }, cancel, prio, retry), body);
  let inst = null;
  let canRetry = false;
  hasPostRoute(`/v1/workflows/${id}/retry`).then((ok) => { canRetry = ok; });
  retry.addEventListener('click', async () => {
    if (!inst) return;
    const ok = await confirmDialog({ title: `Retry workflow #${inst.id}?`, text: `“${inst.name}” runs again from its failed step.`, confirm: 'Retry', keep: 'Keep as is', danger: false });
    if (!ok) return;
    let ans = null;
    if (await act(async () => { ans = await send('POST', `/v1/workflows/${inst.id}/retry`); })) {
      const next = ans && (ans.id || (ans.instance && ans.instance.id));
      if (next && String(next) !== String(inst.id)) ctx.navigate(`#/workflows/${next}`); else ctx.refreshNow();
    }
  });
  cancel.addEventListener('click', async () => {
    if (!inst) return;
    const ok = await confirmDialog({ title: `Cancel workflow #${inst.id}?`, text: `“${inst.name}” (${inst.template}) stops: its running jobs are asked to stop and no further step starts.`,
      confirm: 'Cancel workflow', keep: 'Keep running' });
    if (ok && await act(() => send('POST', `/v1/workflows/${inst.id}/cancel`))) ctx.refreshNow();
  });
  prio.addEventListener('click', () => inst && changePriority(`workflow #${inst.id}`, `/v1/workflows/${inst.id}/priority`, inst.priority, ctx.refreshNow));

  return {
    async refresh() {
      const [{ data, changed }, jobs, log] = await Promise.all([get(`/v1/workflows/${id}`), get(`/v1/jobs?workflow=${id}&limit=1000`), get(logURL('workflows', id))]);
      // The detail may leave the jobs out: the job list has them all.
      const jobList = (data.jobs || []).length ? data.jobs : jobs.data.items;
      inst = data.instance;
      const running = !final(inst.state);
      cancel.disabled = !running || inst.cancel_requested;
      prio.disabled = !running;
      retry.hidden = !(canRetry && (inst.state === 'failed' || inst.state === 'canceled'));
      if (!changed && !jobs.changed && !log.changed && body.dataset.ready && !running) return;
      body.dataset.ready = '1';
      const now = Date.now();
      replace(title, `Workflow #${inst.id} ${inst.name}`, badge(inst.state), inst.cancel_requested && running ? badge('canceled', 'cancel asked') : null);
      const jobsById = new Map(jobList.map((j) => [j.id, j]));
      let positions = new Map();
      try {
        positions = stepPositions((await getData(`/v1/templates/${encodeURIComponent(inst.template)}?version=${inst.version}`)).canonical);
      } catch { /* deleted template: times and paths still order the steps */ }
      const steps = runOrder(data.steps || [], positions);
      replace(body,
        inst.error ? h('div', { class: 'error-box', id: 'wf-error', role: 'alert' }, h('strong', {}, 'Error: '), inst.error) : null,
        facts([
          ['Template', link(`#/templates/${encodeURIComponent(inst.template)}`, `${inst.template} v${inst.version}`)],
          ['State', badge(inst.state)], ['Progress', progress(inst.progress)], ['Priority', String(inst.priority)],
          ['Created', time(inst.created_at)], ['Started', time(inst.started_at)], ['Finished', time(inst.finished_at)],
          ['Duration', span(inst.started_at, inst.finished_at, now)],
          ['Worker (lease holder)', inst.worker || '—'], ['Now running', (inst.current || []).join(', ') || '—'],
          inst.trigger ? ['Trigger', inst.trigger] : null,
          inst.parent_id ? ['Parent', link(`#/workflows/${inst.parent_id}`, `#${inst.parent_id} (${inst.parent_step || ''})`)] : null,
        ]),
        h('h2', {}, `Steps (${steps.length}) in run order`),
        table(['Step', 'Kind', 'State', 'Started', 'Finished', 'Duration', 'Job / child', 'Result or error'],
          steps.map((st) => {
            const j = st.job_id ? jobsById.get(st.job_id) : null;
            return [
              h('span', { class: `indent-${depth(st.path)}` }, h('strong', {}, st.id), st.path !== st.id ? h('span', { class: 'muted' }, ` ${st.path}`) : null),
              st.kind, badge(st.state), time(st.started_at), time(st.finished_at), span(st.started_at, st.finished_at, now),
              [st.job_id ? link(`#/jobs/${st.job_id}`, `job #${st.job_id}${j ? ` (${j.type}, attempt ${j.attempt}/${j.max_attempts})` : ''}`) : null,
                st.child_id ? link(`#/workflows/${st.child_id}`, `workflow #${st.child_id}`) : null],
              st.error ? errorText(st.error) : (st.result && Object.keys(st.result).length ? h('details', { 'data-key': `result:${st.path}` }, h('summary', {}, 'result'), json(st.result)) : ''),
            ];
          }), (k) => `row-${steps[k].state}`),
        logSection(log.data, true),
        h('div', { class: 'grid' },
          h('section', {}, h('h2', {}, 'Variables'), json(inst.vars)),
          h('section', {}, h('h2', {}, 'Arguments'), json(inst.args)),
          h('section', {}, h('h2', {}, 'Output'), json(inst.output))),
        jobList.some(waveformOf) ? h('section', { id: 'waveforms' }, h('h2', {}, 'Waveforms'), jobList.filter(waveformOf).map((j) =>
          h('figure', {}, waveformCanvas(waveformOf(j), { lane: 64, label: `Waveform of job #${j.id}` }),
            h('figcaption', {}, link(`#/jobs/${j.id}`, `job #${j.id}`), ` ${j.result.path || ''}`)))) : null,
        jobList.length ? [h('h2', {}, 'Jobs'), table(['#Job', 'Type', 'Step', 'State', 'Attempt', 'Processor', 'Progress', 'Error'],
          jobList.map((j) => [link(`#/jobs/${j.id}`, `#${j.id}`), j.type, j.step || '—', badge(j.state), `${j.attempt}/${j.max_attempts}`,
            j.processor || '—', progress(j.progress), errorText(j.error)]))] : null,
        (data.children || []).length ? [h('h2', {}, 'Sub-workflows'), table(['#Id', 'Name', 'State', 'Error'],
          data.children.map((c) => [link(`#/workflows/${c.id}`, `#${c.id}`), c.name, badge(c.state), errorText(c.error)]))] : null);
    },
  };
}

/** argInput builds the form field of one declared template arg. */
function argInput(name, spec) {
  const type = spec.type || 'any';
  const id = `arg-${name}`;
  const has = Object.prototype.hasOwnProperty.call(spec, 'default');
  let input;
  if (type === 'bool') {
    input = h('input', { type: 'checkbox', id, name, checked: has && spec.default === true });
    return h('label', { class: 'check' }, input, name, spec.description ? h('span', { class: 'help' }, ` — ${spec.description}`) : null);
  }
  if (type === 'list' || type === 'map' || type === 'any') {
    input = h('textarea', { id, name, rows: 4, required: !!spec.required, placeholder: type === 'list' ? '["a", "b"]' : type === 'map' ? '{"key": "value"}' : 'JSON' });
    input.value = has ? JSON.stringify(spec.default, null, 2) : '';
  } else {
    input = h('input', { id, name, type: type === 'int' || type === 'number' ? 'number' : 'text', step: type === 'number' ? 'any' : undefined,
      required: !!spec.required, placeholder: type === 'duration' ? 'e.g. 90s, 5m, 2h' : undefined, value: has ? String(spec.default) : '' });
  }
  return h('label', {}, h('span', {}, name, spec.required ? h('span', { class: 'req' }, ' (required)') : null, h('span', { class: 'help' }, ` ${type}`)),
    input, spec.description ? h('span', { class: 'help' }, spec.description) : null);
}

/** argValues reads the form back into the args object. */
function argValues(form, args) {
  const out = {};
  for (const [name, spec] of Object.entries(args)) {
    const el = form.elements[name];
    const type = spec.type || 'any';
    if (type === 'bool') { out[name] = el.checked; continue; }
    const v = el.value.trim();
    if (v === '') continue; // absent: the template's default applies
    if (type === 'int' || type === 'number') out[name] = Number(v);
    else if (type === 'list' || type === 'map' || type === 'any') {
      try { out[name] = JSON.parse(v); } catch { if (type === 'any') out[name] = v; else throw new Error(`${name}: not valid JSON`); }
    } else out[name] = v;
  }
  return out;
}

export function startForm(root, ctx) {
  const name = ctx.params[0];
  const out = h('div', { id: 'start-result' });
  root.append(h('h1', {}, `Start ${name}`), h('div', { id: 'start-form' }, h('p', { class: 'muted' }, 'Loading…')), out);
  getData(`/v1/templates/${encodeURIComponent(name)}`).then((t) => {
    const args = (t.canonical && t.canonical.args) || {};
    const form = h('form', { class: 'form-grid', id: 'start' },
      t.description ? h('p', {}, t.description) : null,
      h('p', { class: 'muted' }, `Version ${t.version}. Fields come from the template's declared args.`),
      Object.entries(args).map(([n, spec]) => argInput(n, spec)),
      h('label', {}, 'Instance name (optional, unique)', h('input', { name: '__name', id: 'start-name' })),
      h('label', {}, 'Priority', h('input', { name: '__priority', id: 'start-priority', type: 'number', value: '0', min: -1000, max: 1000 })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'start-submit' }, 'Start workflow')));
    let key = '', keyFor = ''; // one start however often the same form is sent
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const spec = { template: name, version: t.version, args: argValues(form, args), priority: Number(form.elements.__priority.value) || 0 };
        if (form.elements.__name.value.trim()) spec.name = form.elements.__name.value.trim();
        if (JSON.stringify(spec) !== keyFor) { key = idempotencyKey(); keyFor = JSON.stringify(spec); }
        const inst = await send('POST', '/v1/workflows', spec, { headers: { 'Idempotency-Key': key } });
        ctx.navigate(`#/workflows/${inst.id}`);
      } catch (e) {
        replace(out, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Not started: '), e.message));
      }
    });
    replace(root.querySelector('#start-form'), form);
  }).catch((e) => replace(out, h('div', { class: 'error-box', role: 'alert' }, e.message)));
  return {};
}
