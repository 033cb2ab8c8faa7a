import { findElement, type Dataset } from '../dicom/element.js';
import { TAG } from '../dicom/tag.js';
import { rawString } from '../dicom/values.js';
import { DeidError } from '../errors.js';
import type { CompiledProfile } from '../profiles/compile.js';
import { isTextProneKind } from '../profiles/text-prone.js';

const BurnedInAnnotation = 0x00280301;

/**
 * The pixel policy of a profile without Clean Pixel Data, fail closed: an image that declares
 * burned-in text, or whose modality or SOP class commonly carries it, is refused unless it declares
 * BurnedInAnnotation NO or the profile says to pass such images (passBurnedInAnnotation). Every
 * other image passes with its pixels unexamined, and says so (the returned note).
 */
export function burnedInPolicy(ds: Dataset, profile: Pick<CompiledProfile, 'options' | 'passBurnedInAnnotation'>): string | undefined {
  if (profile.options.has('clean-pixel-data')) return undefined;
  if (!findElement(ds, TAG.PixelData)) return undefined;
  const declared = rawString(findElement(ds, BurnedInAnnotation)?.value).trim().toUpperCase();
  if (profile.passBurnedInAnnotation) return 'pixels not examined: the profile passes images with burned-in text (passBurnedInAnnotation)';
  if (declared === 'YES') throw new DeidError('DEID_ERR_BURNED_IN');
  if (declared === 'NO') return 'pixels not examined: the image declares no burned-in annotation';
  const modality = rawString(findElement(ds, TAG.Modality)?.value).trim().toUpperCase();
  const sopClass = rawString(findElement(ds, TAG.SOPClassUID)?.value).trim();
  if (isTextProneKind(modality, sopClass)) {
    throw new DeidError('DEID_ERR_TEXT_PRONE', `modality ${modality || '(none)'}, SOP class ${sopClass || '(none)'}`);
  }
  return 'pixels not examined: the profile does not have clean-pixel-data';
}
