// templates: the list, a template's YAML (any version), upload (import)
// with the same line/step/field errors as the CLI, and download (export).
import { get, getData, send } from '../api.js';
import { h, replace, time, table, link } from '../dom.js';

/** issueList shows an import refusal: each fault with where it is, worded
 * as the CLI words it (line N: step "S": field: reason). */
export function issueList(e) {
  const p = e.problem || {};
  const issues = p.errors || [];
  return h('div', { class: 'error-box', id: 'import-error', role: 'alert' },
    h('strong', {}, `Refused (${e.status}): `), p.title || e.message, p.field ? ` — ${p.field}` : '',
    issues.length ? h('ul', { class: 'issues' }, issues.map((i) => h('li', {},
      h('span', { class: 'where' }, [i.line ? `line ${i.line}` : '', i.step ? `step "${i.step}"` : '', i.field || ''].filter(Boolean).join(': ') || 'template'),
      `: ${i.reason}`))) : (p.detail ? h('div', {}, p.detail) : null));
}

function download(name, version, source) {
  const ext = source.trimStart().startsWith('{') ? 'json' : 'yaml';
  const url = URL.createObjectURL(new Blob([source], { type: ext === 'json' ? 'application/json' : 'application/yaml' }));
  const a = h('a', { href: url, download: `${name}-v${version}.${ext}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function templateList(root, ctx) {
  const list = h('div', { id: 'template-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const src = h('textarea', { id: 'template-source', name: 'source', spellcheck: 'false', placeholder: 'name: my-template\nsteps:\n  - {id: hello, log: "hi"}' });
  const file = h('input', { type: 'file', id: 'template-file', accept: '.yaml,.yml,.json,application/yaml,application/json' });
  file.addEventListener('change', async () => { if (file.files[0]) src.value = await file.files[0].text(); });
  const result = h('div', { id: 'import-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'form-grid', id: 'import' },
    h('label', {}, 'From a file', file), h('label', {}, 'Template (YAML or JSON)', src),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'import-submit' }, 'Import')), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = src.value;
    try {
      const ans = await send('POST', '/v1/templates', text, { contentType: text.trimStart().startsWith('{') ? 'application/json' : 'application/yaml' });
      const t = ans.template;
      replace(result, h('p', { class: 'ok-box', id: 'import-ok' }, ans.created ? `Imported ${t.name} version ${t.version}. ` : `${t.name} version ${t.version} is identical: nothing changed. `,
        link(`#/templates/${encodeURIComponent(t.name)}`, 'View it')));
      ctx.refreshNow();
    } catch (e) {
      replace(result, issueList(e));
    }
  });
  root.append(h('h1', {}, 'Templates'), list, h('h2', {}, 'Import a template'), form);
  return {
    async refresh() {
      const { data, changed } = await get('/v1/templates');
      if (!changed && list.dataset.ready) return;
      list.dataset.ready = '1';
      const items = [...(data.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      replace(list, table(['Name', '#Version', 'Description', 'Imported', ''],
        items.map((t) => [link(`#/templates/${encodeURIComponent(t.name)}`, t.name), String(t.version), t.description || '', time(t.created_at),
          h('a', { class: 'button ghost', href: `#/start/${encodeURIComponent(t.name)}` }, 'Start…')])));
    },
  };
}

export function templateView(root, ctx) {
  const name = ctx.params[0];
  const q = ctx.query;
  const version = q.get('version') || '';
  const head = h('h1', {}, `Template ${name}`);
  const body = h('div', { id: 'template-view' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(head, body);
  return {
    async refresh() {
      const { data: t, changed } = await get(`/v1/templates/${encodeURIComponent(name)}${version ? `?version=${version}` : ''}`);
      if (!changed && body.dataset.ready) return;
      body.dataset.ready = '1';
      let latest = t.version;
      if (version) latest = (await getData(`/v1/templates/${encodeURIComponent(name)}`)).version;
      const versions = h('select', { id: 'template-version', 'aria-label': 'Version' },
        Array.from({ length: latest }, (_, i) => latest - i).map((v) => h('option', { value: String(v), selected: v === t.version }, `version ${v}${v === latest ? ' (latest)' : ''}`)));
      versions.addEventListener('change', () => ctx.navigate(`#/templates/${encodeURIComponent(name)}?version=${versions.value}`));
      const dl = h('button', { class: 'ghost', id: 'download', type: 'button' }, 'Download');
      dl.addEventListener('click', () => download(t.name, t.version, t.source));
      replace(body,
        h('div', { class: 'actions' }, versions, dl, h('a', { class: 'button', href: `#/start/${encodeURIComponent(name)}` }, 'Start…')),
        t.description ? h('p', {}, t.description) : null,
        h('p', { class: 'muted' }, `Imported ${time(t.created_at)}.`),
        h('pre', { class: 'yaml', id: 'template-yaml' }, t.source));
    },
  };
}
