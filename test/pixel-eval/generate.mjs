// Evaluation set for the pixel stage: burns known text (names, IDs, dates, times, institutions) into
// real corpus images, with several fonts and sizes, bright and dark text, 8- and 16-bit, RGB and
// multi-frame, and writes native, RLE and JPEG copies. Every burned word is recorded with its box and
// its ink (the pixels the text changed), which is the ground truth eval.mjs scores against.
//
// Uses the built code (dist/): run `npm run build` first (npm run eval:pixels does).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const dist = new URL('../../dist/', import.meta.url);
const load = (p) => import(new URL(p, dist).href);
const { readDicom } = await load('dicom/reader.js');
const { writeDicom } = await load('dicom/writer.js');
const { withElement } = await load('dicom/element.js');
const { asciiBytes } = await load('dicom/values.js');
const { initCodecs, encodeFrame, ENCODED_SYNTAX } = await load('dicom/pixels/codecs.js');
const { decodePixelData } = await load('dicom/pixels/pixel-data.js');
const { buildFragments } = await load('dicom/pixels/frames.js');
const { sampleReader } = await load('stages/pixels/render.js');

export const TESTDATA = new URL('../../../shared/testdata/', import.meta.url).pathname;

const FONTS = ['DejaVu Sans', 'Liberation Serif', 'DejaVu Sans Mono', 'Liberation Sans Narrow', 'Nimbus Sans', 'DejaVu Serif'];

/** The identity every generated image carries, in its header and burned into its pixels. */
export const PATIENT = {
  name: 'HARTLEY^EUGENIA^M',
  id: '84736251',
  birthDate: '19620314',
  accession: 'A99812377',
  institution: 'ST ELSEWHERE GENERAL HOSPITAL',
};

const xml = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders one word alone and returns its coverage (0-255) cropped to the ink, with the ink's offset from the pen position. */
async function inkOf(text, font, size, weight) {
  const w = Math.ceil(size * (text.length + 2) * 0.9);
  const h = Math.ceil(size * 2.2);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><text x="${size}" y="${Math.round(size * 1.5)}" font-family="${font}" font-weight="${weight}" font-size="${size}" fill="#fff">${xml(text)}</text></svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) {
    if (data[(y * info.width + x) * info.channels + 3] > 0) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) throw new Error(`font ${font} rendered nothing for a word`);
  const cw = x1 - x0 + 1, ch = y1 - y0 + 1;
  const alpha = new Uint8Array(cw * ch);
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) alpha[y * cw + x] = data[((y0 + y) * info.width + x0 + x) * info.channels + 3];
  return { alpha, width: cw, height: ch, dx: x0 - size, dy: y0 - Math.round(size * 1.5) };
}

/**
 * Lays out lines of words: { x, y (baseline), size, font, weight, words[], colour: 'bright'|'grey'|'dark'|[r,g,b], band?: true }.
 * Returns the placed words: text, box (end-exclusive), alpha (per box pixel), colour, band box.
 */
async function layout(lines, W, H) {
  const placed = [];
  for (const l of lines) {
    let pen = l.x < 0 ? W + l.x : l.x;
    const base = l.y < 0 ? H + l.y : l.y;
    const lineWords = [];
    for (const text of l.words) {
      const ink = await inkOf(text, l.font, l.size, l.weight ?? 'normal');
      const x0 = pen + ink.dx, y0 = base + ink.dy;
      if (x0 < 0 || y0 < 0 || x0 + ink.width > W || y0 + ink.height > H) throw new Error(`word outside the ${W}x${H} image`);
      lineWords.push({ text, box: { x0, y0, x1: x0 + ink.width, y1: y0 + ink.height }, alpha: ink.alpha, colour: l.colour });
      pen = x0 + ink.width + Math.round(l.size * 0.4);
    }
    if (l.band) {
      const b = lineWords.reduce((a, w) => ({ x0: Math.min(a.x0, w.box.x0), y0: Math.min(a.y0, w.box.y0), x1: Math.max(a.x1, w.box.x1), y1: Math.max(a.y1, w.box.y1) }), { x0: Infinity, y0: Infinity, x1: -1, y1: -1 });
      const pad = Math.round(l.size * 0.3);
      lineWords.forEach((w) => (w.band = { x0: Math.max(0, b.x0 - pad), y0: Math.max(0, b.y0 - pad), x1: Math.min(W, b.x1 + pad), y1: Math.min(H, b.y1 + pad) }));
    }
    placed.push(...lineWords);
  }
  return placed;
}

