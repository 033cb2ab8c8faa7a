import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Submissions } from '../pipeline/outcomes.js';
import { sendError } from './replies.js';

const STUDY = /^[0-9a-f]{32}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The admin API's manifests and reports (behind the admin token, like every /api route):
 * - `GET /api/studies/{id}/manifest`: the study's manifest (CSV, one row per object);
 * - `GET /api/studies/{id}/report` (HTML) and `/report.json`;
 * - `GET /api/days/{YYYY-MM-DD}/report` (HTML) and `/report.json`: every object that left the pipeline that day (UTC).
 */
export function registerRecordRoutes(api: FastifyInstance, submissions: Submissions | undefined): void {
  const off = (reply: FastifyReply) => sendError(reply, 'DEID_ERR_NOT_FOUND', 'reports are off (reports.enabled: false)');
  const csv = (reply: FastifyReply, name: string, body: string) => reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(body);

  api.get<{ Params: { id: string } }>('/api/studies/:id/manifest', async (req, reply) => {
    if (!submissions) return off(reply);
    const body = STUDY.test(req.params.id) ? await submissions.studyManifest(req.params.id) : undefined;
    return body === undefined ? sendError(reply, 'DEID_ERR_NOT_FOUND') : csv(reply, `study-${req.params.id}-manifest.csv`, body);
  });
  for (const json of [false, true]) {
    const suffix = json ? '.json' : '';
    api.get<{ Params: { id: string } }>(`/api/studies/:id/report${suffix}`, async (req, reply) => {
      if (!submissions) return off(reply);
      const r = STUDY.test(req.params.id) ? await submissions.studyReport(req.params.id) : undefined;
      if (!r) return sendError(reply, 'DEID_ERR_NOT_FOUND');
      return json ? r : reply.type('text/html; charset=utf-8').send(submissions.html(r));
    });
    api.get<{ Params: { day: string } }>(`/api/days/:day/report${suffix}`, async (req, reply) => {
      if (!submissions) return off(reply);
      const r = DAY.test(req.params.day) ? await submissions.dayReport(req.params.day) : undefined;
      if (!r) return sendError(reply, 'DEID_ERR_NOT_FOUND');
      return json ? r : reply.type('text/html; charset=utf-8').send(submissions.html(r));
    });
  }
}
