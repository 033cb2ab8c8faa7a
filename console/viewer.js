// The before/after preview pair: full resolution with zoom, frame by frame, the masked boxes outlined
// by the service, and (when drawing is on) rectangles the reviewer draws on the original, by pointer
// or by typing their corners. The original shows PHI: it is labelled so, and the service sends it
// with Cache-Control: no-store.
import { badge, h } from './core.js';

const ZOOMS = [['fit', 'Fit'], ['1', '100%'], ['2', '200%'], ['4', '400%']];

export function viewer({ frames = 1, width, height, src, drawable = false, initialRegions = [], beforeLabel = 'Original', afterLabel = 'After masking' }) {
  let frame = 0;
  let zoom = 'fit';
  const regions = [...initialRegions];
  const listeners = new Set();

  const beforeImg = h('img', { alt: `${beforeLabel}, frame 1`, draggable: 'false', id: 'preview-before' });
  const afterImg = h('img', { alt: `${afterLabel}, frame 1`, draggable: 'false', id: 'preview-after' });
  const overlay = h('div.overlay', { 'aria-hidden': 'true' });
  const beforeStage = h('div.stage', beforeImg, overlay);
  const afterStage = h('div.stage', afterImg);
  const regionList = h('ul.regions', { 'aria-label': 'Drawn regions' });

  const toImage = (ev) => {
    const r = beforeImg.getBoundingClientRect();
    return {
      x: Math.round(Math.min(Math.max(0, ((ev.clientX - r.left) / r.width) * width), width)),
      y: Math.round(Math.min(Math.max(0, ((ev.clientY - r.top) / r.height) * height), height)),
    };
  };
  const boxEl = (b, cls) => h(`div.${cls}`, { style: `left:${(100 * b.x0) / width}%;top:${(100 * b.y0) / height}%;width:${(100 * (b.x1 - b.x0)) / width}%;height:${(100 * (b.y1 - b.y0)) / height}%` });

  const regionQuery = () => regions.map((b) => `${b.x0},${b.y0},${b.x1},${b.y1}`).join(';');
  let refresh;
  function load() {
    clearTimeout(refresh);
    // The after image waits for the drawing to settle.
    refresh = setTimeout(() => {
      beforeImg.src = src('before', frame, regionQuery());
      afterImg.src = src('after', frame, regionQuery());
    }, 150);
    beforeImg.alt = `${beforeLabel}, frame ${frame + 1}`;
    afterImg.alt = `${afterLabel}, frame ${frame + 1}`;
    frameLabel.textContent = `Frame ${frame + 1} of ${frames}`;
  }
  function drawRegions() {
    overlay.replaceChildren(...regions.map((b) => boxEl(b, 'drawn')));
    regionList.replaceChildren(...regions.map((b, i) => h('li', `x ${b.x0}–${b.x1}, y ${b.y0}–${b.y1} `,
      h('button.quiet.small', { type: 'button', 'aria-label': `Remove region ${i + 1}`, onclick: () => { regions.splice(i, 1); changed(); } }, 'Remove'))));
    if (!regions.length) regionList.append(h('li.muted', drawable ? 'Draw on the original to mark regions to mask.' : 'No regions drawn.'));
  }
  function changed() {
    drawRegions();
    load();
    listeners.forEach((f) => f(regions));
  }

  if (drawable) {
    let start;
    let temp;
    beforeStage.classList.add('drawable');
    beforeStage.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      beforeStage.setPointerCapture(ev.pointerId);
      start = toImage(ev);
      temp = boxEl({ x0: start.x, y0: start.y, x1: start.x, y1: start.y }, 'drawing');
      overlay.append(temp);
    });
    beforeStage.addEventListener('pointermove', (ev) => {
      if (!start) return;
      const p = toImage(ev);
      const b = { x0: Math.min(start.x, p.x), y0: Math.min(start.y, p.y), x1: Math.max(start.x, p.x), y1: Math.max(start.y, p.y) };
      temp.replaceWith((temp = boxEl(b, 'drawing')));
    });
    beforeStage.addEventListener('pointerup', (ev) => {
      if (!start) return;
      const p = toImage(ev);
      const b = { x0: Math.min(start.x, p.x), y0: Math.min(start.y, p.y), x1: Math.max(start.x, p.x), y1: Math.max(start.y, p.y) };
      start = undefined;
      temp?.remove();
      if (b.x1 - b.x0 >= 2 && b.y1 - b.y0 >= 2) {
        regions.push(b);
        changed();
      }
    });
  }

  const frameLabel = h('span', { 'aria-live': 'polite' });
  const frameInput = h('input', { type: 'range', min: 1, max: frames, value: 1, id: 'frame', 'aria-label': 'Frame' });
  frameInput.addEventListener('input', () => { frame = Number(frameInput.value) - 1; load(); });
  const step = (d) => { frame = Math.min(frames - 1, Math.max(0, frame + d)); frameInput.value = String(frame + 1); load(); };
  const zoomSelect = h('select', { id: 'zoom', 'aria-label': 'Zoom' }, ZOOMS.map(([v, l]) => h('option', { value: v }, l)));
  const pair = h('div.pair.zoom-fit', h('figure', h('figcaption', beforeLabel, ' ', badge('PHI — original, not cached', 'phi')), h('div.scroll', beforeStage)),
    h('figure', h('figcaption', afterLabel), h('div.scroll', afterStage)));
  zoomSelect.addEventListener('change', () => {
    zoom = zoomSelect.value;
    pair.className = `pair zoom-${zoom === 'fit' ? 'fit' : 'n'}`;
    for (const st of [beforeStage, afterStage]) st.style.width = zoom === 'fit' ? '' : `${width * Number(zoom)}px`;
  });

  const typed = h('input', { id: 'region-typed', placeholder: 'x0,y0,x1,y1', 'aria-describedby': 'region-typed-help', size: 18 });
  const addTyped = h('form.inline', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const n = typed.value.split(/[\s,]+/).map(Number);
      if (n.length === 4 && n.every(Number.isFinite)) {
        regions.push({ x0: Math.min(n[0], n[2]), y0: Math.min(n[1], n[3]), x1: Math.max(n[0], n[2]), y1: Math.max(n[1], n[3]) });
        typed.value = '';
        changed();
      }
    },
  }, h('label', { for: 'region-typed' }, 'Add a region'), typed, h('button.quiet', { type: 'submit' }, 'Add'), h('span.hint', { id: 'region-typed-help' }, 'corners in image pixels'));

  const controls = h('div.viewer-controls',
    h('button.quiet', { type: 'button', onclick: () => step(-1), disabled: frames <= 1, 'aria-label': 'Previous frame' }, '‹'),
    frameInput,
    h('button.quiet', { type: 'button', onclick: () => step(1), disabled: frames <= 1, 'aria-label': 'Next frame' }, '›'),
    frameLabel,
    h('label', { for: 'zoom' }, 'Zoom'), zoomSelect,
    h('span.muted', `${width} × ${height}`));
  const node = h('div.viewer', controls, pair, drawable ? h('div.region-tools', h('h3', 'Regions to mask'), regionList, addTyped) : null);
  drawRegions();
  load();
  return {
    node,
    regions: () => regions.slice(),
    clear() { regions.length = 0; changed(); },
    onRegions(f) { listeners.add(f); },
  };
}
