/**
 * The web console (issue 12) in a real browser: Debian's chromium driven by playwright-core, headless,
 * against `deid serve` started as a real process on 127.0.0.1 port 0 with a temporary data directory,
 * and real DICOM from the shared corpus. Screenshots of the main pages are kept in
 * test-artifacts/console/ (git-ignored) to look at.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findElement, withElement } from '../src/dicom/element.js';
import { readDicom } from '../src/dicom/reader.js';
import { TAG } from '../src/dicom/tag.js';
import { asciiBytes, rawString } from '../src/dicom/values.js';
import { writeDicom } from '../src/dicom/writer.js';
import { REPO_ROOT, corpusFile, tempDir } from './helpers/corpus.js';
import { waitFor } from './helpers/ports.js';
import { startServiceProcess, type ServiceProcess } from './helpers/service.js';
import { writeStudy } from './helpers/study.js';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN = 'admin-token-for-console-tests';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'console');
const PATIENT = { patientName: 'CONSOLE^CORA', patientId: 'CONS-4471' };
const STUDY_UID = '1.2.826.0.1.3680043.10.1138.12.1';
const US = 'deid-data/ultrasounds/GREYSCALE_IMAGE.dcm';
/** A rectangle over the ultrasound's image area (not its burned-in header text), in image pixels. */
const REGION = { x0: 420, y0: 330, x1: 620, y1: 470 };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
/** The little of the DOM the page-side callbacks use (the project's typecheck has no DOM library). */
type Img = { complete: boolean; naturalWidth: number; naturalHeight: number; value: number };
type Win = { location: { hash: string }; document: { cookie: string; getElementById(id: string): { replaceChildren(): void } } };

const filesUnder = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name.endsWith('.dcm')).map((d) => join(d.parentPath, d.name)).sort() : [];

