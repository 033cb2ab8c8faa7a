/**
 * Images that commonly carry burned-in text: screen and document captures, ultrasound, angiography
 * and fluoroscopy, endoscopy and photography. Without Clean Pixel Data these are refused (fail
 * closed) unless they declare BurnedInAnnotation NO or the profile says to pass them.
 */
export const TEXT_PRONE_MODALITIES: readonly string[] = ['US', 'SC', 'XA', 'RF', 'ES', 'OT', 'XC', 'GM', 'SM', 'DOC'];

/** SOP classes known to carry burned-in text: the secondary captures (multi-frame too), ultrasound and X-ray angiography and fluoroscopy (also what `scope: known` examines). */
export const KNOWN_TEXT_SOP_CLASSES: readonly string[] = [
  '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture Image Storage
  '1.2.840.10008.5.1.4.1.1.7.1', // Multi-frame Single Bit Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.2', // Multi-frame Grayscale Byte Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.3', // Multi-frame Grayscale Word Secondary Capture
  '1.2.840.10008.5.1.4.1.1.7.4', // Multi-frame True Color Secondary Capture
  '1.2.840.10008.5.1.4.1.1.6.1', // Ultrasound Image Storage
  '1.2.840.10008.5.1.4.1.1.3.1', // Ultrasound Multi-frame Image Storage
  '1.2.840.10008.5.1.4.1.1.12.1', // X-Ray Angiographic Image Storage
  '1.2.840.10008.5.1.4.1.1.12.2', // X-Ray Radiofluoroscopic Image Storage
];

export const TEXT_PRONE_SOP_CLASSES: readonly string[] = [
  ...KNOWN_TEXT_SOP_CLASSES,
  '1.2.840.10008.5.1.4.1.1.77.1.1', // VL Endoscopic Image Storage
  '1.2.840.10008.5.1.4.1.1.77.1.1.1', // Video Endoscopic Image Storage
  '1.2.840.10008.5.1.4.1.1.77.1.4', // VL Photographic Image Storage
  '1.2.840.10008.5.1.4.1.1.77.1.4.1', // Video Photographic Image Storage
  '1.2.840.10008.5.1.4.1.1.77.1.2', // VL Microscopic Image Storage
  '1.2.840.10008.5.1.4.1.1.77.1.3', // VL Slide-Coordinates Microscopic Image Storage
];

/** Whether an image of this Modality and SOP Class UID (as stored) is of a kind that commonly carries text. */
export function isTextProneKind(modality: string, sopClass: string): boolean {
  return TEXT_PRONE_MODALITIES.includes(modality.trim().toUpperCase()) || TEXT_PRONE_SOP_CLASSES.includes(sopClass.trim());
}
