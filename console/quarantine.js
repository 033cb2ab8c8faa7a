// Quarantine review: the list by code, stage and time; an entry with its reason in words and, for
// header findings, the element path; the before/after previews with drawn regions; and the actions
// (requeue, requeue with another profile or options, release with drawn regions, save as signature,
// download the original, delete with confirmation).
import { act, api, confirmDialog, fmt, h, pageTitle, pager, toast } from './core.js';
import { viewer } from './viewer.js';

export async function quarantineListPage(params = new URLSearchParams()) {
  let page = Number(params.get('page')) || 1;
  const code = h('select', { id: 'q-code' });
  const stage = h('select', { id: 'q-stage' });
  const results = h('div.results', { 'aria-live': 'polite' });
  const options = (sel, values, chosen) => sel.replaceChildren(h('option', { value: '' }, 'any'), ...values.map((v) => h('option', { value: v, selected: v === chosen }, v)));
  let wanted = { code: params.get('code') || '', stage: params.get('stage') || '' };
  async function load(p = page) {
    page = p;
    const qs = new URLSearchParams({ page: String(page), size: '25', code: wanted.code, stage: wanted.stage });
    const r = await api(`/api/console/quarantine?${qs}`);
    options(code, r.codes, wanted.code);
    options(stage, r.stages, wanted.stage);
    results.replaceChildren(
      h('table.quarantine',
        h('caption.sr', 'Quarantined objects'),
        h('thead', h('tr', ['When', 'Code', 'Stage', 'Reason', 'Element', 'Source', 'Requeues'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', r.entries.length ? r.entries.map((e) => h('tr', { dataset: { entry: e.id } },
          h('th', { scope: 'row' }, h('a', { href: `#/quarantine/${e.id}` }, fmt.time(e.quarantinedAt))),
          h('td', h('code', e.code)), h('td', e.stage), h('td.reason', e.words),
          h('td', e.elementPath ? h('code', e.elementPath) : ''), h('td', e.origin ? e.origin.kind : ''), h('td.num', fmt.int(e.requeues || 0)))) : h('tr', h('td.muted', { colspan: 7 }, 'Nothing in quarantine.')))),
      pager(r.total, r.page, r.size, (n) => load(n).catch(() => undefined)));
  }
  const refilter = () => { wanted = { code: code.value, stage: stage.value }; act(null, 'Filtering the quarantine', () => load(1)); };
  code.addEventListener('change', refilter);
  stage.addEventListener('change', refilter);
  await load();
  let pending;
  return {
    node: h('div', pageTitle('Quarantine', h('span.muted', 'Objects stopped by a stage, newest first')),
      h('form.filters', { onsubmit: (ev) => ev.preventDefault() }, h('label', { for: 'q-code' }, 'Code'), code, h('label', { for: 'q-stage' }, 'Stage'), stage), results),
    changed(c) {
      if (!c.quarantine || pending) return;
      pending = load().catch(() => undefined).finally(() => { pending = undefined; });
    },
  };
}

