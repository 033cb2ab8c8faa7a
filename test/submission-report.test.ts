import { describe, expect, it } from 'vitest';
import { renderReportHtml } from '../src/report/html.js';
import { pixelOutcomeOf, type ObjectRecord } from '../src/report/object-record.js';
import { SubmissionReport } from '../src/report/submission.js';
import { packDispositions } from '../src/stages/element-dispositions.js';
import type { ObjectFacts } from '../src/stages/stage.js';

const written = (n: number, over: Partial<NonNullable<ObjectRecord['details']>> = {}): ObjectRecord => ({
  source: `in/${n}.dcm`,
  sha256: n.toString(16).padStart(64, '0'),
  outcome: 'written',
  sopInstanceUid: `2.25.${n}`,
  at: '2026-01-02T03:04:05.000Z',
  details: {
    modality: n % 3 ? 'CT' : 'MR',
    elements: packDispositions([
      { tag: 0x00100010, disposition: 'replaced' },
      { tag: 0x00080060, disposition: 'kept' },
      ...(n % 2 ? [{ tag: 0x00190010 + 0x1000, creator: 'GEMS_ACQU_01', disposition: 'kept' as const, keptBy: 'E.3.10-1' as const }] : []),
    ]),
    subject: `P${n % 4}`,
    quasiIdentifiers: { age: n % 2 ? '045Y' : '090Y', sex: 'F' },
    pixels: { examined: n % 2 === 0, masked: n % 4 === 0, boxes: n % 4 === 0 ? 2 : 0, pixelsMasked: n % 4 === 0 ? 40 : 0, unreadMasked: n === 4 ? 1 : 0, reason: n % 2 ? 'not known to carry text' : 'modality US' },
    warnings: n === 5 ? [{ kind: 'kept-identifier', detail: '(0008,0080) kept by the profile' }] : [],
    ...over,
  },
});
const quarantined = (n: number): ObjectRecord => ({ source: `in/q${n}.dcm`, sha256: (1000 + n).toString(16).padStart(64, 'f'), outcome: 'quarantined', code: 'DEID_ERR_VERIFY_LEAK', stage: 'verify', at: '2026-01-02T03:04:05.000Z' });

describe('the submission report', () => {
  const records = [...Array.from({ length: 12 }, (_, i) => written(i + 1)), quarantined(1), quarantined(2)];

  it('should add up outcomes, modalities, actions, pixels, warnings and quarantine reasons', () => {
    const r = new SubmissionReport();
    records.forEach((x) => r.add(x));
    const j = r.report({ title: 't', kThreshold: 2, generatedAt: new Date(0) });
    expect(j).toMatchObject({ objects: 14, outcomes: { written: 12, quarantined: 2, unreadable: 0 }, modalities: { CT: 8, MR: 4 }, actions: { kept: 18, replaced: 12, removed: 0 } });
    expect(j.pixels).toMatchObject({ ran: true, examined: 6, masked: 3, unreadMasked: 1, skipped: 6, skippedBecause: { 'not known to carry text': 6 } });
    expect(j.pixels.images).toHaveLength(12);
    expect(j.quarantine.reasons).toEqual([{ code: 'DEID_ERR_VERIFY_LEAK', stage: 'verify', objects: 2, message: expect.stringContaining('quality check') }]);
    expect(j.warnings).toEqual([{ kind: 'kept-identifier', detail: '(0008,0080) kept by the profile', objects: 1 }]);
    expect(j.inventory.privateCreators).toEqual([expect.objectContaining({ creator: 'GEMS_ACQU_01', objects: 6, verdict: 'kept' })]);
    expect(j.kAnonymity).toMatchObject({ subjects: 4, objects: 12 });
  });

  it('should read the pixel stage\'s report defensively, whatever of it is there', () => {
    const facts = (report: unknown, verify?: unknown) => ({ report, ...(verify ? { verify } : {}) }) as ObjectFacts['pixels'];
    expect(pixelOutcomeOf(undefined)).toBeUndefined();
    expect(pixelOutcomeOf(facts({ action: 'skipped', reason: 'no text expected' }))).toEqual({ examined: false, masked: false, boxes: 0, pixelsMasked: 0, unreadMasked: 0, reason: 'no text expected' });
    // The shape of the stage being rewritten: unread lines under `text`.
    expect(pixelOutcomeOf(facts({ action: 'cleaned', reason: 'US', boxes: [{}, {}], pixelsMasked: 9, text: { linesMasked: 3, linesUnread: 2 } }, { ok: true }))).toEqual({
      examined: true, masked: true, boxes: 2, pixelsMasked: 9, unreadMasked: 2, reason: 'US', verified: true,
    });
    // Unknown or odd values count as none, never throw.
    expect(pixelOutcomeOf(facts({ action: 'cleaned', boxes: 'many', pixelsMasked: 'x', text: null }))).toMatchObject({ examined: true, masked: false, boxes: 0, pixelsMasked: 0, unreadMasked: 0, reason: '' });
  });

  it('should escape every value in the page', () => {
    const r = new SubmissionReport();
    r.add(written(1, { modality: '<script>alert(1)</script>', warnings: [{ kind: 'x"y', detail: '<img src=x onerror=alert(1)>' }] }));
    const html = renderReportHtml(r.report({ title: 'A & <B>' }));
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('A &amp; &lt;B&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
  });
});
