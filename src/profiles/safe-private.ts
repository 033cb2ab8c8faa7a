import { privateKey } from './compile.js';
import { SAFE_PRIVATE_ENTRIES } from './safe-private.generated.js';

const SAFE = new Set(SAFE_PRIVATE_ENTRIES.map(([group, creator, element]) => privateKey(group, creator, element)));

/** Whether Retain Safe Private keeps (group, creator, element byte): creators match by name, not block. */
export const isSafePrivate = (group: number, creator: string, element: number): boolean => SAFE.has(privateKey(group, creator, element));
