import type { SealedRow } from './row.js';

/** One lookup or export, as the audit log keeps it: who, when, what kind, and the keyed token of the id. */
export interface AuditEntry {
  readonly at: string;
  /** Who asked: a user@host, or the API token's fingerprint when the service asks. */
  readonly actor: string;
  readonly action: 'reid-new' | 'reid-original' | 'export';
  /** The looked-up value's index token (an auditor with the key can tell which id; the log alone cannot). */
  readonly query?: string;
  readonly pid: number;
}

/**
 * The port both backends implement. A store sees only sealed rows and tokens, never a key or a value,
 * so the same checks (wrong key, integrity, audit) hold whichever backend keeps the rows.
 */
export interface MapStore {
  /** Records `keyId` if the map has none yet (when given), and returns the map's key fingerprint (undefined: no map). */
  claimKeyId(keyId: string | undefined): Promise<string | undefined>;
  /** Appends rows; durable when the promise resolves. A row whose id is stored already is not stored again. */
  append(rows: readonly SealedRow[]): Promise<void>;
  /** Rows carrying the token, each id once. */
  find(token: string): Promise<SealedRow[]>;
  /** Every row, each id once. */
  scan(): AsyncIterable<SealedRow>;
  /** Appends an audit entry; durable when the promise resolves. */
  audit(entry: AuditEntry): Promise<void>;
  auditEntries(): AsyncIterable<AuditEntry>;
  close(): Promise<void>;
}