/** Pixel values of a DICOM object as dcmtk renders them (an independent decoder): width, height, 8-bit grey. */
function pgm(path: string, out: string): { width: number; height: number; data: Buffer } {
  const r = spawnSync('dcmj2pnm', ['--write-raw-pnm', '--no-windowing', path, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dcmj2pnm failed: ${r.stderr}`);
  const b = readFileSync(out);
  const m = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(b.subarray(0, 64).toString('latin1'))!;
  return { width: +m[1]!, height: +m[2]!, data: b.subarray(m[0].length) };
}

function regionValues(img: { width: number; data: Buffer }, r: typeof REGION): number[] {
  const out: number[] = [];
  for (let y = r.y0; y < r.y1; y++) for (let x = r.x0; x < r.x1; x++) out.push(img.data[y * img.width + x]!);
  return out;
}

/** The entries of a zip, read by Python's zipfile (an independent reader): name → size. */
function zipListing(path: string): Record<string, number> {
  const r = spawnSync('python3', ['-c', 'import sys,zipfile,json; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps({i.filename:i.file_size for i in z.infolist()}))', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 zipfile: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

function zipMember(path: string, name: string): string {
  const r = spawnSync('python3', ['-c', 'import sys,zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())', path, name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 zipfile: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!existsSync(CHROMIUM))('the web console in a real browser (chromium, headless)', () => {
  const tmp = tempDir('deid-console-');
  const dataDir = join(tmp.path, 'data');
  const exportDir = join(tmp.path, 'export');
  const config = join(tmp.path, 'deid.yaml');
  let service: ServiceProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  const api = async (path: string, init: RequestInit = {}): Promise<Json> => {
    const r = await fetch(`${service.url}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers ?? {}) } });
    return r.status === 204 ? null : r.json();
  };
  /**
   * Waits until something is held for review. An object released from quarantine that fails again
   * (e.g. OCR not answering on a loaded machine) goes back there: then the wait fails with its code.
   */
  const untilHeld = () =>
    waitFor(async () => {
      if (((await api('/api/console/review')).entries as Json[]).length) return true;
      const back = ((await api('/api/console/quarantine')).entries as Json[]).find((e) => (e.requeues ?? 0) > 0 && e.code !== 'DEID_ERR_REJECTED_IN_REVIEW');
      if (back) throw new Error(`the released object was quarantined again: ${back.code} ${back.detail ?? ''}`);
      return undefined;
    }, 170_000, 'the released object to be held for review');
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const go = async (hash: string) => {
    await page.evaluate((h) => ((globalThis as unknown as Win).location.hash = h), hash);
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(
      config,
      [
        `auth: { adminToken: ${ADMIN} }`,
        'studies: { quietSeconds: 1 }',
        'review: pixels',
        // The scenarios here were written for images that reach quarantine uncleaned (the ultrasound) and a
        // study that goes straight through; pixel cleaning (on by default) is what the console's redaction adds.
        'cleanPixelData: false',
        'pipeline:',
        '  - { stage: filter }',
        '  - { stage: header, profile: basic }',
        '  - { stage: verify }',
        `  - { stage: export, destinations: ["${exportDir}"], maxAttempts: 2, backoffMs: 100 }`,
        '',
      ].join('\n'),
    );
    service = await startServiceProcess(['--config', config, '--data-dir', dataDir]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    expect(await service?.stop()).toBe(0);
    tmp.cleanup();
  });

  it('should serve the console from the service itself, nothing from another origin, with a strict policy', async () => {
    const r = await fetch(`${service.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'self'; script-src 'self'/);
    const html = await r.text();
    for (const name of ['app.js', 'core.js', 'dashboard.js', 'studies.js', 'quarantine.js', 'review.js', 'viewer.js', 'upload.js', 'unzip.js', 'style.css']) {
      const a = await fetch(`${service.url}/console/${name}`);
      expect(a.status, name).toBe(200);
      expect(await a.text(), name).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
    expect(html).not.toMatch(/https?:\/\//);
    // Without a session or the token, the API refuses.
    expect((await fetch(`${service.url}/api/console/overview`)).status).toBe(401);
  });

  it('should refuse a wrong token in words, then sign in and show the live dashboard', async () => {
    const failures: string[] = [];
    page.on('requestfailed', (req) => failures.push(req.url()));
    page.on('request', (req) => {
      if (!req.url().startsWith(service.url)) failures.push(`other origin: ${req.url()}`);
    });
    await page.goto(service.url);
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#sign-in-error').textContent()).toMatch(/DEID_ERR_UNAUTHORIZED/);
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('h1', { hasText: 'Dashboard' }).waitFor();
    // The session cookie: HttpOnly, SameSite=Strict, invisible to the page's script.
    const cookie = (await context.cookies()).find((c) => c.name === 'deid_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate(() => (globalThis as unknown as Win).document.cookie)).not.toContain('deid_session');
    // Live: the feed connects and the stage table fills from its first status event.
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await page.locator('tr[data-stage="export"]').waitFor();
    expect(failures.filter((f) => !f.includes('/api/console/events'))).toEqual([]);
  });

  it('should upload a multi-file study from the corpus, watch it complete, and download it as a teaching file', async () => {
    const files = writeStudy(join(tmp.path, 'study'), {
      ...PATIENT,
      studyUid: STUDY_UID,
      sources: [
        // CTs (not secondary captures, which are refused uncleaned here as text-prone).
        { file: 'dicomparser/CT1_UNC.explicit_little_endian.dcm', series: 1, copies: 2 },
        { file: 'pydicom/CT_small.dcm', series: 2 },
        { file: 'pydicom/MR_small.dcm', series: 3 },
      ],
    });
    await go('#/upload');
    await page.locator('#dropzone').waitFor();
    await page.locator('#files').setInputFiles(files.map((f) => f.path));
    await page.locator('#upload-summary', { hasText: `Done: ${files.length} stored, 0 refused` }).waitFor({ timeout: 60_000 });
    expect(await page.locator('ol.uploads li.ok').count()).toBe(files.length);
    expect(await page.locator('#overall').evaluate((e) => (e as unknown as Img).value)).toBe(1);
    await shot('upload');

    // The studies list updates by itself until the study is complete, with its new identity.
    await go('#/studies');
    const row = page.locator('table.studies tbody tr').filter({ hasText: '2.25.' }).first();
    await row.locator('text=complete').first().waitFor({ timeout: 60_000 });
    const newStudy = (await row.locator('code.uid').textContent())!;
    expect(newStudy).toMatch(/^2\.25\.\d+$/);
    expect(await row.textContent()).not.toContain(PATIENT.patientId);
    await shot('studies');
    // Found by what arrived in the PACS: its new StudyInstanceUID.
    await page.getByLabel('Find').fill(newStudy);
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('table.studies tbody tr[data-study]').count()).toBe(1);
    expect(await page.locator('table.studies tbody tr[data-study] code.uid').textContent()).toBe(newStudy);
    await page.getByLabel('Find').fill('2.25.0');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('td', { hasText: 'No studies match.' }).waitFor();

    // The study page: series and objects with their outcomes.
    await page.getByLabel('Find').fill(newStudy);
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('table.studies tbody tr[data-study]').count()).toBe(1);
    await page.locator('table.studies tbody tr[data-study] a').first().click();
    await page.locator('h1', { hasText: 'Study' }).waitFor();
    await expect.poll(() => page.locator('tr[data-object]').count()).toBe(files.length);
    expect(await page.locator('section.series').count()).toBe(3);
    expect(await page.locator('tr[data-object] .badge', { hasText: 'exported' }).count()).toBe(files.length);
    await shot('study');

    // Download: the de-identified files in study/series folders, and case.json.
    await page.locator('#key-images').check();
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    const zipPath = join(tmp.path, 'case.zip');
    await download.saveAs(zipPath);
    const listing = zipListing(zipPath);
    const dicoms = Object.keys(listing).filter((n) => n.endsWith('.dcm'));
    expect(dicoms).toHaveLength(files.length);
    for (const n of dicoms) expect(n.split('/')).toHaveLength(3);
    expect(dicoms.every((n) => n.startsWith(`${newStudy}/`))).toBe(true);
    expect(Object.keys(listing).filter((n) => n.startsWith('key-images/') && n.endsWith('.png')).length).toBeGreaterThan(0);
    const caseFile = JSON.parse(zipMember(zipPath, 'case.json')) as Json;
    expect(caseFile.study).toBe(newStudy);
    expect(caseFile.modalities.sort()).toEqual(['CT', 'MR']);
    expect(caseFile.series).toHaveLength(3);
    // The basic profile empties StudyDate: there are no days to relate (a profile that shifts dates gives them).
    expect(caseFile.studies).toEqual([{ studyInstanceUid: newStudy, relativeDays: null, thisCase: true }]);
    const zipText = readFileSync(zipPath).toString('latin1');
    expect(zipText).not.toContain(PATIENT.patientName);
    expect(zipText).not.toContain(STUDY_UID);
  }, 120_000);

  it('should open a quarantined ultrasound, show both previews (the original labelled PHI and never cached), and save a signature', async () => {
    const files = writeStudy(join(tmp.path, 'us'), { ...PATIENT, studyUid: `${STUDY_UID}.2`, sources: [{ file: US, series: 1, copies: 2 }] });
    await go('#/upload');
    await page.locator('#files').setInputFiles(files.map((f) => f.path));
    await page.locator('#upload-summary', { hasText: 'Done: 2 stored' }).waitFor({ timeout: 30_000 });
    // BurnedInAnnotation YES under a profile without clean-pixel-data: quarantined at the header stage.
    await go('#/quarantine');
    await expect.poll(() => page.locator('tr[data-entry]').count(), { timeout: 30_000 }).toBe(2);
    expect(await page.locator('tr[data-entry]').first().textContent()).toContain('DEID_ERR_BURNED_IN');
    await shot('quarantine');

    const frames: Array<{ url: string; cache: string | null; phi: string | null }> = [];
    page.on('response', (r) => {
      if (r.url().includes('/frames/')) frames.push({ url: r.url(), cache: r.headers()['cache-control'] ?? null, phi: r.headers()['x-deid-phi'] ?? null });
    });
    await page.locator('tr[data-entry] a').first().click();
    await page.locator('.words').waitFor();
    expect(await page.locator('.words').textContent()).toContain('burned-in annotation');
    for (const id of ['#preview-before', '#preview-after']) {
      await expect.poll(() => page.locator(id).evaluate((img) => (img as unknown as Img).complete && (img as unknown as Img).naturalWidth), { timeout: 20_000 }).toBe(1024);
    }
    expect(await page.locator('figure .badge.phi').textContent()).toMatch(/PHI/);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const f of frames) expect(f.cache).toBe('no-store');

    // Draw the region on the original, then save it as a signature of this device and size.
    const masked = page.waitForResponse((r) => r.url().includes('view=after&regions='));
    await drawRegion(page, REGION);
    await expect.poll(() => page.locator('ul.regions li').first().textContent()).toMatch(/x 4\d\d–6\d\d/);
    expect((await masked).headers()['content-type']).toBe('image/png');
    await page.waitForTimeout(200);
    await shot('quarantine-entry');
    await page.locator('#save-signature').click();
    await page.locator('.toast.info', { hasText: 'saved' }).waitFor();
    const sigFile = readFileSync(join(dataDir, 'signatures.yaml'), 'utf8');
    expect(sigFile).toMatch(/Rows: 768/);
    expect(sigFile).toMatch(/Columns: 1024/);
    expect(sigFile).not.toContain(PATIENT.patientName);
  }, 90_000);

  it('should release a drawn rectangle on the ultrasound, hold it for review, and export it with those pixels masked once approved', async () => {
    await go('#/quarantine');
    await page.locator('tr[data-entry] a').first().click();
    await page.locator('#preview-before').waitFor();
    await expect.poll(() => page.locator('#preview-before').evaluate((img) => (img as unknown as Img).naturalWidth), { timeout: 20_000 }).toBe(1024);
    await drawRegion(page, REGION);
    await page.locator('#release').click();
    await page.locator('.toast.info', { hasText: 'Released' }).waitFor();

    // The pixel stage ran with the region (and its OCR), verification passed, and review: pixels holds it.
    await untilHeld();
    await go('#/review');
    await page.locator('tr[data-review] a').first().waitFor({ timeout: 20_000 });
    await page.locator('tr[data-review] a').first().click();
    await page.locator('#approve').waitFor();
    for (const id of ['#preview-before', '#preview-after']) {
      await expect.poll(() => page.locator(id).evaluate((img) => (img as unknown as Img).complete && (img as unknown as Img).naturalWidth), { timeout: 20_000 }).toBe(1024);
    }
    expect(await page.locator('dd', { hasText: '1 manual' }).count()).toBe(1);
    await shot('review-entry');
    const before = new Set(filesUnder(exportDir));
    await page.locator('#approve').click();
    await page.locator('.toast.info', { hasText: 'Approved' }).waitFor();
    const exported = await waitFor(() => filesUnder(exportDir).find((f) => !before.has(f)), 30_000, 'the approved object to be exported');

    // dcmtk decodes the exported pixels: the drawn region is black; in the original it was not.
    const out = pgm(exported, join(tmp.path, 'out.pgm'));
    const orig = pgm(corpusFile(US), join(tmp.path, 'orig.pgm'));
    expect(out.width).toBe(1024);
    expect(regionValues(out, REGION).every((v) => v === 0)).toBe(true);
    expect(regionValues(orig, REGION).filter((v) => v > 0).length).toBeGreaterThan(1000);
    const ds = readDicom(readFileSync(exported)).dataset;
    expect(rawString(findElement(ds, TAG.BurnedInAnnotation)?.value).trim()).toBe('NO');
    expect(readFileSync(exported).toString('latin1')).not.toContain(PATIENT.patientName);
  }, 240_000);

  it('should reject a held object into the quarantine with the reason "rejected in review"', async () => {
    // The second ultrasound: released through the API with a region, so that it is held too.
    const entry = ((await api('/api/console/quarantine')).entries as Json[]).find((e) => e.code === 'DEID_ERR_BURNED_IN');
    const released = await fetch(`${service.url}/api/console/quarantine/${entry.id}/release`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ regions: [REGION] }),
    });
    expect(released.status).toBe(202);
    await untilHeld();
    await go('#/review');
    await page.locator('tr[data-review] a').first().waitFor({ timeout: 20_000 });
    await shot('review');
    await page.locator('tr[data-review] a').first().click();
    await page.locator('#reject').click();
    await page.locator('#confirm-ok').click();
    await page.locator('.toast.info', { hasText: 'Rejected' }).waitFor();
    await go('#/quarantine');
    await page.locator('tr[data-entry]', { hasText: 'DEID_ERR_REJECTED_IN_REVIEW' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('tr[data-entry]', { hasText: 'DEID_ERR_REJECTED_IN_REVIEW' }).textContent()).toContain('rejected in review');
  }, 240_000);

  it('should step through the frames of a multi-frame object, each rendered at full resolution', async () => {
    // A two-frame RLE secondary capture declaring burned-in text: quarantined at the header stage.
    const src = readDicom(readFileSync(corpusFile('pydicom/SC_rgb_rle_2frame.dcm')));
    const marked = withElement(src.dataset, { tag: TAG.BurnedInAnnotation, vr: 'CS', value: asciiBytes('YES', 'CS') });
    const path = join(tmp.path, 'two-frames.dcm');
    writeFileSync(path, writeDicom({ ...src, dataset: marked }));
    await go('#/upload');
    await page.locator('#files').setInputFiles([path]);
    await page.locator('#upload-summary', { hasText: 'Done: 1 stored' }).waitFor({ timeout: 30_000 });
    await go('#/quarantine');
    await page.locator('tr[data-entry]', { hasText: 'DEID_ERR_BURNED_IN' }).first().waitFor();
    await page.locator('tr[data-entry] a').first().click();
    await page.locator('.viewer-controls', { hasText: 'Frame 1 of 2' }).waitFor();
    const second = page.waitForResponse((r) => /\/frames\/1\?view=after/.test(r.url()));
    await page.getByRole('button', { name: 'Next frame' }).click();
    await page.locator('.viewer-controls', { hasText: 'Frame 2 of 2' }).waitFor();
    expect((await second).status()).toBe(200);
    await expect.poll(() => page.locator('#preview-before').evaluate((img) => (img as unknown as Img).complete && (img as unknown as Img).naturalWidth)).toBe(100);
    // Zoomed to 200%: the image is drawn at twice its size, in a scrolling pane.
    await page.getByLabel('Zoom').selectOption('2');
    expect(Math.round((await page.locator('#preview-before').boundingBox())!.width)).toBe(200);
  });

  it('should upload a zip of DICOM, unpacked in the browser, each file over STOW-RS', async () => {
    const files = writeStudy(join(tmp.path, 'zipped'), { ...PATIENT, studyUid: `${STUDY_UID}.3`, sources: [{ file: 'pydicom/CT_small.dcm', series: 1, copies: 2 }] });
    const zipPath = join(tmp.path, 'case-upload.zip');
    const made = spawnSync('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],"w",zipfile.ZIP_DEFLATED); [z.write(f, "case/"+f.rsplit("/",1)[1]) for f in sys.argv[2:]]; z.close()', zipPath, ...files.map((f) => f.path)]);
    expect(made.status).toBe(0);
    await go('#/upload');
    await page.locator('#files').setInputFiles([zipPath]);
    await page.locator('#upload-summary', { hasText: 'Done: 2 stored, 0 refused' }).waitFor({ timeout: 30_000 });
    expect(await page.locator('ol.uploads li.ok').count()).toBe(2);
  });

  it('should report a failed action in words with its code', async () => {
    // A requeue under a profile that does not exist.
    await go('#/quarantine');
    await page.locator('tr[data-entry] a').first().click();
    await page.locator('#rq-profile').fill('no-such-profile');
    await page.getByRole('button', { name: 'Requeue with these' }).click();
    await page.locator('.toast', { hasText: 'DEID_ERR_PROFILE_NOT_FOUND' }).waitFor();
    // Delete asks first, and Cancel keeps the entry.
    await page.locator('#delete').click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.locator('.words').count()).toBe(1);
  });

  it('should give every control a label and reach the pages from the keyboard', async () => {
    const unlabelled: string[] = [];
    const titles: Record<string, string> = { '#/dashboard': 'Dashboard', '#/studies': 'Studies', '#/quarantine': 'Quarantine', '#/upload': 'Upload a teaching file', '#/review': 'Review' };
    for (const [hash, title] of Object.entries(titles)) {
      await go(hash);
      await page.locator('main h1', { hasText: new RegExp(`^${title}$`) }).waitFor();
      unlabelled.push(
        ...(await page.locator('main input, main select, main button, main a').evaluateAll((els) =>
          els
            .filter((e) => {
              const x = e as unknown as { labels?: ArrayLike<unknown>; getAttribute(n: string): string | null; textContent: string | null; id: string; tagName: string };
              return !((x.labels && x.labels.length) || x.getAttribute('aria-label') || x.getAttribute('aria-labelledby') || (x.textContent ?? '').trim());
            })
            .map((e) => `${(e as unknown as { tagName: string }).tagName}#${(e as unknown as { id: string }).id}`),
        )).map((w) => `${hash}: ${w}`),
      );
    }
    expect(unlabelled).toEqual([]);
    // The skip link comes first, and shows when focused; Tab then reaches the navigation, and Enter follows a link.
    await page.locator('a.skip').focus();
    expect((await page.locator('a.skip').boundingBox())!.x).toBeGreaterThanOrEqual(0);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent)).toBe('Studies');
    await page.keyboard.press('Enter');
    await page.locator('h1', { hasText: 'Studies' }).waitFor();
  });

  it('should show the dashboard figures the pipeline reports, live', async () => {
    await go('#/dashboard');
    await expect.poll(async () => Number(((await page.locator('tr[data-stage="export"] td').nth(2).textContent()) ?? '0').replace(/,/g, '')), { timeout: 20_000 }).toBeGreaterThanOrEqual(5);
    expect(await page.locator('.kpi', { hasText: 'Disk free' }).textContent()).toMatch(/GiB|MiB|TiB/);
    expect(await page.locator('svg.chart path[data-stage="export"]').count()).toBe(1);
    expect(await page.locator('tr', { hasText: 'STOW-RS' }).textContent()).toMatch(/STOW-RS\s*\d/);
    await page.evaluate(() => (globalThis as unknown as Win).document.getElementById('toasts').replaceChildren());
    await shot('dashboard');
  });

  it('should refuse a state-changing request without the CSRF token, and refuse the old cookie after signing out', async () => {
    const cookie = (await context.cookies()).find((c) => c.name === 'deid_session')!;
    const header = { cookie: `deid_session=${cookie.value}` };
    expect((await fetch(`${service.url}/api/console/overview`, { headers: header })).status).toBe(200);
    const noCsrf = await fetch(`${service.url}/api/quarantine/0123456789abcdef0123456789abcdef/requeue`, { method: 'POST', headers: header });
    expect(noCsrf.status).toBe(403);
    expect(((await noCsrf.json()) as Json).code).toBe('DEID_ERR_CSRF');
    await page.locator('#sign-out').click();
    await page.getByLabel('Admin token').waitFor();
    expect((await fetch(`${service.url}/api/console/overview`, { headers: header })).status).toBe(401);
    expect((await fetch(`${service.url}/api/status`, { headers: header })).status).toBe(401);
    // No PHI in the service's log.
    expect(service.logs()).not.toContain(PATIENT.patientName);
    expect(service.logs()).not.toContain(PATIENT.patientId);
  });
});

/** Drags a rectangle on the original preview, from image pixel coordinates to the screen's. */
async function drawRegion(page: Page, r: typeof REGION): Promise<void> {
  const box = (await page.locator('#preview-before').boundingBox())!;
  const w = await page.locator('#preview-before').evaluate((img) => (img as unknown as Img).naturalWidth);
  const h = await page.locator('#preview-before').evaluate((img) => (img as unknown as Img).naturalHeight);
  const at = (x: number, y: number) => [box.x + (x / w) * box.width, box.y + (y / h) * box.height] as const;
  // A little beyond the corners: the screen's pixels are coarser than the image's.
  const [ax, ay] = at(r.x0 - 2, r.y0 - 2);
  const [bx, by] = at(r.x1 + 2, r.y1 + 2);
  await page.mouse.move(ax, ay);
  await page.mouse.down();
  await page.mouse.move((ax + bx) / 2, (ay + by) / 2, { steps: 4 });
  await page.mouse.move(bx, by, { steps: 4 });
  await page.mouse.up();
}
