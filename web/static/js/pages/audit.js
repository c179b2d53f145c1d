// audit: the audit trail (admins only), newest first — who did what,
// where, and how it ended — filtered by principal and route, paged by the
// server's cursor.
import { get } from '../api.js';
import { h, replace, time, table, errorText } from '../dom.js';

const pageSize = 50;

/** isAdmin reports whether the session may read the audit trail (no
 * login required: anyone may). */
export function isAdmin() {
  const role = document.body.dataset.role || '';
  return role === '' || role === 'admin';
}

export function audit(root, ctx) {
  const q = ctx.query;
  root.append(h('h1', {}, 'Audit trail'));
  if (!isAdmin()) {
    root.append(h('p', { class: 'muted', id: 'audit-denied' }, 'Only an admin token reads the audit trail.'));
    return { async refresh() {} };
  }
  const form = h('form', { class: 'filters', id: 'audit-filters' },
    h('label', {}, 'Principal', h('input', { name: 'principal', id: 'f-principal', value: q.get('principal') || '', size: 18, placeholder: 'a token name' })),
    h('label', {}, 'Route', h('input', { name: 'route', id: 'f-route', value: q.get('route') || '', size: 34, placeholder: 'e.g. POST /v1/jobs/{id}/cancel' })),
    h('button', { type: 'submit' }, 'Apply'), h('a', { class: 'button ghost', href: '#/audit' }, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v.trim()) p.set(k, v.trim());
    ctx.navigate(`#/audit?${p}`);
  });
  const body = h('div', { id: 'audit-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(form, body);
  const p = new URLSearchParams();
  for (const k of ['principal', 'route', 'cursor']) if (q.get(k)) p.set(k, q.get(k));
  p.set('limit', /^\d+$/.test(q.get('limit') || '') ? q.get('limit') : String(pageSize));
  return {
    async refresh() {
      const { data, changed } = await get(`/v1/audit?${p}`);
      if (!changed && body.dataset.ready) return;
      body.dataset.ready = '1';
      const items = data.items || [];
      const next = new URLSearchParams(q);
      next.set('cursor', data.next || '');
      const first = new URLSearchParams(q);
      first.delete('cursor');
      replace(body, table(['Time', 'Principal', 'Role', 'Call', 'Target', '#Status', 'Outcome', 'Remote'],
        items.map((e) => [time(e.at), e.principal, e.role || '—', h('code', {}, e.route), e.target || '—', String(e.status),
          e.status >= 400 ? errorText(e.outcome) : e.outcome || '—', e.remote || '—']), (k) => (items[k].status >= 400 ? 'row-failed' : undefined)),
      h('div', { class: 'pager' }, h('span', {}, `${items.length} shown, newest first`),
        q.get('cursor') ? h('a', { class: 'button ghost', href: `#/audit?${first}` }, '⇤ Newest') : null,
        data.next ? h('a', { class: 'button ghost', id: 'audit-older', href: `#/audit?${next}` }, 'Older →') : null));
    },
  };
}