/** Burns placed words into one decoded frame (in place); returns the ground truth for the frame. */
function burn(frame, d, words) {
  const get = sampleReader(d, frame);
  const n = d.rows * d.columns;
  const spp = d.samplesPerPixel;
  let min = Infinity, max = -Infinity;
  for (let p = 0; p < n; p++) for (let s = 0; s < spp; s++) { const v = get(p, s); if (v < min) min = v; if (v > max) max = v; }
  const bsMax = d.pixelRepresentation ? 2 ** (d.bitsStored - 1) - 1 : 2 ** d.bitsStored - 1;
  const bsMin = d.pixelRepresentation ? -(2 ** (d.bitsStored - 1)) : 0;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const lowBit = d.highBit - d.bitsStored + 1;
  const set = (p, s, v) => {
    v = Math.max(bsMin, Math.min(bsMax, Math.round(v)));
    const i = d.planarConfiguration === 1 ? s * n + p : p * spp + s;
    const word = ((((v % 2 ** d.bitsStored) + 2 ** d.bitsStored) % 2 ** d.bitsStored) * 2 ** lowBit) + (d.pixelRepresentation && v < 0 ? 2 ** d.bitsAllocated - 2 ** (d.highBit + 1) : 0);
    if (d.bitsAllocated === 8) frame[i] = word; else if (d.bitsAllocated === 16) dv.setUint16(i * 2, word, true); else dv.setUint32(i * 4, word, true);
  };
  const colourOf = (c, s) => {
    if (Array.isArray(c)) return bsMin + (c[s] / 255) * (bsMax - bsMin);
    if (c === 'bright') return spp === 3 ? bsMax : max;
    if (c === 'grey') return min + 0.8 * (max - min);
    return spp === 3 ? bsMin : min; // dark
  };
  const bands = new Map();
  for (const w of words) if (w.band) bands.set(JSON.stringify(w.band), w.band);
  for (const b of bands.values()) for (let y = b.y0; y < b.y1; y++) for (let x = b.x0; x < b.x1; x++) for (let s = 0; s < spp; s++) set(y * d.columns + x, s, spp === 3 ? bsMin + 0.8 * (bsMax - bsMin) : min + 0.85 * (max - min));
  const truth = [];
  for (const w of words) {
    const bw = w.box.x1 - w.box.x0;
    let ink = 0;
    for (let y = w.box.y0; y < w.box.y1; y++) for (let x = w.box.x0; x < w.box.x1; x++) {
      const a = w.alpha[(y - w.box.y0) * bw + (x - w.box.x0)] / 255;
      if (a <= 0) continue;
      ink++;
      const p = y * d.columns + x;
      for (let s = 0; s < spp; s++) set(p, s, get(p, s) * (1 - a) + colourOf(w.colour, s) * a);
    }
    truth.push({ text: w.text, box: w.box, ink, inkMask: Array.from(w.alpha, (a) => (a > 0 ? 1 : 0)) });
  }
  return truth;
}

const set = (ds, tag, vr, s) => withElement(ds, { tag, vr, value: asciiBytes(s, vr) });
const us = (ds, tag, v) => withElement(ds, { tag, vr: 'US', value: Uint8Array.of(v & 0xff, v >> 8) });

/** Header with the patient the pixels name, BurnedInAnnotation YES, the pixel module of `d`. */
function header(ds, d) {
  ds = set(ds, 0x00100010, 'PN', PATIENT.name);
  ds = set(ds, 0x00100020, 'LO', PATIENT.id);
  ds = set(ds, 0x00100030, 'DA', PATIENT.birthDate);
  ds = set(ds, 0x00080050, 'SH', PATIENT.accession);
  ds = set(ds, 0x00080080, 'LO', PATIENT.institution);
  ds = set(ds, 0x00280301, 'CS', 'YES');
  ds = set(ds, 0x00280004, 'CS', d.photometric);
  if (d.samplesPerPixel === 3) ds = us(ds, 0x00280006, d.planarConfiguration);
  return ds.filter((e) => e.tag !== 0x00282110 && e.tag !== 0x00282112 && e.tag !== 0x00282114);
}

