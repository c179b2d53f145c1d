// triggers: schedules and watchers with their state, last event, last
// error and active copy.
import { get } from '../api.js';
import { h, replace, badge, time, ago, table, errorText } from '../dom.js';

/** stateText shows a trigger's kind-specific state compactly: a schedule's
 * last fire time, a watcher's cursor. */
function stateText(st) {
  if (!st || typeof st !== 'object') return '—';
  const parts = Object.entries(st).filter(([, v]) => v !== '' && v !== null && typeof v !== 'object').map(([k, v]) => `${k}: ${k === 'last' || k.endsWith('_at') ? time(v) : v}`);
  return parts.length ? parts.join(' · ') : h('details', {}, h('summary', {}, 'state'), h('pre', {}, JSON.stringify(st, null, 2)));
}

export function triggers(root) {
  const body = h('div', { id: 'trigger-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', {}, 'Triggers'), body,
    h('p', { class: 'help' }, 'Active copy: the holder of a standby trigger\'s lease; concurrent copies hold none. Next fire times are not reported by the server yet; the last fire time is.'));
  return {
    async refresh() {
      const { data, changed } = await get('/v1/triggers');
      if (!changed && body.dataset.ready) return;
      body.dataset.ready = '1';
      const items = [...(data.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      replace(body, table(['Name', 'Kind', 'Active copy', 'State', 'Last event', 'Mirrored', 'Last error'],
        items.map((t) => [h('strong', {}, t.name), t.kind, t.active ? [badge('active'), ' ', t.active] : h('span', { class: 'muted' }, '—'),
          stateText(t.state), t.last_event_at ? `${time(t.last_event_at)} (${ago(t.last_event_at)})` : '—', String(t.mirrored),
          t.last_error ? [badge('failed', 'error'), ' ', errorText(t.last_error), h('div', { class: 'help' }, time(t.error_at))] : '—']),
        (k) => (items[k].last_error ? 'row-failed' : '')));
    },
  };
}
