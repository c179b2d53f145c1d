// triggers: schedules with their config and next fire times, watchers
// with their last event, error and active copy; fire a schedule now,
// pause and resume a trigger (each through a confirmation; operators).
import { get, send } from '../api.js';
import { h, replace, badge, time, ago, table, errorText } from '../dom.js';
import { confirmDialog, act } from '../ui.js';

/** hidden state keys: what the columns show already. */
const shown = new Set(['spec', 'paused_at', 'passes', 'baselined']);

/** stateText shows a trigger's kind-specific state compactly: a schedule's
 * last fire time, a watcher's cursor. */
function stateText(st) {
  if (!st || typeof st !== 'object') return '—';
  const entries = Object.entries(st).filter(([k]) => !shown.has(k));
  const parts = entries.filter(([, v]) => v !== '' && v !== null && typeof v !== 'object').map(([k, v]) => `${k}: ${k === 'last' || k.endsWith('_at') ? time(v) : v}`);
  if (parts.length === entries.length) return parts.length ? parts.join(' · ') : '—';
  return h('details', { 'data-key': `state:${JSON.stringify(Object.keys(st))}` }, h('summary', {}, 'state'), h('pre', {}, JSON.stringify(st, null, 2)));
}

/** plan shows a schedule's reported config and its next fire times. */
function plan(t) {
  if (t.kind !== 'schedule') return h('span', { class: 'muted' }, '—');
  const s = t.schedule;
  if (!s) return h('span', { class: 'muted' }, 'not reported yet');
  return h('div', { class: 'plan' },
    h('code', {}, s.cron), ` ${s.timezone || 'UTC'} → ${s.template}`, s.disabled ? [' ', badge('canceled', 'disabled')] : null,
    (t.next || []).length ? h('ol', { class: 'next' }, t.next.map((n) => h('li', {}, time(n)))) : null);
}

export function triggers(root) {
  const body = h('div', { id: 'trigger-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('h1', {}, 'Triggers'), body,
    h('p', { class: 'help' }, 'Active copy: the holder of a standby trigger\'s lease; concurrent copies hold none. Next: the schedule\'s next fire times from now, by the server from the config its scheduler reported. A paused trigger starts nothing: what it sees meanwhile is recorded as skipped and not started after resume.'));

  async function pause(t, paused) {
    const ok = await confirmDialog(paused
      ? { title: `Pause trigger ${t.name}?`, text: `The ${t.kind} starts no workflow until resumed; what it sees meanwhile is recorded as skipped and is not started later.`, confirm: 'Pause', keep: 'Keep running' }
      : { title: `Resume trigger ${t.name}?`, text: `The ${t.kind} starts workflows again from its next event.`, confirm: 'Resume', keep: 'Keep paused', danger: false });
    if (ok && await act(() => send('POST', `/v1/triggers/${encodeURIComponent(t.name)}/${paused ? 'pause' : 'resume'}`))) body.dataset.ready = '';
  }
  async function fireNow(t) {
    const ok = await confirmDialog({ title: `Fire schedule ${t.name} now?`, text: `One ${t.schedule.template} workflow starts now, besides the planned fires.`, confirm: 'Fire now', keep: 'Keep', danger: false });
    if (!ok) return;
    let res = null;
    if (await act(async () => { res = await send('POST', `/v1/triggers/${encodeURIComponent(t.name)}/fire-now`); })) {
      const rec = res && (res.records || [])[0];
      body.dataset.ready = '';
      if (rec && rec.instance_id) location.hash = `#/workflows/${rec.instance_id}`;
    }
  }

  function actions(t) {
    const name = t.name.replace(/[^a-zA-Z0-9_-]/g, '_');
    return h('div', { class: 'actions' },
      t.kind === 'schedule' ? h('button', { class: 'act', id: `fire-${name}`, disabled: !t.schedule || t.paused, title: t.schedule ? '' : 'the scheduler has not reported its config yet', onclick: () => fireNow(t) }, 'Fire now…') : null,
      t.paused
        ? h('button', { class: 'act', id: `resume-${name}`, onclick: () => pause(t, false) }, 'Resume…')
        : h('button', { class: 'ghost act', id: `pause-${name}`, onclick: () => pause(t, true) }, 'Pause…'));
  }

  return {
    async refresh() {
      const { data, changed } = await get('/v1/triggers');
      if (!changed && body.dataset.ready) return;
      body.dataset.ready = '1';
      const items = [...(data.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      replace(body, table(['Name', 'Kind', 'Status', 'Actions', 'Active copy', 'Schedule and next fires', 'State', 'Last event', 'Mirrored', 'Last error'],
        items.map((t) => [h('strong', {}, t.name), t.kind,
          t.paused ? [badge('draining', 'paused'), h('div', { class: 'help' }, `since ${time(t.paused_at)}`)] : badge('live', 'running'),
          actions(t),
          t.active ? [badge('active'), ' ', t.active] : t.mode === 'concurrent' ? 'all (concurrent)' : h('span', { class: 'muted' }, '—'),
          plan(t), stateText(t.state), t.last_event_at ? `${time(t.last_event_at)} (${ago(t.last_event_at)})` : '—', String(t.mirrored),
          t.last_error ? [badge('failed', 'error'), ' ', errorText(t.last_error), h('div', { class: 'help' }, time(t.error_at))] : '—']),
        (k) => (items[k].last_error ? 'row-failed' : items[k].paused ? 'row-paused' : '')));
    },
  };
}
