// overview: counts by state, the active alerts, the last hour's throughput
// and failure rate, and the roles that have no active copy.
import { get, getData, ApiError } from '../api.js';
import { h, replace, badge, time, ago, link, count } from '../dom.js';
import { bins, throughputChart } from '../chart.js';

const wfStates = ['pending', 'running', 'succeeded', 'failed', 'canceled'];
const jobStates = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const chartEvery = 15000; // the chart reads up to chartPages pages: not every poll
const chartPages = 5;

/** tiles shows a count per state; capped (a Set of states) shows those
 * whose count the server stopped at its cap as "10,000+". */
function tiles(id, counts, states, base, capped = new Set()) {
  return h('div', { class: 'tiles', id }, states.map((st) =>
    h('a', { class: `tile st-${st}${st === 'failed' && counts[st] ? ' hot' : ''}`, href: `${base}?state=${st}`, 'data-state': st },
      h('span', { class: 'n' }, count(counts[st], capped.has(st))), h('span', { class: 'l' }, badge(st)))));
}

/** alertsOf reads the alerts, or null when the server serves none. */
async function alertsOf() {
  try {
    return await getData('/v1/alerts');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** activeAlerts lists the firing alerts: subject, summary, since. */
function activeAlerts(list) {
  if (!list) return h('p', { class: 'muted' }, 'This server evaluates no alerts.');
  const firing = (list.items || []).filter((a) => a.state === 'firing');
  const pending = (list.items || []).filter((a) => a.state === 'pending').length;
  const more = pending ? h('span', { class: 'muted' }, ` ${pending} more pending.`) : null;
  if (!firing.length) {
    return h('p', { class: 'ok-box', id: 'alerts-ok' }, badge('active', 'none firing'),
      (list.rules || []).length ? ' No alert is firing.' : ' No alert rules are configured.', more);
  }
  return [h('ul', { class: 'issues', id: 'active-alerts' }, firing.map((a) => h('li', { 'data-key': a.key },
    badge('firing'), ' ', h('strong', { class: 'subject' }, a.subject), ' ', h('span', { class: 'summary' }, a.summary),
    h('span', { class: 'muted' }, ` — rule ${a.rule}, since ${time(a.since)} (${ago(a.since)})`)))), more ? h('p', {}, more) : null];
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
  const wf = h('div'), jobs = h('div'), alerts = h('div', { id: 'alerts' }), chart = h('div', { id: 'chart' }, h('p', { class: 'muted' }, 'Loading…')), roles = h('div', { id: 'roles' });
  root.append(
    h('h1', {}, 'Overview'), server,
    h('section', { class: 'panel alerts-panel' }, h('h2', {}, 'Active alerts'), alerts),
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
      const [st, leases, al, ...wfc] = await Promise.all([
        getData('/v1/status'), get('/v1/leases'), alertsOf(),
        ...wfStates.map((s) => getData(`/v1/workflows?state=${s}&limit=1`)),
      ]);
      const s = st.server || {};
      replace(server, `Server ${s.id || '?'} · version ${s.version || '?'} · ${s.db || '?'} · `,
        s.ready ? badge('live', 'ready') : badge('failed', `not ready: ${s.db_error || ''}`), ` · started ${ago(s.started_at)}`);
      const wcounts = {}, wcapped = new Set();
      wfStates.forEach((x, i) => {
        wcounts[x] = wfc[i].total;
        if (wfc[i].total_capped) wcapped.add(x);
      });
      replace(wf, tiles('wf-counts', wcounts, wfStates, '#/workflows', wcapped));
      replace(jobs, tiles('job-counts', st.jobs || {}, jobStates, '#/jobs', new Set(st.jobs_capped || [])));
      replace(alerts, activeAlerts(al), al ? h('p', { class: 'help' }, 'See ', link('#/alerts', 'Alerts'), ' for pending and resolved alerts and their notifications.') : null);
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