export async function quarantineEntryPage(id) {
  const r = await api(`/api/console/quarantine/${encodeURIComponent(id)}`);
  const e = r.entry;
  const base = `/api/console/quarantine/${encodeURIComponent(id)}`;
  const view = r.image && r.image.rows
    ? viewer({
      frames: r.image.frames, width: r.image.columns, height: r.image.rows, drawable: true,
      src: (v, n, regions) => `${base}/frames/${n}?view=${v}${regions ? `&regions=${encodeURIComponent(regions)}` : ''}`,
      beforeLabel: 'Original as received', afterLabel: 'After: drawn regions masked (OCR masking runs again on release)',
    })
    : undefined;
  const gone = (msg) => { toast(msg, 'info'); location.hash = '#/quarantine'; };

  const requeue = h('button', { type: 'button', id: 'requeue', onclick: () => act(requeue, 'Requeueing', async () => { await api(`/api/quarantine/${id}/requeue`, { method: 'POST' }); gone('Requeued under the configured profile.'); }) }, 'Requeue');
  const profile = h('input', { id: 'rq-profile', name: 'profile', placeholder: 'e.g. basic or /path/profile.yaml' });
  const opts = h('input', { id: 'rq-options', name: 'options', placeholder: 'e.g. clean-pixel-data, retain-uids' });
  const requeueWith = h('form.stack', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const body = {};
      if (profile.value.trim()) body.profile = profile.value.trim();
      if (opts.value.trim()) body.options = opts.value.split(',').map((o) => o.trim()).filter(Boolean);
      act(ev.submitter, 'Requeueing with another profile', async () => {
        const out = await api(`/api/quarantine/${id}/requeue`, { method: 'POST', body });
        gone(`Requeued under ${out.profile}${out.options.length ? ` (${out.options.join(', ')})` : ''}.`);
      });
    },
  }, h('label', { for: 'rq-profile' }, 'Profile'), profile, h('label', { for: 'rq-options' }, 'Options (comma-separated)'), opts, h('button', { type: 'submit' }, 'Requeue with these'));
  const del = h('button.danger', {
    type: 'button', id: 'delete',
    onclick: async () => {
      if (!(await confirmDialog('Delete this object for good? The original is removed from the quarantine and cannot be requeued.', 'Delete'))) return;
      act(del, 'Deleting', async () => { await api(`/api/quarantine/${id}`, { method: 'DELETE' }); gone('Deleted.'); });
    },
  }, 'Delete…');
  const download = h('a.button.quiet', { href: `${base}/original`, download: `quarantine-${id.slice(0, 16)}.dcm` }, 'Download original (PHI)');
  const release = view && h('button', {
    type: 'button', id: 'release',
    onclick: () => act(release, 'Releasing with regions', async () => {
      const regions = view.regions();
      if (!regions.length) throw new Error('draw at least one region first');
      await api(`${base}/release`, { method: 'POST', body: { regions } });
      gone(`Released with ${regions.length} region(s): the pixel stage runs again, and verification as always.`);
    }),
  }, 'Release with these regions');
  const sigName = h('input', { id: 'sig-name', placeholder: 'optional name' });
  const saveSig = view && h('button.quiet', {
    type: 'button', id: 'save-signature',
    onclick: () => act(saveSig, 'Saving the signature', async () => {
      const regions = view.regions();
      if (!regions.length) throw new Error('draw at least one region first');
      const s = await api('/api/console/signatures', { method: 'POST', body: { from: 'quarantine', id, regions, ...(sigName.value.trim() ? { name: sigName.value.trim() } : {}) } });
      toast(`Signature "${s.name}" saved (${s.count} in the service's file); it applies from now on.`, 'info');
    }),
  }, 'Save as signature');

  const node = h('div',
    pageTitle('Quarantined object', h('code', e.code)),
    h('p', h('a', { href: '#/quarantine' }, '‹ Quarantine')),
    h('div.grid',
      h('section.card.reason', h('h2', 'Why'),
        h('p.words', e.words),
        e.detail ? h('p', h('strong', 'Detail: '), e.detail) : null,
        e.elementPath ? h('p', h('strong', 'Element: '), h('code', e.elementPath)) : null,
        h('dl', h('dt', 'Stage'), h('dd', e.stage), h('dt', 'Quarantined'), h('dd', fmt.time(e.quarantinedAt)),
          h('dt', 'Received'), h('dd', fmt.time(e.receivedAt)), h('dt', 'Source'), h('dd', e.origin ? e.origin.kind : '—'),
          h('dt', 'Requeues'), h('dd', fmt.int(e.requeues || 0)), h('dt', 'Id'), h('dd', h('code', e.id)),
          e.study ? [h('dt', 'Study'), h('dd', h('a', { href: `#/studies/${e.study}` }, h('code', fmt.short(e.study, 16))))] : null)),
      h('section.card.actions', h('h2', 'Actions'),
        h('div.buttons', requeue, download, del),
        h('h3', 'Requeue with another profile or options'), requeueWith)),
    view ? h('section.card', h('h2', 'Preview'), view.node,
      h('div.buttons', release, h('label', { for: 'sig-name' }, 'Signature name'), sigName, saveSig),
      h('p.hint', 'Release: the object goes through the pipeline again with the drawn regions masked in every frame; verification runs as always. Save as signature: the regions mask this device\'s images of this size from now on (Manufacturer, model, rows, columns).'))
      : h('section.card', h('h2', 'Preview'), h('p.muted', 'No preview: the object has no pixel data, or could not be read.')));
  return { node };
}
