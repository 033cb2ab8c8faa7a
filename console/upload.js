// Teaching-file upload: drop files, folders or a zip of DICOM (or choose them); each file goes over the
// service's own STOW-RS with a progress bar, plus one overall; then the studies it touched are shown
// as they go through the pipeline.
import { api, csrfHeader, fmt, h, pageTitle } from './core.js';
import { unzip } from './unzip.js';

const PARALLEL = 3;

/** Every file under a dropped item (folders walked). */
async function filesOf(entry) {
  if (entry.isFile) return [await new Promise((res, rej) => entry.file(res, rej))];
  const reader = entry.createReader();
  const all = [];
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const e of batch) all.push(...(await filesOf(e)));
  }
  return all;
}

async function expand(files) {
  const out = [];
  for (const f of files) {
    if (/\.zip$/i.test(f.name)) out.push(...(await unzip(f)));
    else out.push(f);
  }
  return out;
}

function send(file, onProgress) {
  return new Promise((resolve) => {
    const boundary = `deid-${crypto.randomUUID()}`;
    const body = new Blob([`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, file, `\r\n--${boundary}--\r\n`]);
    const x = new XMLHttpRequest();
    x.open('POST', '/dicomweb/studies');
    x.setRequestHeader('Content-Type', `multipart/related; type="application/dicom"; boundary=${boundary}`);
    x.setRequestHeader('Accept', 'application/dicom+json');
    for (const [k, v] of Object.entries(csrfHeader())) x.setRequestHeader(k, v);
    x.upload.onprogress = (ev) => ev.lengthComputable && onProgress(ev.loaded / ev.total);
    x.onload = () => {
      let reason = '';
      if (x.status >= 300) {
        try {
          const j = JSON.parse(x.responseText);
          reason = j.code ? `${j.code}: ${j.message}` : '';
        } catch { /* a DICOM JSON answer */ }
        reason ||= x.getResponseHeader('Warning') || `HTTP ${x.status}`;
      }
      resolve({ ok: x.status === 200, status: x.status, reason });
    };
    x.onerror = () => resolve({ ok: false, status: 0, reason: 'network error' });
    x.send(body);
  });
}

export async function uploadPage() {
  const list = h('ol.uploads', { 'aria-label': 'Files' });
  const overall = h('progress', { id: 'overall', max: 1, value: 0, 'aria-label': 'Overall progress' });
  const summary = h('p', { id: 'upload-summary', 'aria-live': 'polite' }, 'No upload yet.');
  const recent = h('div.results');
  let uploading = false;

  async function showRecent() {
    const r = await api('/api/console/studies?page=1&size=5');
    recent.replaceChildren(h('table', h('caption.sr', 'Recent studies'),
      h('thead', h('tr', ['Study', 'New StudyInstanceUID', 'Received', 'Exported', 'Quarantined', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', r.studies.map((s) => h('tr', { dataset: { study: s.id } },
        h('th', { scope: 'row' }, h('a', { href: `#/studies/${s.id}` }, h('code', fmt.short(s.id, 12)))),
        h('td', h('code.uid', s.identity ? s.identity.studyInstanceUid : '—')),
        h('td.num', fmt.int(s.received)), h('td.num', fmt.int(s.exported)), h('td.num', fmt.int(s.quarantined)),
        s.completedAt ? h('td', 'complete') : h('td.open', s.state))))));
  }

  async function upload(files) {
    if (uploading) return;
    uploading = true;
    try {
      summary.textContent = 'Reading files…';
      files = (await expand(files)).filter((f) => f.size > 0);
      const total = files.reduce((n, f) => n + f.size, 0) || 1;
      const loaded = new Array(files.length).fill(0);
      const rows = files.map((f) => {
        const bar = h('progress', { max: 1, value: 0, 'aria-label': `Progress of ${f.name}` });
        const state = h('span.state', 'waiting');
        const li = h('li', h('span.name', f.name || 'file'), h('span.size', fmt.bytes(f.size)), bar, state);
        return { f, li, bar, state };
      });
      list.replaceChildren(...rows.map((r) => r.li));
      let next = 0, stored = 0, refused = 0;
      const worker = async () => {
        while (next < rows.length) {
          const i = next++;
          const r = rows[i];
          r.state.textContent = 'sending';
          const res = await send(r.f, (p) => {
            r.bar.value = p;
            loaded[i] = p * r.f.size;
            overall.value = loaded.reduce((a, b) => a + b, 0) / total;
          });
          loaded[i] = r.f.size;
          overall.value = loaded.reduce((a, b) => a + b, 0) / total;
          r.bar.value = 1;
          r.li.classList.add(res.ok ? 'ok' : 'bad');
          r.state.textContent = res.ok ? 'stored' : `refused — ${res.reason}`;
          res.ok ? stored++ : refused++;
          summary.textContent = `${stored + refused} of ${rows.length} sent: ${stored} stored, ${refused} refused.`;
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      summary.textContent = `Done: ${stored} stored, ${refused} refused. The studies below update as they go through the pipeline.`;
      await showRecent();
    } catch (e) {
      summary.textContent = `Upload failed — ${e.message}`;
    } finally {
      uploading = false;
    }
  }

  const fileInput = h('input', { type: 'file', id: 'files', multiple: true, onchange: () => upload([...fileInput.files]) });
  const folderInput = h('input', { type: 'file', id: 'folder', webkitdirectory: true, onchange: () => upload([...folderInput.files]) });
  const zone = h('div.dropzone', { id: 'dropzone', tabindex: 0, role: 'button', 'aria-describedby': 'drop-help',
    onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); fileInput.click(); } },
    onclick: () => fileInput.click(),
    ondragover: (ev) => { ev.preventDefault(); zone.classList.add('over'); },
    ondragleave: () => zone.classList.remove('over'),
    ondrop: async (ev) => {
      ev.preventDefault();
      zone.classList.remove('over');
      const entries = [...ev.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
      const files = entries.length ? (await Promise.all(entries.map(filesOf))).flat() : [...ev.dataTransfer.files];
      upload(files);
    },
  }, h('strong', 'Drop DICOM files, folders or a zip here'), h('span', { id: 'drop-help' }, 'or press Enter to choose files'));
  await showRecent().catch(() => undefined);
  let pending;
  const reload = () => { pending ??= showRecent().catch(() => undefined).finally(() => { pending = undefined; }); };
  return {
    node: h('div', pageTitle('Upload a teaching file'),
      h('p.muted', 'Files go to the service over STOW-RS, are de-identified like every other object, and can be downloaded clean from the study page.'),
      zone,
      h('p.pickers', h('label', { for: 'files' }, 'Files '), fileInput, ' ', h('label', { for: 'folder' }, 'A folder '), folderInput),
      h('section.card', h('h2', 'Progress'), h('label', { for: 'overall' }, 'Overall '), overall, summary, list),
      h('section.card', h('h2', 'Recent studies'), recent)),
    changed(c) { if (c.studies) reload(); },
    status() { if (recent.querySelector('td.open')) reload(); },
  };
}
