import { findElement, type Dataset } from '../../dicom/element.js';
import { hasPixelData } from '../../dicom/pixels/pixel-data.js';
import { TAG } from '../../dicom/tag.js';
import { rawString } from '../../dicom/values.js';
import type { PixelSettings } from '../../profiles/pixel-settings.js';
import { signatureMatches } from './signatures.js';

export type Selection = { readonly clean: true; readonly why: string } | { readonly clean: false; readonly why: string };


/**
 * Which images are cleaned (issue 4, part 1), decided on the source data set: BurnedInAnnotation YES;
 * a modality or SOP class known to carry text; a matching signature; or a profile that says all.
 * Anything else is skipped, and the reason is recorded.
 */
export function selectImage(ds: Dataset, settings: PixelSettings, meta?: Dataset): Selection {
  if (!hasPixelData(ds)) return { clean: false, why: 'no pixel data' };
  const burned = rawString(findElement(ds, TAG.BurnedInAnnotation)?.value).trim().toUpperCase();
  if (burned === 'YES') return { clean: true, why: 'BurnedInAnnotation is YES' };
  if (settings.scope === 'all') return { clean: true, why: 'the profile cleans every image' };
  const modality = rawString(findElement(ds, TAG.Modality)?.value).trim().toUpperCase();
  if (modality && settings.modalities.has(modality)) return { clean: true, why: `modality ${modality} is known to carry text` };
  const sopClass = rawString(findElement(ds, TAG.SOPClassUID)?.value).trim();
  if (sopClass && settings.sopClasses.has(sopClass)) return { clean: true, why: `SOP class ${sopClass} is known to carry text` };
  const sig = settings.signatures.find((s) => signatureMatches(s, ds, undefined, meta));
  if (sig) return { clean: true, why: `signature "${sig.name}" matches` };
  return {
    clean: false,
    why: `modality ${modality || '(none)'} and SOP class ${sopClass || '(none)'} are not known to carry text, BurnedInAnnotation is ${burned || 'absent'} and no signature matches`,
  };
}
