// The real-image part of `npm run eval:pixels`: TCIA Pseudo-PHI images with burned-in text and
// ground-truth boxes (../shared/testdata/tcia-burned-in, see its README). Per image:
//  - recall: share of PHI value boxes whose whole area is masked. A box is clipped to the frame and
//    to its visible extent: rows and columns at its edges whose pixels are all one value (text drawn
//    white over white anatomy, where ink and background are the same stored value) hold nothing that
//    anyone could read, and are trimmed; a box with no visible ink at all is counted apart as
//    "invisible". Recall over the boxes as given is printed too;
//  - over-masking: masked pixels outside text, as a share of the area outside text, where text is the
//    ground-truth boxes (labels and values, grown by 4 px) and the words Debian's tesseract CLI reads
//    in the original with confidence (real annotations the set does not box: "PORTABLE", "R");
//  - tokens: ground-truth value tokens that the tesseract CLI still reads in the output.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const norm = (s) => s.toUpperCase().replace(/[^\p{L}\p{N}]/gu, '');

/** Value tokens of the ground truth worth searching for: three or more letters or digits. */
export function valueTokens(annotation) {
  const out = new Set();
  for (const a of annotation) for (const w of (a.value.text ?? '').split(/[\s,/:]+/)) if (norm(w).length >= 3) out.add(norm(w));
  // Dates are also searched whole, as a reader sees them ("06/16/1976").
  for (const a of annotation) if (/\d/.test(a.value.text ?? '') && norm(a.value.text).length >= 4) out.add(norm(a.value.text));
  return [...out];
}

export function tciaCases(testdata) {
  const dir = join(testdata, 'tcia-burned-in');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => ({ name: f, path: join(dir, f), truth: JSON.parse(readFileSync(join(dir, f.replace(/\.dcm$/, '.json')), 'utf8')).annotation }));
}

/**
 * Scores one processed image. `values(frame)` gives the stored values of the input's frame,
 * `boxes` the masked boxes, `cliIn`/`cliOut` the words the CLI reads in input and output.
 */
export function scoreImage({ truth, width, height, values, boxes, cliIn, cliOut }) {
  const inBoxes = (bs, x, y) => bs.some((b) => x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1);
  let total = 0, recalled = 0, recalledAsGiven = 0, invisible = 0, outside = 0, trimmed = 0;
  const missed = [];
  for (const a of truth) {
    if (!a.value.text) continue;
    const [bx0, by0, bx1, by1] = a.value.bbox;
    const x0 = Math.max(0, bx0), y0 = Math.max(0, by0), x1 = Math.min(width - 1, bx1), y1 = Math.min(height - 1, by1);
    if (x1 < x0 || y1 < y0) {
      outside++;
      continue;
    }
    const flatColumn = (x, ya, yb) => { for (let y = ya; y <= yb; y++) if (values[y * width + x] !== values[ya * width + x]) return false; return true; };
    const flatRow = (y, xa, xb) => { for (let x = xa; x <= xb; x++) if (values[y * width + x] !== values[y * width + xa]) return false; return true; };
    let [vx0, vy0, vx1, vy1] = [x0, y0, x1, y1];
    while (vx0 <= vx1 && flatColumn(vx0, vy0, vy1)) vx0++;
    while (vx1 >= vx0 && flatColumn(vx1, vy0, vy1)) vx1--;
    if (vx0 > vx1) {
      invisible++;
      continue;
    }
    while (vy0 < vy1 && flatRow(vy0, vx0, vx1)) vy0++;
    while (vy1 > vy0 && flatRow(vy1, vx0, vx1)) vy1--;
    if (vx0 !== x0 || vx1 !== x1 || vy0 !== y0 || vy1 !== y1) trimmed++;
    const share = (a0, b0, a1, b1) => {
      let hit = 0, n = 0;
      for (let y = b0; y <= b1; y++) for (let x = a0; x <= a1; x++) {
        n++;
        if (inBoxes(boxes, x, y)) hit++;
      }
      return hit / n;
    };
    total++;
    const visible = share(vx0, vy0, vx1, vy1);
    if (visible === 1) recalled++;
    else missed.push({ box: [vx0, vy0, vx1, vy1], masked: visible });
    if (share(x0, y0, x1, y1) === 1) recalledAsGiven++;
  }
  const text = [
    ...truth.flatMap((a) => [a.key, a.value]).filter((t) => t?.bbox && t.text).map((t) => ({ x0: t.bbox[0] - 4, y0: t.bbox[1] - 4, x1: t.bbox[2] + 5, y1: t.bbox[3] + 5 })),
    ...cliIn.filter((w) => w.conf >= 60 && norm(w.text).length >= 2).map((w) => ({ x0: w.box.x0 - 2, y0: w.box.y0 - 2, x1: w.box.x1 + 2, y1: w.box.y1 + 2 })),
  ];
  let masked = 0, free = 0;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (inBoxes(text, x, y)) continue;
    free++;
    if (inBoxes(boxes, x, y)) masked++;
  }
  const tokens = valueTokens(truth);
  const leaked = (ws) => ws.filter((w) => { const n = norm(w.text); return n.length >= 3 && tokens.some((t) => n === t || (t.length >= 5 && n.includes(t))); }).length;
  return { total, recalled, recalledAsGiven, trimmed, invisible, outside, missed, masked, free, tokensBefore: leaked(cliIn), tokens: leaked(cliOut) };
}

/** Words Debian's tesseract CLI reads in a PNG (one thread, sparse text), with boxes: the independent reader. */
export function tesseractWords(png) {
  const tsv = execFileSync('tesseract', [png, '-', '--psm', '11', 'tsv'], { encoding: 'utf8', env: { ...process.env, OMP_THREAD_LIMIT: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
  return tsv
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t'))
    .filter((c) => c.length >= 12 && c[0] === '5' && c[11].trim())
    .map((c) => ({ text: c[11].trim(), conf: Number(c[10]), box: { x0: +c[6], y0: +c[7], x1: +c[6] + +c[8], y1: +c[7] + +c[9] } }));
}
