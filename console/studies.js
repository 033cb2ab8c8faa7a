// Studies: a server-paged, filterable list with each study's counts, times, completion and new
// identity; and a study page with its series and objects, their outcomes, and the teaching-file download.
import { act, api, badge, fmt, h, pageTitle, pager } from './core.js';

const STATES = ['', 'in progress', 'complete', 'with quarantine'];
const stateBadge = (s) => badge(s, s === 'complete' ? 'ok' : s === 'with quarantine' ? 'warn' : 'info');

function completion(s) {
  const done = s.exported + s.quarantined;
  const pct = s.received ? Math.round((100 * done) / s.received) : 0;
  return h('div.completion', h('progress', { max: 100, value: pct, 'aria-label': `${pct}% accounted for` }), h('span', s.completedAt ? `complete ${fmt.time(s.completedAt)}` : `${pct}%`));
}

export async function studiesPage(params = new URLSearchParams()) {
  let page = Number(params.get('page')) || 1;
  const q = h('input', { id: 'study-q', type: 'search', name: 'q', placeholder: 'New StudyInstanceUID, pseudonym or study key', size: 44, value: params.get('q') || '', autocomplete: 'off' });
  const state = h('select', { id: 'study-state', name: 'state' }, STATES.map((v) => h('option', { value: v, selected: v === (params.get('state') || '') }, v || 'any')));
  const results = h('div.results', { 'aria-live': 'polite' });
  async function load(p = page) {
    page = p;
    const qs = new URLSearchParams({ page: String(page), size: '25', q: q.value.trim(), state: state.value });
    const r = await api(`/api/console/studies?${qs}`);
    results.replaceChildren(
      h('table.studies',
        h('caption.sr', 'Studies'),
        h('thead', h('tr', ['Study', 'New StudyInstanceUID', 'Patient (pseudonym)', 'Received', 'Processed', 'Quarantined', 'Exported', 'First', 'Last', 'State', 'Completion'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', r.studies.length ? r.studies.map((s) => h('tr', { dataset: { study: s.id } },
          h('th', { scope: 'row' }, h('a', { href: `#/studies/${s.id}` }, h('code', fmt.short(s.id, 12)))),
          h('td', h('code.uid', s.identity ? s.identity.studyInstanceUid : '—')),
          h('td', s.identity ? s.identity.patientId : '—'),
          h('td.num', fmt.int(s.received)), h('td.num', fmt.int(s.processed)), h('td.num', fmt.int(s.quarantined)), h('td.num', fmt.int(s.exported)),
          h('td', fmt.time(s.firstAt)), h('td', fmt.time(s.lastAt)), h('td', stateBadge(s.state)), h('td', completion(s)))) : h('tr', h('td.muted', { colspan: 11 }, 'No studies match.')))),
      pager(r.total, r.page, r.size, (n) => load(n).catch(() => undefined)));
  }
  const form = h('form.filters', { role: 'search', onsubmit: (ev) => { ev.preventDefault(); act(null, 'Filtering studies', () => load(1)); } },
    h('label', { for: 'study-q' }, 'Find'), q,
    h('label', { for: 'study-state' }, 'State'), state,
    h('button', { type: 'submit' }, 'Filter'));
  state.addEventListener('change', () => act(null, 'Filtering studies', () => load(1)));
  await load();
  let pending;
  const reload = () => { pending ??= load().catch(() => undefined).finally(() => { pending = undefined; }); };
  return {
    node: h('div', pageTitle('Studies', h('span.muted', 'Newest activity first')), form, results),
    changed(c) { if (c.studies) reload(); },
    // A study completes after its quiet period without another event: look again while one on screen is open.
    status() { if (results.querySelector('.badge.info')) reload(); },
  };
}

function objectRow(o) {
  const where = o.state === 'quarantined' && o.quarantine
    ? h('a', { href: `#/quarantine/${o.quarantine.id}` }, h('code', o.quarantine.code), ` at ${o.quarantine.stage}`)
    : o.state === 'held' && o.review ? h('a', { href: `#/review/${o.review}` }, 'open in review') : '';
  return h('tr', { dataset: { object: o.object } },
    h('th', { scope: 'row' }, h('code', o.object)),
    h('td', badge(o.state, o.state === 'exported' ? 'ok' : o.state === 'held' ? 'info' : 'warn')),
    h('td', h('code.uid', o.identity ? o.identity.sopInstanceUid : '—')),
    h('td', o.pixelsMasked ? `${fmt.int(o.pixelsMasked)} px masked` : ''),
    h('td', fmt.time(o.at)), h('td', where));
}

export async function studyPage(id) {
  const node = h('div');
  let pending;
  const fill = async () => node.replaceChildren(await studyContent(id));
  await fill();
  const reload = () => { pending ??= fill().catch(() => undefined).finally(() => { pending = undefined; }); };
  return {
    node,
    changed(c) { if (c.studies) reload(); },
    status() { if (node.querySelector('.title .badge.info')) reload(); },
  };
}

async function studyContent(id) {
  const r = await api(`/api/console/studies/${encodeURIComponent(id)}`);
  const s = r.study;
  const keyImages = h('input', { type: 'checkbox', id: 'key-images' });
  const download = h('button', {
    type: 'button', id: 'download',
    onclick: () => act(download, 'Downloading the study', async () => {
      const res = await api(`/api/console/studies/${encodeURIComponent(id)}/download${keyImages.checked ? '?keyImages=1' : ''}`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `study-${id.slice(0, 12)}.zip` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    }),
  }, 'Download teaching file (zip)');
  const ident = r.identity;
  return h('div',
    pageTitle('Study', stateBadge(s.state)),
    h('p', h('a', { href: '#/studies' }, '‹ All studies')),
    h('div.grid',
      h('section.card', h('h2', 'New identity'),
        h('dl',
          h('dt', 'StudyInstanceUID'), h('dd', h('code.uid', ident ? ident.studyInstanceUid : 'not known yet')),
          h('dt', 'Patient (pseudonym)'), h('dd', ident ? ident.patientId : '—'),
          h('dt', 'Study key'), h('dd', h('code', s.id)))),
      h('section.card', h('h2', 'Progress'),
        h('dl',
          h('dt', 'Received'), h('dd', fmt.int(s.received)), h('dt', 'Processed'), h('dd', fmt.int(s.processed)),
          h('dt', 'Quarantined'), h('dd', fmt.int(s.quarantined)), h('dt', 'Exported'), h('dd', fmt.int(s.exported)),
          h('dt', 'First'), h('dd', fmt.time(s.firstAt)), h('dt', 'Last'), h('dd', fmt.time(s.lastAt)),
          h('dt', 'Completion'), h('dd', completion(s)))),
      h('section.card', h('h2', 'Teaching file'),
        h('p.muted', 'The de-identified study as a zip: DICOM files in study/series folders and case.json (modality, body part, age, sex, relative days between this patient\'s studies).'),
        h('p', keyImages, h('label', { for: 'key-images' }, ' Include PNG key images')), download)),
    h('h2', 'Series and objects'),
    r.series.length ? r.series.map((se) => h('section.card.series',
      h('h3', 'Series ', h('code.uid', se.seriesInstanceUid), ` · ${se.objects.length} object(s)`),
      h('table', h('caption.sr', 'Objects'), h('thead', h('tr', ['Object', 'Outcome', 'New SOPInstanceUID', 'Pixels', 'When', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', se.objects.map(objectRow))))) : h('p.muted', 'No object of this study has left the pipeline yet.'));
}
