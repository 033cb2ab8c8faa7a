import { privateKey } from './compile.js';
import { safePrivateEntries } from './safe-private.generated.js';

let safe: Map<string, string> | undefined;

/** The list that makes (group, creator, element byte) safe: 'E.3.10-1', 'TCIA' (the knowledge base's "k"), or undefined. */
export function safePrivateSource(group: number, creator: string, element: number): 'E.3.10-1' | 'TCIA' | undefined {
  // Built on first use: only profiles with retain-safe-private ever ask, and 2,500 keys cost start-up time.
  safe ??= new Map(safePrivateEntries().map(([g, c, e, source]) => [privateKey(g, c, e), source]));
  return safe.get(privateKey(group, creator, element)) as 'E.3.10-1' | 'TCIA' | undefined;
}

/** Whether Retain Safe Private keeps (group, creator, element byte): creators match by name, not block. */
export function isSafePrivate(group: number, creator: string, element: number): boolean {
  return safePrivateSource(group, creator, element) !== undefined;
}
