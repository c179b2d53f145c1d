// farm: the processors with their heartbeat age, quota and running jobs per
// type, and the standby leases (which copy of a group is active).
import { getData } from '../api.js';
import { h, replace, badge, time, ago, table } from '../dom.js';

/** slots lists a processor's types with its quota, the slots it says it
 * uses (its own count, as of its last announcement), the free ones, and
 * the jobs the core DB has running on it. */
function slots(p) {
  const quota = p.quota || {}, used = p.used || {}, running = p.running_by_type || {};
  const kinds = [...new Set([...Object.keys(quota), ...Object.keys(running)])].sort();
  if (!kinds.length) return '—';
  return h('ul', { class: 'slots' }, kinds.map((k) => {
    const q = quota[k], u = used[k];
    const free = q === undefined || u === undefined ? '—' : String(Math.max(0, q - u));
    return h('li', { 'data-type': k }, h('strong', {}, k), `: ${u ?? '—'} used, ${free} free of ${q ?? '—'} · ${running[k] || 0} running`);
  }));
}

export function farm(root) {
  const procs = h('div', { id: 'processors' }), leases = h('div', { id: 'leases' }), types = h('div', { id: 'types' }), server = h('div');
  root.append(h('h1', {}, 'Farm'), h('h2', {}, 'Processors'), procs,
    h('p', { class: 'help' }, 'Slots: the processor\'s own count at its last announcement (used, free of its quota); running: the jobs the core DB has running on it now. A processor silent for three of its announcement intervals is gone.'),
    h('h2', {}, 'Standby groups (leases)'), leases,
    h('h2', {}, 'Job types'), types, h('h2', {}, 'This server'), server);
  return {
    async refresh() {
      const [st, ls] = await Promise.all([getData('/v1/status'), getData('/v1/leases')]);
      const now = Date.parse(st.server.now) || Date.now();
      const list = [...(st.processors || [])].sort((a, b) => a.id.localeCompare(b.id));
      replace(procs, table(['Processor', 'Status', 'Heartbeat', 'Slots and running per type', 'Host', 'Version', 'Started'],
        list.map((p) => {
          const status = p.gone ? badge('stale', 'gone') : p.draining ? badge('draining') : badge('live');
          return [h('strong', {}, p.id), status, ago(p.last_seen, now), slots(p), p.host || '—', p.version || '—', time(p.started_at)];
        }), (k) => (list[k].gone ? 'row-failed' : '')));
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
