import { privateKey } from './compile.js';
import { safePrivateEntries } from './safe-private.generated.js';

let safe: Set<string> | undefined;

/** Whether Retain Safe Private keeps (group, creator, element byte): creators match by name, not block. */
export function isSafePrivate(group: number, creator: string, element: number): boolean {
  // Built on first use: only profiles with retain-safe-private ever ask, and 2,500 keys cost start-up time.
  safe ??= new Set(safePrivateEntries().map(([g, c, e]) => privateKey(g, c, e)));
  return safe.has(privateKey(group, creator, element));
}