function writeNative(src, d, frames, path) {
  const n = frames[0].length;
  const value = new Uint8Array(n * frames.length + ((n * frames.length) % 2));
  frames.forEach((f, i) => value.set(f, i * n));
  let ds = header(src.dataset, d);
  ds = withElement(ds, { tag: 0x7fe00010, vr: d.bitsAllocated > 8 ? 'OW' : 'OB', value });
  writeFileSync(path, writeDicom({ ...src, dataset: ds, transferSyntaxUID: '1.2.840.10008.1.2.1' }, { transferSyntaxUID: '1.2.840.10008.1.2.1' }));
}

function writeEncoded(src, d, frames, kind, path) {
  const ed = { ...d, planarConfiguration: 0 };
  let photometric = d.photometric;
  const encoded = frames.map((f) => {
    const r = encodeFrame(kind, ed, f, 90);
    photometric = r.photometric;
    return r.encoded;
  });
  let ds = header(src.dataset, { ...ed, photometric });
  ds = withElement(ds, { tag: 0x7fe00010, vr: 'OB', fragments: buildFragments(encoded), undefinedLength: true });
  if (kind === 'jpeg-baseline') {
    ds = set(ds, 0x00282110, 'CS', '01');
    ds = set(ds, 0x00282112, 'DS', ((frames[0].length * frames.length) / encoded.reduce((s, e) => s + e.length, 0)).toFixed(2));
    ds = set(ds, 0x00282114, 'CS', 'ISO_10918_1');
  }
  const ts = ENCODED_SYNTAX[kind];
  writeFileSync(path, writeDicom({ ...src, dataset: ds, transferSyntaxUID: ts }, { transferSyntaxUID: ts }));
}

const name = PATIENT.name.split('^');
const date = '03/14/1962';
/** Lines of PHI for an image of width W (sizes scale with the image). */
function phiLines(W, H, s, opts = {}) {
  const f = opts.fonts ?? FONTS;
  return [
    { x: Math.round(8 * s), y: Math.round(20 * s), size: Math.round(14 * s), font: f[0], words: [`${name[0]},`, name[1], name[2]], colour: 'bright' },
    { x: Math.round(8 * s), y: Math.round(40 * s), size: Math.round(13 * s), font: f[2], words: ['MRN', PATIENT.id, 'DOB', date], colour: 'bright' },
    { x: -Math.round(190 * s), y: Math.round(20 * s), size: Math.round(12 * s), font: f[1], words: ['1962-03-14', '14:22:05'], colour: opts.grey ? 'grey' : 'bright' },
    { x: Math.round(8 * s), y: -Math.round(12 * s), size: Math.round(11 * s), font: f[3], words: ['ST', 'ELSEWHERE', 'GENERAL', 'HOSPITAL'], colour: opts.grey ? 'grey' : 'bright' },
    { x: -Math.round(150 * s), y: -Math.round(12 * s), size: Math.round(16 * s), font: f[4], weight: 'bold', words: ['ACC', PATIENT.accession], colour: 'bright' },
  ];
}

