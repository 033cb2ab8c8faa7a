// The review hold: objects held before export (review: pixels or all). The reviewer looks at the
// original and the result frame by frame, then approves (export), redacts more (draw, and the pixel
// stage runs again with those regions), or rejects (quarantine, "rejected in review").
import { act, api, confirmDialog, fmt, h, pageTitle, toast } from './core.js';
import { viewer } from './viewer.js';

export async function reviewListPage() {
  const results = h('div.results', { 'aria-live': 'polite' });
  async function load() {
    const r = await api('/api/console/review');
    results.replaceChildren(h('table.review',
      h('caption.sr', 'Held for review'),
      h('thead', h('tr', ['Held', 'Why', 'New SOPInstanceUID', 'Masked', 'Source'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', r.entries.length ? r.entries.map((e) => h('tr', { dataset: { review: e.id } },
        h('th', { scope: 'row' }, h('a', { href: `#/review/${e.id}` }, fmt.time(e.heldAt))),
        h('td', e.reason), h('td', h('code.uid', e.identity ? e.identity.sopInstanceUid : '—')),
        h('td', e.pixels && e.pixels.boxes ? `${e.pixels.boxes.length} region(s), ${fmt.int(e.pixels.pixelsMasked)} px` : '—'),
        h('td', e.origin))) : h('tr', h('td.muted', { colspan: 5 }, 'Nothing is waiting for review.')))));
    return r.entries.length;
  }
  await load();
  let count = -1;
  return {
    node: h('div', pageTitle('Review', h('span.muted', 'Held before export')), results),
    status(st) {
      if (st.review !== count) { count = st.review; load().catch(() => undefined); }
    },
  };
}

/** "1 manual, 2 signature, 15 OCR": what found the masked boxes. */
function bySource(boxes) {
  const n = {};
  for (const b of boxes) n[b.source] = (n[b.source] || 0) + 1;
  return Object.entries(n).map(([k, v]) => `${v} ${k === 'ocr' ? 'OCR' : k}`).join(', ');
}

export async function reviewEntryPage(id) {
  const base = `/api/console/review/${encodeURIComponent(id)}`;
  const r = await api(base);
  const done = (msg) => { toast(msg, 'info'); location.hash = '#/review'; };
  const view = r.image && r.image.rows
    ? viewer({
      frames: r.image.frames, width: r.image.columns, height: r.image.rows, drawable: true,
      src: (v, n, regions) => `${base}/frames/${n}?view=${v}${regions ? `&regions=${encodeURIComponent(regions)}` : ''}`,
      beforeLabel: 'Original as received', afterLabel: 'As it will be exported',
    })
    : undefined;
  const approve = h('button', { type: 'button', id: 'approve', onclick: () => act(approve, 'Approving', async () => { await api(`${base}/approve`, { method: 'POST' }); done('Approved: the object is being exported.'); }) }, 'Approve and export');
  const redact = view && h('button.quiet', {
    type: 'button', id: 'redact',
    onclick: () => act(redact, 'Redacting', async () => {
      const regions = view.regions();
      if (!regions.length) throw new Error('draw at least one region first');
      await api(`${base}/redact`, { method: 'POST', body: { regions } });
      done(`Sent back to the pixel stage with ${regions.length} more region(s); it comes back here once verified.`);
    }),
  }, 'Redact these regions');
  const reject = h('button.danger', {
    type: 'button', id: 'reject',
    onclick: async () => {
      if (!(await confirmDialog('Reject this object? It goes to the quarantine with the reason "rejected in review" and is not exported.', 'Reject'))) return;
      act(reject, 'Rejecting', async () => { await api(`${base}/reject`, { method: 'POST' }); done('Rejected: the object is in the quarantine.'); });
    },
  }, 'Reject…');
  const saveSig = view && h('button.quiet', {
    type: 'button', id: 'save-signature',
    onclick: () => act(saveSig, 'Saving the signature', async () => {
      const regions = view.regions();
      if (!regions.length) throw new Error('draw at least one region first');
      const s = await api('/api/console/signatures', { method: 'POST', body: { from: 'review', id, regions } });
      toast(`Signature "${s.name}" saved (${s.count} in the service's file); it applies from now on.`, 'info');
    }),
  }, 'Save as signature');
  const p = r.pixels;
  const node = h('div',
    pageTitle('Held for review'),
    h('p', h('a', { href: '#/review' }, '‹ Review')),
    h('div.grid',
      h('section.card', h('h2', 'Why it is held'), h('p.words', r.reason),
        h('dl', h('dt', 'Held'), h('dd', fmt.time(r.heldAt)),
          h('dt', 'New SOPInstanceUID'), h('dd', h('code.uid', r.identity ? r.identity.sopInstanceUid : '—')),
          h('dt', 'Pixel stage'), h('dd', p ? `${p.action}: ${p.reason}` : 'did not run'),
          p && p.boxes ? [h('dt', 'Masked'), h('dd', `${p.boxes.length} region(s): ${bySource(p.boxes)}; ${fmt.int(p.pixelsMasked)} px`)] : null,
          r.regions.length ? [h('dt', 'Drawn before'), h('dd', `${r.regions.length} region(s)`)] : null,
          h('dt', 'Study'), h('dd', h('a', { href: `#/studies/${r.study}` }, h('code', fmt.short(r.study, 16)))))),
      h('section.card.actions', h('h2', 'Decision'), h('div.buttons', approve, redact, reject, saveSig),
        h('p.hint', 'Boxes outlined in red were masked; draw on the original to mask more.'))),
    view ? h('section.card', h('h2', 'Preview'), view.node) : h('section.card', h('p.muted', 'No image to preview.')));
  return { node };
}
