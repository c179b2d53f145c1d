// farm: the processors with their heartbeat age, quota and running jobs per
// type, and the standby leases (which copy of a group is active).
import { getData } from '../api.js';
import { h, replace, badge, time, ago, table } from '../dom.js';

/** staleAfter: a processor heartbeats at a third of its lease TTL (10 s
 * by default); one silent for this long has stopped. */
export const staleAfter = 45e3;

export function farm(root) {
  const procs = h('div', { id: 'processors' }), leases = h('div', { id: 'leases' }), types = h('div', { id: 'types' }), server = h('div');
  root.append(h('h1', {}, 'Farm'), h('h2', {}, 'Processors'), procs, h('h2', {}, 'Standby groups (leases)'), leases,
    h('h2', {}, 'Job types'), types, h('h2', {}, 'This server'), server);
  return {
    async refresh() {
      const [st, ls, running] = await Promise.all([getData('/v1/status'), getData('/v1/leases'), getData('/v1/jobs?state=running&limit=1000')]);
      const now = Date.parse(st.server.now) || Date.now();
      const perProc = new Map(); // processor -> type -> running
      for (const j of running.items) {
        const m = perProc.get(j.processor) || new Map();
        m.set(j.type, (m.get(j.type) || 0) + 1);
        perProc.set(j.processor, m);
      }
      const list = [...(st.processors || [])].sort((a, b) => a.id.localeCompare(b.id));
      replace(procs, table(['Processor', 'Host', 'Status', 'Heartbeat', 'Started', 'Quota and running per type', '#Running'],
        list.map((p) => {
          const age = now - Date.parse(p.last_seen);
          const status = p.draining ? badge('draining') : age > staleAfter ? badge('stale', 'stale') : badge('live');
          const run = perProc.get(p.id) || new Map();
          const kinds = [...new Set([...Object.keys(p.quota || {}), ...run.keys()])].sort();
          return [h('strong', {}, p.id), p.host || '—', status, ago(p.last_seen, now), time(p.started_at),
            kinds.length ? h('ul', {}, kinds.map((k) => h('li', {}, `${k}: ${run.get(k) || 0} running of ${p.quota?.[k] ?? '—'}`))) : '—',
            String(p.running)];
        }), (k) => {
          const p = list[k];
          return now - Date.parse(p.last_seen) > staleAfter ? 'row-failed' : '';
        }),
      running.next ? h('p', { class: 'help' }, 'Per-type counts read the first 1000 running jobs only.') : null);
      const lsList = [...(ls.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      replace(leases, table(['Group', 'Active copy', 'Status', 'Epoch', 'Lease until'],
        lsList.map((l) => {
          const live = l.holder && Date.parse(l.until) > now;
          return [h('strong', {}, l.name), l.holder || '—', live ? badge('active') : badge('none', 'no active copy'), String(l.epoch), `${time(l.until)}`];
        })));
      replace(types, table(['Type', '#Max running', '#Rate /s', '#Burst'],
        (st.types || []).map((t) => [t.type, String(t.max_running || '∞'), String(t.rate || '—'), String(t.burst || '—')])));
      const s = st.server;
      replace(server, h('p', {}, `${s.id} · version ${s.version} · ${s.db} · `, s.ready ? badge('live', 'ready') : badge('failed', 'not ready'),
        ` · started ${time(s.started_at)}`));
    },
  };
}
