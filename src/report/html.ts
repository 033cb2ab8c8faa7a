/**
 * The report as one self-contained HTML page: inline CSS, inline SVG charts (actions by count,
 * modalities, outcomes), tables; no script, no external asset, so it opens anywhere, offline, and can
 * be mailed as it is. Every value is escaped.
 */
import type { SubmissionReportJson } from './submission.js';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
/** 12,345 (toLocaleString goes through ICU, slow over an inventory's thousands of numbers). */
const n = (x: number): string => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

const COLOURS: Record<string, string> = {
  kept: '#4e79a7', removed: '#e15759', replaced: '#f28e2b', cleaned: '#76b7b2', remapped: '#59a14f',
  written: '#59a14f', quarantined: '#e15759', unreadable: '#bab0ac',
};
const DEFAULT_COLOUR = '#4e79a7';

/** A horizontal bar chart in SVG: one bar per entry, labelled with its name and count. */
export function barChart(title: string, entries: ReadonlyArray<readonly [string, number]>): string {
  const rowH = 22;
  const labelW = 150;
  const barW = 300;
  const width = labelW + barW + 90;
  const height = 28 + Math.max(1, entries.length) * rowH;
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const bars = entries.map(([label, value], i) => {
    const y = 28 + i * rowH;
    const w = Math.max(value > 0 ? 1 : 0, Math.round((value / max) * barW));
    const short = label.length > 22 ? `${label.slice(0, 21)}…` : label;
    return (
      `<g class="bar"><title>${esc(label)}: ${n(value)}</title>` +
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(short)}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" fill="${COLOURS[label] ?? DEFAULT_COLOUR}"/>` +
      `<text x="${labelW + w + 6}" y="${y + 15}" class="value">${n(value)}</text></g>`
    );
  });
  const empty = entries.length ? '' : `<text x="${labelW}" y="${28 + 15}">none</text>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="${esc(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<text x="0" y="16" class="chart-title">${esc(title)}</text>${bars.join('')}${empty}</svg>`
  );
}

function table(headers: readonly string[], rows: ReadonlyArray<readonly unknown[]>, cls = ''): string {
  if (rows.length === 0) return '<p class="none">None.</p>';
  const head = headers.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${typeof c === 'number' ? n(c) : esc(c ?? '')}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const counts = (o: Readonly<Record<string, number>>) =>
  Object.entries(o)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(', ');

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:2em auto;max-width:1100px;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555}.none{color:#777;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.5em}.warn b{color:#b00}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.chart text{font-size:12px;fill:#333}.chart .chart-title{font-weight:600;font-size:13px}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}td:nth-child(n+2){font-variant-numeric:tabular-nums}
`;

/** The report JSON as an HTML page. */
export function renderReportHtml(r: SubmissionReportJson): string {
  const k = r.kAnonymity;
  const qi = k.attributes.join(', ');
  const p = r.pixels;
  const cards = [
    ['objects', r.objects, ''],
    ['written', r.outcomes.written, ''],
    ['quarantined', r.outcomes.quarantined + r.outcomes.unreadable, r.outcomes.quarantined + r.outcomes.unreadable ? 'warn' : ''],
    [`smallest group k (threshold ${k.threshold})`, k.k, k.k > 0 && k.k < k.threshold ? 'warn' : ''],
    ['warnings', r.warnings.length, r.warnings.length ? 'warn' : ''],
  ] as const;
  const charts = [
    barChart('Actions on elements', Object.entries(r.actions)),
    barChart('Modalities (written objects)', Object.entries(r.modalities)),
    barChart('Outcomes', Object.entries(r.outcomes)),
  ];
  const pixelSection = p.ran
    ? `<p>${n(p.examined)} image(s) examined, ${n(p.masked)} masked, ${n(p.unreadMasked)} with text masked unread, ${n(p.skipped)} skipped.</p>` +
      table(['skipped because', 'images'], Object.entries(p.skippedBecause)) +
      table(
        ['SOP Instance UID (new)', 'examined', 'masked', 'boxes', 'pixels masked', 'unread text masked', 'verified', 'reason'],
        p.images.map((i) => [i.sopInstanceUid, i.examined ? 'yes' : 'no', i.masked ? 'yes' : 'no', i.boxes, i.pixelsMasked, i.unreadMasked, i.verified === undefined ? '' : i.verified ? 'yes' : 'no', i.reason]),
        'pixels',
      ) +
      (p.imagesNotListed ? `<p class="none">${n(p.imagesNotListed)} more image(s) not listed.</p>` : '')
    : '<p class="none">The pixel stage did not run: the profile does not clean pixel data (clean-pixel-data), so no image was examined.</p>';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)} — deid report</title><style>${CSS}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="meta">Generated ${esc(r.generatedAt)}${r.profile ? ` · profile <b>${esc(r.profile.name)}</b>${r.profile.options.length ? ` with ${esc(r.profile.options.join(', '))}` : ''}` : ''}</p>
<div class="cards">${cards.map(([label, value, cls]) => `<div class="card ${cls}"><b>${n(value)}</b>${esc(label)}</div>`).join('')}</div>
<div class="charts">${charts.join('\n')}</div>

<h2>Quarantine reasons</h2>
${table(['code', 'stage', 'objects', 'meaning'], r.quarantine.reasons.map((q) => [q.code, q.stage, q.objects, q.message]))}
${r.quarantine.objects.length ? `<details><summary>Quarantined objects (${n(r.quarantine.objects.length + r.quarantine.objectsNotListed)}) by quarantine id</summary>${table(['id', 'code', 'stage'], r.quarantine.objects.map((o) => [o.id, o.code, o.stage]))}</details>` : ''}

<h2>Warnings</h2>
${table(['kind', 'where and why', 'objects'], r.warnings.map((w) => [w.kind, w.detail, w.objects]))}

<h2>Pixel outcomes</h2>
${pixelSection}

<h2>k-anonymity of the kept quasi-identifiers</h2>
<p>Over ${esc(qi)}: ${n(k.subjects)} subject(s) (patients, told apart by a keyed hash of their original PatientID) in ${n(k.groups)} group(s) of identical values; the smallest group has <b>k = ${n(k.k)}</b>. ${n(k.belowThreshold.length)} group(s) with fewer than ${n(k.threshold)} subjects (${n(k.subjectsBelowThreshold)} subject(s)):</p>
${table([...k.attributes, 'subjects', 'objects'], k.belowThreshold.map((g) => [...k.attributes.map((a) => g.values[a] ?? '(none)'), g.subjects, g.objects]))}

<h2>Private creators</h2>
${table(['group', 'creator', 'objects', 'elements', 'disposition', 'verdict'], r.inventory.privateCreators.map((c) => [c.group, c.creator, c.objects, c.elements, counts(c.dispositions), c.verdict]))}

<h2>Tag inventory</h2>
<p>${n(r.inventory.objects)} written object(s); every attribute at any depth, in how many objects, how often, and what the profile did.</p>
${table(['attribute', 'tag', 'objects', 'occurrences', 'what the profile did'], r.inventory.attributes.map((a) => [a.attribute, a.tag, a.objects, a.occurrences, counts(a.dispositions)]), 'inventory')}
</body></html>
`;
}
