/**
 * "Save as signature" (the console): regions drawn on an image become a signature for its
 * Manufacturer / ManufacturerModelName / Rows / Columns, appended to the service's signature file
 * (`<dataDir>/signatures.yaml`, CTP's DicomPixelAnonymizer library grown by its users). The new file
 * is checked the way every profile file is (each signature compiled, field by field) before it
 * replaces the old one, atomically; a reload then makes every profile with clean-pixel-data use it.
 */
import { readFileSync } from 'node:fs';
import jsYaml from 'js-yaml';
import { DeidError } from '../errors.js';
import { compileSignature, siteSignatureFile, type RawSignature } from '../profiles/pixel-settings.js';
import { writeFileAtomicSync } from './durable-fs.js';
import type { FrameInfo } from './frames.js';
import type { ManualRegion } from './jobs.js';

export interface SavedSignature {
  readonly file: string;
  readonly signature: RawSignature;
  readonly count: number;
}

/** The signature the regions make for a device: its make, model and image size select it. */
export function signatureFor(info: FrameInfo, regions: readonly ManualRegion[], name?: string): RawSignature {
  const when: Record<string, string | number> = { Rows: info.rows, Columns: info.columns };
  if (info.manufacturer) when.Manufacturer = info.manufacturer;
  if (info.model) when.ManufacturerModelName = info.model;
  const label = name?.trim() || `${info.manufacturer || 'unknown maker'} ${info.model || ''} ${info.columns}x${info.rows}`.replace(/\s+/g, ' ').trim();
  return {
    name: label.slice(0, 120),
    description: `drawn in the console on ${new Date().toISOString().slice(0, 10)}`,
    when,
    regions: regions.map((r) => [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0]),
  };
}

/** Appends a signature to the service's signature file; throws DEID_ERR_PROFILE_INVALID (nothing written) when the result does not validate. */
export function saveSignature(signature: RawSignature): SavedSignature {
  const file = siteSignatureFile();
  if (!file) throw new DeidError('DEID_ERR_CONFIG', 'this process has no signature file');
  let list: RawSignature[] = [];
  try {
    const doc = jsYaml.load(readFileSync(file, 'utf8')) as { signatures?: RawSignature[] } | null;
    list = doc?.signatures ?? [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DeidError('DEID_ERR_PROFILE_INVALID', `${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  compileSignature(signature, `${file} (new)`);
  const text = `# The service's own pixel signatures, grown from the console ("save as signature").\n${jsYaml.dump({ signatures: [...list, signature] }, { lineWidth: 200 })}`;
  // Checked as a whole, as the profile loader will read it, before it replaces the old file.
  const again = (jsYaml.load(text) as { signatures: RawSignature[] }).signatures;
  again.forEach((s, i) => compileSignature(s, `${file} #${i + 1}`));
  writeFileAtomicSync(file, Buffer.from(text), { durable: true });
  return { file, signature, count: list.length + 1 };
}
