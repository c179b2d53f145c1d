// overview: counts by state, the last hour's throughput and failure rate,
// and the roles that have no active copy.
import { get, getData } from '../api.js';
import { h, replace, badge, time, ago, link } from '../dom.js';
import { bins, throughputChart } from '../chart.js';

const wfStates = ['pending', 'running', 'succeeded', 'failed', 'canceled'];
const jobStates = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const chartEvery = 15000; // the chart reads up to chartPages pages: not every poll
const chartPages = 5;

function tiles(id, counts, states, base) {
  return h('div', { class: 'tiles', id }, states.map((st) =>
    h('a', { class: `tile st-${st}${st === 'failed' && counts[st] ? ' hot' : ''}`, href: `${base}?state=${st}`, 'data-state': st },
      h('span', { class: 'n' }, String(counts[st] ?? 0)), h('span', { class: 'l' }, badge(st)))));
}

/** lastHourJobs reads the jobs created in the last hour (newest first, at
 * most chartPages pages) and says whether it had to stop early. */
async function lastHourJobs(now) {
  const since = new Date(now - 3600e3).toISOString();
  let out = [], after = '', truncated = false;
  for (let i = 0; i < chartPages; i++) {
    const page = await getData(`/v1/jobs?created_after=${encodeURIComponent(since)}&limit=1000${after ? `&after=${after}` : ''}`);
    out = out.concat(page.items);
    if (!page.next) return { jobs: out, truncated };
    after = page.next;
  }
  truncated = true;
  return { jobs: out, truncated };
}

export function overview(root) {
  const server = h('p', { class: 'muted', id: 'server' });
  const wf = h('div'), jobs = h('div'), chart = h('div', { id: 'chart' }, h('p', { class: 'muted' }, 'Loading…')), roles = h('div', { id: 'roles' });
  root.append(
    h('h1', {}, 'Overview'), server,
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Workflows'), wf),
      h('section', { class: 'panel' }, h('h2', {}, 'Jobs'), jobs)),
    h('div', { class: 'grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Last hour: jobs finished and failure rate'), chart),
      h('section', { class: 'panel' }, h('h2', {}, 'Roles without an active copy'), roles)));
  let chartAt = 0;

  async function drawChart() {
    const now = Date.now();
    const { jobs: list, truncated } = await lastHourJobs(now);
    const data = bins(list, now, 3600e3, 12);
    const ok = data.reduce((a, d) => a + d.ok, 0), bad = data.reduce((a, d) => a + d.bad, 0);
    replace(chart,
      h('p', {}, h('strong', {}, `${ok + bad} finished`), ` (busiest 5 minutes: ${Math.max(...data.map((d) => d.ok + d.bad))}), `,
        h('strong', {}, `${bad} failed`), ` — failure rate ${ok + bad ? ((100 * bad) / (ok + bad)).toFixed(1) : '0.0'}%`),
      throughputChart(data, { minutes: 60 }),
      h('p', { class: 'help' }, `Jobs created in the last hour, by the 5-minute interval they ended in${truncated ? `; the newest ${list.length} only` : ''}.`));
  }

  return {
    async refresh() {
      const [st, leases, ...wfc] = await Promise.all([
        getData('/v1/status'), get('/v1/leases'),
        ...wfStates.map((s) => getData(`/v1/workflows?state=${s}&limit=1`)),
      ]);
      const s = st.server || {};
      replace(server, `Server ${s.id || '?'} · version ${s.version || '?'} · ${s.db || '?'} · `,
        s.ready ? badge('live', 'ready') : badge('failed', `not ready: ${s.db_error || ''}`), ` · started ${ago(s.started_at)}`);
      const wcounts = {};
      wfStates.forEach((x, i) => { wcounts[x] = wfc[i].total; });
      replace(wf, tiles('wf-counts', wcounts, wfStates, '#/workflows'));
      replace(jobs, tiles('job-counts', st.jobs || {}, jobStates, '#/jobs'));
      {
        const now = Date.parse(s.now) || Date.now();
        const idle = (leases.data.items || []).filter((l) => !l.holder || Date.parse(l.until) <= now);
        const groups = (leases.data.items || []).length;
        replace(roles, idle.length === 0
          ? h('p', { class: 'ok-box', id: 'roles-ok' }, badge('active', 'all active'), groups
            ? (groups === 1 ? ' The one standby group has an active copy.' : ` Each of the ${groups} standby groups has an active copy.`) : ' No standby groups are running.')
          : h('ul', {}, idle.map((l) => h('li', {}, badge('none', 'no active copy'), ' ', h('strong', {}, l.name),
            h('span', { class: 'muted' }, ` — last held by ${l.holder || 'nobody'}, lease ended ${ago(l.until, now)} (${time(l.until)})`)))));
        const silent = (st.processors || []).filter((p) => p.gone);
        if (silent.length) {
          roles.append(h('h2', {}, 'Processors without a heartbeat'), h('ul', { id: 'stale-processors' }, silent.map((p) =>
            h('li', {}, badge('stale', 'gone'), ' ', h('strong', {}, p.id), h('span', { class: 'muted' }, ` — last heartbeat ${ago(p.last_seen, now)}`)))));
        }
        roles.append(h('p', { class: 'help' }, 'From the standby leases and processor heartbeats; see ', link('#/farm', 'Farm'), ' for every copy.'));
      }
      if (Date.now() - chartAt > chartEvery) {
        chartAt = Date.now();
        await drawChart();
      }
    },
  };
}