/** Builds the evaluation set into `dir`; returns the cases with their ground truth. */
export async function buildEvalSet(dir) {
  await initCodecs();
  mkdirSync(dir, { recursive: true });
  const cases = [];
  const make = async (id, rel, lineSets, copies) => {
    const src = readDicom(readFileSync(join(TESTDATA, rel)));
    const img = decodePixelData(src.dataset, src.transferSyntaxUID);
    const d = img.desc;
    const truth = [];
    for (let f = 0; f < img.frames.length; f++) {
      const words = await layout(lineSets(f), d.columns, d.rows);
      truth.push(burn(img.frames[f], d, words));
    }
    for (const kind of copies) {
      const path = join(dir, `${id}.${kind}.dcm`);
      if (kind === 'native') writeNative(src, d, img.frames, path);
      else writeEncoded(src, d, img.frames, kind, path);
      cases.push({ name: `${id} (${kind})`, path, source: rel, desc: `${d.columns}x${d.rows} ${d.photometric} ${d.bitsStored}/${d.bitsAllocated}-bit${d.pixelRepresentation ? ' signed' : ''}, ${img.frames.length} frame(s)`, truth });
    }
  };

  // 16-bit signed CT, text at the brightest tissue value and grey.
  await make('ct16', 'dicomparser/CT1_UNC.explicit_little_endian.dcm', () => [
    ...phiLines(512, 512, 1, { grey: true }),
    { x: 240, y: 260, size: 12, font: FONTS[2], words: [name[0], 'R'], colour: 'bright' },
  ], ['native', 'rle', 'jpeg-lossless']);
  // 12-bit MR with an overlay, serif and narrow fonts.
  await make('mr12', 'pydicom/examples_overlay.dcm', () => phiLines(484, 300, 0.9, { fonts: ['Liberation Serif', 'DejaVu Serif', 'Liberation Sans Narrow', 'DejaVu Sans Mono', 'Nimbus Sans'] }), ['native']);
  // 8-bit grey: a light banner with dark text (the ultrasound layout) plus bright text; JPEG baseline copy.
  await make('ot8', 'dicomparser/deflate/image_dfl', () => [
    { x: 6, y: 16, size: 13, font: FONTS[0], words: [`${name[0]}^${name[1]}`, PATIENT.id, date], colour: 'dark', band: true },
    ...phiLines(512, 512, 1.3).slice(2),
  ], ['native', 'jpeg-baseline']);
  // RGB photograph-like content (JPEG source), coloured text, large sizes; JPEG baseline copy.
  await make('rgb', 'deid-data/dicom-cookies/image1.dcm', () => [
    { x: 40, y: 70, size: 44, font: FONTS[0], words: [`${name[0]},`, name[1]], colour: [255, 255, 0] },
    { x: 40, y: 130, size: 36, font: FONTS[2], words: ['MRN', PATIENT.id], colour: [255, 255, 255] },
    { x: -560, y: 70, size: 36, font: FONTS[1], words: ['DOB', date, '14:22:05'], colour: [0, 255, 255] },
    { x: 40, y: -40, size: 30, font: FONTS[3], words: ['ST', 'ELSEWHERE', 'GENERAL', 'HOSPITAL'], colour: [20, 20, 20], band: true },
  ], ['native', 'jpeg-baseline']);
  // Multi-frame RGB ultrasound, small text, a clock that changes in every frame; JPEG baseline copy.
  await make('us-rgb-cine', 'dicomparser/encapsulated/multi-frame/IM00001.implicit_little_endian.dcm', (f) => [
    { x: 4, y: 12, size: 10, font: FONTS[0], words: [`${name[0]},${name[1]}`, PATIENT.id], colour: [255, 255, 255] },
    { x: -96, y: 12, size: 10, font: FONTS[2], words: [`14:22:0${f}`], colour: [255, 255, 255] },
    { x: 4, y: -6, size: 11, font: FONTS[1], words: ['DOB', date], colour: [230, 230, 120] },
  ], ['native', 'jpeg-baseline']);
  // Multi-frame 16-bit CT with different text in each frame; RLE copy.
  await make('ct-frames', 'dicomparser/encapsulated/multi-frame/CT0012.explicit_little_endian.dcm', (f) => [
    { x: 10, y: 24, size: 15, font: FONTS[f % FONTS.length], words: f === 0 ? [`${name[0]}^${name[1]}`, PATIENT.id] : ['SERIES', `${PATIENT.accession}`, date], colour: 'bright' },
    { x: -200, y: -14, size: 13, font: FONTS[(f + 2) % FONTS.length], words: f === 0 ? ['1962-03-14'] : ['14:22:05', 'PM'], colour: 'grey' },
  ], ['native', 'rle']);
  return cases;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] ?? join(process.cwd(), 'pixel-eval-set');
  const cases = await buildEvalSet(dir);
  for (const c of cases) console.log(`${c.name.padEnd(28)} ${c.desc}  ${c.truth.reduce((s, t) => s + t.length, 0)} words  → ${c.path}`);
}
