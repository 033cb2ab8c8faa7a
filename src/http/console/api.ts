/**
 * The console's API, inside the admin scope (bearer token, or a console session with its CSRF token on
 * state-changing requests): the dashboard's overview, studies paged on the server with their new
 * identity, quarantine review with frame previews, the review hold, manual redaction, "save as
 * signature" and the teaching-file download. Every answer is `Cache-Control: no-store`: some show PHI
 * (a preview of an original), and none need caching. Nothing here logs a value of an object.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DeidError, ERRORS, isDeidError } from '../../errors.js';
import { frameInfo, framePng } from '../../pipeline/frames.js';
import type { ManualRegion } from '../../pipeline/jobs.js';
import type { QuarantineEntry } from '../../pipeline/quarantine.js';
import type { DiskGuard } from '../../pipeline/readiness.js';
import { MAX_REGIONS } from '../../pipeline/review-desk.js';
import type { Pipeline } from '../../pipeline/runtime.js';
import { saveSignature, signatureFor } from '../../pipeline/site-signatures.js';
import type { StudyRecord, StudyTracker } from '../../pipeline/studies.js';
import { sendError } from '../replies.js';
import { registerEvents } from './events.js';
import { teachingFileZip } from './teaching-file.js';

export interface ConsoleApiOptions {
  readonly pipeline: Pipeline;
  readonly tracker: StudyTracker;
  /** The deployment status (as /api/status answers it). */
  readonly status: () => Promise<Record<string, unknown>>;
  readonly disk?: DiskGuard;
  /** Folder destinations (absolute paths): where the teaching-file download finds a study. */
  readonly exportFolders: () => readonly string[];
  /** Applies the configuration again (after a signature was saved), so every profile reads the new file. */
  readonly reload?: () => Promise<unknown>;
}

const REGION = {
  type: 'object',
  additionalProperties: false,
  required: ['x0', 'y0', 'x1', 'y1'],
  properties: { x0: { type: 'integer', minimum: 0, maximum: 65535 }, y0: { type: 'integer', minimum: 0, maximum: 65535 }, x1: { type: 'integer', minimum: 0, maximum: 65535 }, y1: { type: 'integer', minimum: 0, maximum: 65535 } },
} as const;
const REGIONS = { type: 'array', maxItems: MAX_REGIONS, items: REGION } as const;

/** The element path a header finding names in its detail, e.g. `(0010,0010)` or `(0040,0275)[0]/(0032,1060)`. */
export function elementPath(detail: string | undefined): string | undefined {
  return /(?:first at|element) (\S+)/.exec(detail ?? '')?.[1];
}

/** Regions from a query string (`regions=x0,y0,x1,y1;…`), checked. */
function regionsOf(q: string | undefined): ManualRegion[] {
  const out: ManualRegion[] = [];
  for (const part of (q ?? '').split(';').slice(0, MAX_REGIONS)) {
    const n = part.split(',').map(Number);
    if (n.length === 4 && n.every((v) => Number.isInteger(v) && v >= 0 && v <= 65535)) out.push({ x0: n[0]!, y0: n[1]!, x1: n[2]!, y1: n[3]! });
  }
  return out;
}

const page = (q: { page?: string; size?: string }) => {
  const size = Math.min(200, Math.max(1, Number.parseInt(q.size ?? '25', 10) || 25));
  return { size, page: Math.max(1, Number.parseInt(q.page ?? '1', 10) || 1) };
};

function studyState(s: StudyRecord): 'complete' | 'in progress' | 'with quarantine' {
  if (s.quarantined > 0) return 'with quarantine';
  return s.completedAt ? 'complete' : 'in progress';
}

/** A quarantine entry as the console shows it: the reason in words, the element path of a header finding. */
function described(e: QuarantineEntry) {
  return { ...e, words: ERRORS[e.code], elementPath: elementPath(e.detail) };
}

async function png(reply: FastifyReply, render: () => Promise<Buffer>, phi: boolean): Promise<FastifyReply> {
  try {
    const body = await render();
    // An original's render shows burned-in text: labelled for the page, and never cached.
    return reply.header('Cache-Control', 'no-store').header('X-Deid-Phi', phi ? 'yes' : 'no').type('image/png').send(body);
  } catch (e) {
    const err = isDeidError(e) ? e : new DeidError('DEID_ERR_PIXEL_DECODE', 'the frame could not be rendered');
    return sendError(reply, err.code, err.detail, 409);
  }
}

