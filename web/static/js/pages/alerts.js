// alerts: the firing, pending and recently resolved alerts with the
// delivery of their notifications to each receiver, the configured rules
// and receivers, and (operators) a test notification to every receiver.
import { get, send, ApiError } from '../api.js';
import { h, replace, badge, time, ago, table, errorText, count } from '../dom.js';
import { confirmDialog, act } from '../ui.js';

/** mayAct reports whether the session's role may make operator calls
 * (no login required: anyone may). */
export function mayAct() {
  const role = document.body.dataset.role || '';
  return role === '' || role === 'admin' || role === 'operator';
}

/** delivery describes one notification to one receiver. */
function delivery(d) {
  let state;
  if (d.sent_at) state = [badge('succeeded', 'sent'), ` ${time(d.sent_at)}`];
  else if (d.gave_up) state = [badge('failed', 'gave up')];
  else if (d.attempts) state = [badge('pending', 'retrying'), d.next_at ? ` next ${time(d.next_at)}` : ''];
  else state = [badge('queued', 'due')];
  return h('li', { 'data-receiver': d.receiver },
    h('strong', {}, d.receiver), ` (${d.notification}) `, state,
    h('span', { class: 'muted' }, ` · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}${d.batch ? ` · in a summary of ${d.batch}` : ''}`),
    d.last_error ? [h('br'), errorText(d.last_error)] : null);
}

export function alerts(root) {
  const head = h('p', { class: 'muted', id: 'alert-counts' });
  const list = h('div', { id: 'alert-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const config = h('div', { id: 'alert-config' });
  const results = h('div', { id: 'alert-test-results' });
  const actions = h('div', { class: 'actions' });
  if (mayAct()) {
    const test = h('button', { class: 'act', id: 'alert-test', type: 'button' }, 'Send test notification…');
    test.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: 'Send a test notification?', text: 'Every configured receiver gets one test call now (a webhook POST or a mail).',
        confirm: 'Send', keep: 'Do not send', danger: false,
      });
      if (!ok) return;
      test.disabled = true;
      replace(results, h('p', { class: 'muted' }, 'Sending…'));
      let res = null;
      await act(async () => { res = await send('POST', '/v1/alerts/test'); });
      test.disabled = false;
      if (!res) { replace(results); return; }
      const rows = (res.results || []).map((r) => [r.receiver, r.ok ? badge('succeeded', 'sent') : badge('failed', 'failed'), r.duration || '—', errorText(r.error)]);
      replace(results, h('h2', {}, 'Test notification'), table(['Receiver', 'Result', 'Took', 'Error'], rows, (k) => (res.results[k].ok ? 'row-ok' : 'row-failed')),
        h('p', { class: 'help' }, `Sent ${time(new Date().toISOString())}.`));
    });
    actions.append(test);
  }
  root.append(h('h1', {}, 'Alerts'), head, actions, results, list, config);
  return {
    async refresh() {
      let r;
      try {
        r = await get('/v1/alerts');
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          replace(list, h('p', { class: 'muted' }, 'This server evaluates no alerts.'));
          return;
        }
        throw e;
      }
      const { data, changed } = r;
      if (!changed && list.dataset.ready) return;
      list.dataset.ready = '1';
      const items = data.items || [];
      replace(head, h('strong', {}, `${count(data.firing)} firing`), ` · ${count(data.pending)} pending · ${count(data.total)} listed (open, or changed in the last day)`);
      const rows = items.map((a) => [badge(a.state), [a.rule, h('div', { class: 'help' }, a.kind)], [h('strong', {}, a.subject), h('div', {}, a.summary)],
        [time(a.since), h('div', { class: 'help' }, ago(a.since))], time(a.fired_at), time(a.resolved_at),
        (a.deliveries || []).length ? h('ul', { class: 'deliveries' }, a.deliveries.map(delivery))
          : h('span', { class: 'muted' }, a.state === 'pending' ? 'not yet notified' : '—')]);
      replace(list, table(['State', 'Rule', 'Subject and description', 'Since', 'Fired', 'Resolved', 'Notifications'], rows, (k) => `row-${items[k].state}`));
      const rules = data.rules || [];
      const recv = data.receivers || [];
      replace(config,
        h('div', { class: 'grid' },
          h('section', {}, h('h2', {}, 'Rules'), rules.length
            ? table(['Name', 'Kind', 'Match', 'For', 'Receivers', '#Per minute'], rules.map((x) => [x.name, x.kind, (x.match || []).join(', ') || 'everything',
              x.for || '—', (x.receivers || []).join(', ') || 'every receiver', String(x.max_per_minute)]))
            : h('p', { class: 'muted' }, 'No alert rules are configured (the configuration file\'s alerts section).')),
          h('section', {}, h('h2', {}, 'Receivers'), recv.length
            ? h('ul', { id: 'alert-receivers' }, recv.map((n) => h('li', {}, n)))
            : h('p', { class: 'muted' }, 'No receivers are configured.'))));
    },
  };
}
