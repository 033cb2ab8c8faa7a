/**
 * Study completion: a study whose objects are all exported or quarantined and that has been quiet for
 * `quietSeconds` is complete. Completion is logged (by the study's keyed hash) and, with `webhook`,
 * POSTed as `{event: 'study.completed', study}`. A study completed more than `keepDays` ago is
 * forgotten (tracking and catalog), so that a service running for years does not grow without end.
 */
import type { Logger } from 'pino';
import type { StudyRecord, StudyTracker } from './studies.js';

export interface CompletionSettings {
  readonly quietSeconds: number;
  readonly webhook?: string;
  /** 0 or absent: completed studies are kept for ever. */
  readonly keepDays?: number;
}

/** How often completed studies are looked at for forgetting. */
const FORGET_EVERY_MS = 60_000;

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

/** Forgets the studies completed more than `keepDays` ago, and what `forgotten` keeps of each (the catalog). */
export async function forgetOld(tracker: StudyTracker, keepDays: number, log: Logger, forgotten?: (study: string) => Promise<void>, now = Date.now()): Promise<string[]> {
  const gone = await tracker.forgetCompletedBefore(now - keepDays * 86_400_000);
  for (const study of gone) await forgotten?.(study);
  if (gone.length) log.info({ studies: gone.length, keepDays }, 'forgot studies completed before the retention period');
  return gone;
}

/** Checks for completed studies every few seconds (a quarter of the quiet period, between 0.2 and 5 s). */
export function watchStudyCompletion(tracker: StudyTracker, settings: CompletionSettings, log: Logger, forgotten?: (study: string) => Promise<void>): { close(): Promise<void> } {
  let forgetAt = 0;
  const timer = setInterval(async () => {
    try {
      for (const s of await tracker.completeQuiet(settings.quietSeconds * 1000)) await notifyCompleted(settings, log, s);
      if (settings.keepDays && Date.now() >= forgetAt) {
        forgetAt = Date.now() + FORGET_EVERY_MS;
        await forgetOld(tracker, settings.keepDays, log, forgotten);
      }
    } catch (e) {
      log.warn({ err: (e as Error).name }, 'study completion check failed');
    }
  }, Math.min(5000, Math.max(200, settings.quietSeconds * 250)));
  timer.unref();
  return { close: async () => clearInterval(timer) };
}