export function registerConsoleApi(api: FastifyInstance, o: ConsoleApiOptions): { close(): void } {
  const { pipeline } = o;
  api.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/api/console/')) reply.header('Cache-Control', 'no-store');
    return payload;
  });

  const overview = async () => {
    const disk = o.disk?.check();
    const [status, held, inQuarantine] = await Promise.all([o.status(), pipeline.review.list().then((l) => l.length), pipeline.quarantine.count()]);
    return { ...status, disk: disk && { free: disk.free, reserve: disk.reserve, ok: disk.ok }, review: held, inQuarantine, at: new Date().toISOString() };
  };
  const events = registerEvents(api, { status: pipeline.statusPort, overview });
  api.get('/api/console/overview', overview);

  // Studies: paged and filtered here, so a page costs the same with 10 or 10,000 studies.
  api.get<{ Querystring: { page?: string; size?: string; q?: string; state?: string } }>('/api/console/studies', async (req) => {
    const { page: p, size } = page(req.query);
    const q = (req.query.q ?? '').trim();
    const state = req.query.state ?? '';
    // A study key prefix, or exactly a new StudyInstanceUID or pseudonymous PatientID (what the PACS shows).
    const found = q ? new Set(await pipeline.catalog.find(q)) : undefined;
    const prefix = q.toLowerCase();
    const all = (await o.tracker.list()).filter((s) => (!q || s.id.startsWith(prefix) || found!.has(s.id)) && (!state || studyState(s) === state));
    const rows = all.slice((p - 1) * size, p * size);
    const studies = await Promise.all(rows.map(async (s) => ({ ...s, state: studyState(s), identity: await pipeline.catalog.identity(s.id).catch(() => undefined) })));
    return { total: all.length, page: p, size, studies };
  });
  api.get<{ Params: { id: string } }>('/api/console/studies/:id', async (req, reply) => {
    const s = /^[0-9a-f]{32}$/.test(req.params.id) ? await o.tracker.get(req.params.id) : undefined;
    if (!s) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    const objects = await pipeline.catalog.objects(s.id);
    const series = new Map<string, typeof objects>();
    for (const ob of objects) {
      const k = ob.identity?.seriesInstanceUid ?? '(not yet known)';
      series.set(k, [...(series.get(k) ?? []), ob]);
    }
    return {
      study: { ...s, state: studyState(s) },
      identity: objects.find((x) => x.identity)?.identity,
      series: [...series.entries()].map(([uid, list]) => ({ seriesInstanceUid: uid, objects: list })),
    };
  });
  api.get<{ Params: { id: string }; Querystring: { keyImages?: string } }>('/api/console/studies/:id/download', async (req, reply) => {
    const identity = /^[0-9a-f]{32}$/.test(req.params.id) ? await pipeline.catalog.identity(req.params.id) : undefined;
    if (!identity) return sendError(reply, 'DEID_ERR_NOT_FOUND', 'no exported object of this study yet');
    const { zip } = await teachingFileZip(o.exportFolders(), identity.studyInstanceUid, { keyImages: req.query.keyImages === '1' });
    return reply.type('application/zip').header('Content-Disposition', `attachment; filename="study-${req.params.id.slice(0, 12)}.zip"`).send(zip);
  });

  // Quarantine review.
  api.get<{ Querystring: { page?: string; size?: string; code?: string; stage?: string } }>('/api/console/quarantine', async (req) => {
    const { page: p, size } = page(req.query);
    const all = await pipeline.quarantine.list();
    const codes = [...new Set(all.map((e) => e.code))].sort();
    const stages = [...new Set(all.map((e) => e.stage))].sort();
    const hit = all.filter((e) => (!req.query.code || e.code === req.query.code) && (!req.query.stage || e.stage === req.query.stage));
    return { total: hit.length, page: p, size, codes, stages, entries: hit.slice((p - 1) * size, p * size).map(described) };
  });
  api.get<{ Params: { id: string } }>('/api/console/quarantine/:id', async (req, reply) => {
    const e = await pipeline.quarantine.get(req.params.id);
    if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    let image;
    try {
      image = frameInfo(await pipeline.quarantine.object(e.id));
    } catch {
      image = undefined; // not readable (quarantined at ingest): no preview
    }
    return { entry: described(e), image };
  });
  api.get<{ Params: { id: string; n: string }; Querystring: { view?: string; regions?: string } }>('/api/console/quarantine/:id/frames/:n', async (req, reply) => {
    const e = await pipeline.quarantine.get(req.params.id);
    if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    const regions = regionsOf(req.query.regions);
    const after = req.query.view === 'after';
    const bytes = await pipeline.quarantine.object(e.id);
    // Before: the original as received, with the drawn regions outlined. After: those regions masked.
    return png(reply, () => framePng(bytes, Number(req.params.n) || 0, after ? { fill: regions, result: true } : { outline: regions }), true);
  });
  api.get<{ Params: { id: string } }>('/api/console/quarantine/:id/original', async (req, reply) => {
    const e = await pipeline.quarantine.get(req.params.id);
    if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    return reply.type('application/dicom').header('Content-Disposition', `attachment; filename="quarantine-${e.id.slice(0, 16)}.dcm"`).send(await pipeline.quarantine.object(e.id));
  });
  // Release with drawn regions: the pixel stage runs again with them added; verification as always.
  api.post<{ Params: { id: string }; Body: { regions: ManualRegion[]; profile?: string; options?: string[] } }>(
    '/api/console/quarantine/:id/release',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['regions'],
          properties: { regions: REGIONS, profile: { type: 'string', minLength: 1, maxLength: 4096 }, options: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 64 } } },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const configured = pipeline.profileChoice;
      const choice = b.profile !== undefined || b.options !== undefined ? { profile: b.profile ?? configured.profile, options: b.options ?? configured.options } : undefined;
      const outcome = await pipeline.requeue(req.params.id, choice, b.regions);
      if (!outcome) return sendError(reply, 'DEID_ERR_NOT_FOUND');
      if (!outcome.ok) return sendError(reply, outcome.code, outcome.detail, 409);
      return reply.code(202).send({ released: req.params.id, regions: b.regions.length, profile: outcome.profile, options: outcome.options });
    },
  );

  // The review hold.
  api.get('/api/console/review', async () => ({
    entries: (await pipeline.review.list()).map((e) => ({ id: e.id, heldAt: e.heldAt, reason: e.reason, study: e.job.study, origin: e.job.origin.kind, identity: e.job.facts?.identity, pixels: e.job.facts?.pixels?.report, regions: e.job.regions ?? [] })),
  }));
  api.get<{ Params: { id: string } }>('/api/console/review/:id', async (req, reply) => {
    const e = await pipeline.review.get(req.params.id);
    if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    const { output } = await pipeline.review.objects(e);
    return { id: e.id, heldAt: e.heldAt, reason: e.reason, study: e.job.study, identity: e.job.facts?.identity, pixels: e.job.facts?.pixels?.report, regions: e.job.regions ?? [], image: frameInfo(output) };
  });
  api.get<{ Params: { id: string; n: string }; Querystring: { view?: string; regions?: string } }>('/api/console/review/:id/frames/:n', async (req, reply) => {
    const e = await pipeline.review.get(req.params.id);
    if (!e) return sendError(reply, 'DEID_ERR_NOT_FOUND');
    const { original, output } = await pipeline.review.objects(e);
    const masked = (e.job.facts?.pixels?.report.boxes ?? []).map(({ x0, y0, x1, y1 }) => ({ x0, y0, x1, y1 }));
    const drawn = regionsOf(req.query.regions);
    const n = Number(req.params.n) || 0;
    // Before: the original (PHI) with what was masked outlined. After: the object as it would be exported, with further drawn regions masked.
    if (req.query.view === 'after') return png(reply, () => framePng(output, n, { outline: masked, fill: drawn, result: true }), false);
    return png(reply, () => framePng(original, n, { outline: [...masked, ...drawn] }), true);
  });
  api.post<{ Params: { id: string } }>('/api/console/review/:id/approve', async (req, reply) =>
    (await pipeline.review.approve(req.params.id)) ? reply.code(202).send({ approved: req.params.id }) : sendError(reply, 'DEID_ERR_NOT_FOUND'),
  );
  api.post<{ Params: { id: string } }>('/api/console/review/:id/reject', async (req, reply) =>
    (await pipeline.review.reject(req.params.id)) ? reply.code(202).send({ rejected: req.params.id, code: 'DEID_ERR_REJECTED_IN_REVIEW' }) : sendError(reply, 'DEID_ERR_NOT_FOUND'),
  );
  api.post<{ Params: { id: string }; Body: { regions: ManualRegion[] } }>(
    '/api/console/review/:id/redact',
    { schema: { body: { type: 'object', additionalProperties: false, required: ['regions'], properties: { regions: { ...REGIONS, minItems: 1 } } } } },
    async (req, reply) => ((await pipeline.review.redact(req.params.id, req.body.regions)) ? reply.code(202).send({ redacted: req.params.id }) : sendError(reply, 'DEID_ERR_NOT_FOUND')),
  );

  // Save as signature: the regions, for this device and image size, into the service's signature file.
  api.post<{ Body: { from: 'quarantine' | 'review'; id: string; regions: ManualRegion[]; name?: string } }>(
    '/api/console/signatures',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['from', 'id', 'regions'],
          properties: { from: { enum: ['quarantine', 'review'] }, id: { type: 'string', pattern: '^[0-9a-f]{8,64}$' }, regions: { ...REGIONS, minItems: 1 }, name: { type: 'string', maxLength: 120 } },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      let bytes: Buffer | undefined;
      if (b.from === 'quarantine') bytes = (await pipeline.quarantine.get(b.id)) ? await pipeline.quarantine.object(b.id) : undefined;
      else {
        const e = await pipeline.review.get(b.id);
        bytes = e && (await pipeline.review.objects(e)).original;
      }
      if (!bytes) return sendError(reply, 'DEID_ERR_NOT_FOUND');
      const info = frameInfo(bytes);
      if (!info) return sendError(reply, 'DEID_ERR_BAD_REQUEST', 'the object has no pixel data');
      const saved = saveSignature(signatureFor(info, b.regions, b.name));
      await o.reload?.();
      req.log.info({ signatures: saved.count }, 'signature saved from the console');
      return reply.code(201).send({ name: saved.signature.name, when: saved.signature.when, regions: saved.signature.regions, count: saved.count });
    },
  );

  return events;
}
