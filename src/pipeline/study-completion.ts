/**
 * Study completion: a study whose objects are all exported or quarantined and that has been quiet for
 * `quietSeconds` is complete. Completion is logged (by the study's keyed hash) and, with `webhook`,
 * POSTed as `{event: 'study.completed', study}`.
 */
import type { Logger } from 'pino';
import type { StudyRecord, StudyTracker } from './studies.js';

export interface CompletionSettings {
  readonly quietSeconds: number;
  readonly webhook?: string;
}

async function notifyCompleted(settings: CompletionSettings, log: Logger, s: StudyRecord): Promise<void> {
  log.info({ study: s.id, received: s.received, exported: s.exported, quarantined: s.quarantined }, 'study complete');
  if (!settings.webhook) return;
  try {
    const res = await fetch(settings.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'study.completed', study: s }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) log.warn({ study: s.id, status: res.status }, 'study webhook answered with an error');
  } catch (e) {
    log.warn({ study: s.id, err: (e as Error).name }, 'study webhook failed');
  }
}

/** Checks for completed studies every few seconds (a quarter of the quiet period, between 0.2 and 5 s). */
export function watchStudyCompletion(tracker: StudyTracker, settings: CompletionSettings, log: Logger): { close(): Promise<void> } {
  const timer = setInterval(async () => {
    try {
      for (const s of await tracker.completeQuiet(settings.quietSeconds * 1000)) await notifyCompleted(settings, log, s);
    } catch (e) {
      log.warn({ err: (e as Error).name }, 'study completion check failed');
    }
  }, Math.min(5000, Math.max(200, settings.quietSeconds * 250)));
  timer.unref();
  return { close: async () => clearInterval(timer) };
}
