/** Tags are uint32 numbers: (group << 16) | element. */
export type Tag = number;

/** Every keyword of the data dictionary as its tag (generated: src/dicom/tags.generated.ts). */
export { TAG } from './tags.generated.js';

export const tagGroup = (t: Tag): number => t >>> 16;
export const tagElement = (t: Tag): number => t & 0xffff;
export const makeTag = (group: number, element: number): Tag => ((group << 16) | element) >>> 0;

export const isPrivateTag = (t: Tag): boolean => (tagGroup(t) & 1) === 1 && tagGroup(t) > 0x0008 && tagGroup(t) !== 0xffff;
/** (gggg,0010-00FF) in an odd group reserves a block of private elements. */
export const isPrivateCreatorTag = (t: Tag): boolean => isPrivateTag(t) && tagElement(t) >= 0x10 && tagElement(t) <= 0xff;
/** Private data elements (gggg,xxee) with xx >= 0x10 belong to the block reserved by (gggg,00xx). */
export const privateBlock = (t: Tag): number => (tagElement(t) >>> 8) & 0xff;
export const isGroupLengthTag = (t: Tag): boolean => tagElement(t) === 0;

export function formatTag(t: Tag): string {
  const h = (t >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

/** Parses "(0010,0010)", "0010,0010" or "00100010". Returns undefined for anything else. */
export function parseTag(s: string): Tag | undefined {
  const m = /^\(?([0-9a-fA-F]{4}),?([0-9a-fA-F]{4})\)?$/.exec(s.trim());
  return m ? makeTag(parseInt(m[1], 16), parseInt(m[2], 16)) : undefined;
}
