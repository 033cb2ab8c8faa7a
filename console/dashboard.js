// The dashboard: per stage queued/active/done/failed/throughput, queue depth, ingest by source, disk
// free, the review hold, the last errors by code, the workers of the cluster, and a chart of the last
// hour's throughput (inline SVG, drawn here). Updated by the live feed's status events.
import { badge, fmt, h, pageTitle } from './core.js';

const STAGE_COLOURS = { filter: '#8a8f98', header: '#3b7dd8', pixels: '#b561c9', verify: '#d68a1c', export: '#1f9d55' };
const SVG = 'http://www.w3.org/2000/svg';
const s = (tag, attrs = {}, ...kids) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  kids.forEach((k) => el.append(k instanceof Node ? k : document.createTextNode(String(k))));
  return el;
};

/** Jobs done per minute over the last hour, one line per stage. */
export function throughputChart(history, stages) {
  const W = 560, H = 160, L = 36, B = 22, T = 8, R = 8;
  const points = history || [];
  const max = Math.max(1, ...points.flatMap((p) => stages.map((st) => p.done[st] || 0)));
  const x = (i) => L + (points.length <= 1 ? 0 : (i / (points.length - 1)) * (W - L - R));
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title' });
  svg.append(s('title', { id: 'chart-title' }, `Jobs done per minute over the last hour; highest ${max} per minute`));
  for (const f of [0, 0.5, 1]) {
    svg.append(s('line', { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end', class: 'axis' }, fmt.int(Math.round(max * f))));
  }
  svg.append(s('text', { x: L, y: H - 4, class: 'axis' }, '60 min ago'));
  svg.append(s('text', { x: W - R, y: H - 4, 'text-anchor': 'end', class: 'axis' }, 'now'));
  if (points.length) {
    for (const st of stages) {
      const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.done[st] || 0).toFixed(1)}`).join('');
      svg.append(s('path', { d, fill: 'none', stroke: STAGE_COLOURS[st] || '#555', 'stroke-width': 2, 'data-stage': st }));
    }
  } else svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'No jobs in the last hour'));
  return svg;
}

function card(title, ...body) {
  return h('section.card', { 'aria-label': title }, h('h2', title), ...body);
}

function table(caption, head, rows, empty = 'None') {
  return h('table',
    h('caption.sr', caption),
    h('thead', h('tr', head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', rows.length ? rows : h('tr', h('td.muted', { colspan: head.length }, empty))));
}

function render(st) {
  if (!st) return h('p.muted', 'Waiting for the first status…');
  const stages = Object.keys(st.stages || {});
  const depth = stages.reduce((n, k) => n + (st.stages[k].queued || 0), 0);
  const active = stages.reduce((n, k) => n + (st.stages[k].active || 0), 0);
  const out = st.stages.export || {};
  const ingestTotal = Object.values(st.ingest || {}).reduce((n, v) => n + v.rate, 0);
  const quarantined = (st.quarantined || []).reduce((n, q) => n + q.count, 0);
  const disk = st.disk;
  const kpi = (label, value, note, kind = '') => h(`div.kpi${kind ? `.${kind}` : ''}`, h('span.label', label), h('span.value', value), note ? h('span.note', note) : null);
  return h('div.dashboard',
    h('div.kpis',
      kpi('Queue depth', fmt.int(depth), `${fmt.int(active)} active`),
      kpi('Ingest rate', fmt.rate(ingestTotal), 'objects received'),
      kpi('Exported', fmt.int(out.done), fmt.rate(out.throughput)),
      kpi('In quarantine', fmt.int(st.inQuarantine || 0), `${fmt.int(quarantined)} quarantined in all`, st.inQuarantine ? 'warn' : ''),
      kpi('Held for review', fmt.int(st.review || 0), null, st.review ? 'warn' : ''),
      kpi('Disk free', disk ? fmt.bytes(disk.free) : '—', disk ? `reserve ${fmt.bytes(disk.reserve)}` : null, disk && !disk.ok ? 'bad' : '')),
    h('div.grid',
      card('Stages',
        table('Per stage', ['Stage', 'Queued', 'Active', 'Done', 'Failed', 'Retried', 'Throughput'],
          stages.map((k) => {
            const v = st.stages[k];
            return h('tr', { dataset: { stage: k } }, h('th', { scope: 'row' }, h('span.dot', { style: `background:${STAGE_COLOURS[k] || '#555'}` }), k),
              h('td.num', fmt.int(v.queued)), h('td.num', fmt.int(v.active)), h('td.num', fmt.int(v.done)), h('td.num', fmt.int(v.failed)), h('td.num', fmt.int(v.retried)), h('td.num', fmt.rate(v.throughput)));
          }))),
      card('Throughput, last hour', throughputChart(st.history, stages),
        h('ul.legend', stages.map((k) => h('li', h('span.dot', { style: `background:${STAGE_COLOURS[k] || '#555'}` }), k)))),
      card('Ingest by source',
        table('Ingest by source', ['Source', 'Stored', 'Refused', 'Rate'],
          ['dimse', 'stow', 'folder'].map((k) => {
            const v = (st.ingest || {})[k] || { stored: 0, refused: 0, rate: 0 };
            return h('tr', h('th', { scope: 'row' }, { dimse: 'DIMSE', stow: 'STOW-RS', folder: 'Folder' }[k]), h('td.num', fmt.int(v.stored)), h('td.num', fmt.int(v.refused)), h('td.num', fmt.rate(v.rate)));
          }))),
      card('Last errors by code',
        table('Quarantines by code', ['Code', 'Stage', 'Count'],
          (st.quarantined || []).slice().sort((a, b) => b.count - a.count).map((q) => h('tr', h('td', h('a', { href: `#/quarantine?code=${q.code}` }, h('code', q.code))), h('td', q.stage), h('td.num', fmt.int(q.count)))),
          'No quarantines'),
        (st.recentErrors || []).length ? h('ol.recent', (st.recentErrors || []).slice(0, 8).map((e) => h('li', h('time', fmt.time(e.at)), ' ', h('code', e.code), ` at ${e.stage}`))) : null),
      card(`Workers (${st.engine === 'bullmq' ? 'Redis cluster' : 'embedded'})`,
        table('Workers', ['Worker', 'Role', 'State', 'Jobs done', 'Last seen'],
          (st.workers || []).map((w) => h('tr',
            h('th', { scope: 'row' }, w.id), h('td', w.role), h('td', w.alive ? badge('up', 'ok') : badge('down', 'bad')),
            h('td.num', fmt.int(Object.values(w.stages || {}).reduce((n, t) => n + t.done, 0))), h('td', fmt.time(w.lastSeenAt)))),
          'No worker has reported yet'))));
}

export function updateDashboard(node, st) {
  node.replaceChildren(render(st));
}

export async function dashboardPage(initial) {
  const body = h('div', render(initial));
  const node = h('div', pageTitle('Dashboard', h('span.muted', { id: 'updated' }, initial ? `as of ${fmt.time(initial.at)}` : '')), body);
  return {
    node,
    status(st) {
      updateDashboard(body, st);
      const u = node.querySelector('#updated');
      if (u) u.textContent = `as of ${fmt.time(st.at)}`;
    },
  };
}
