/**
 * Who owns a claimed job, and whether that owner is still alive (the embedded queue's crash recovery).
 *
 * An active file names its owner as `<hostTag>~<pid>~<pidStartTime>~<instance>`. A process never
 * touches its own live claims. Otherwise an owner is dead when:
 * - same host, other pid: that pid no longer exists, is a zombie, or has another start time (the pid
 *   was reused). Decided immediately, from /proc (or kill(pid, 0) where there is no /proc);
 * - same pid (this process): the instance that claimed it is closed, or the pid was reused;
 * - another host (a shared filesystem, or a container recreated under a new hostname): pids mean
 *   nothing there, so the owner's heartbeat file must be older than `staleOwnerMs`.
 * Assumption: processes on one host share a pid namespace (containers sharing the folder need
 * distinct hostnames).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST_TAG } from '../durable-fs.js';
import { errorCode } from './common.js';
import { ignoreMissing } from './embedded-files.js';
const PID = process.pid;
/** Instances of this process that are open: a claim by a closed one is an orphan. */
const LIVE_INSTANCES = new Set<string>();

/** Start time of a process in clock ticks since boot ('0' without /proc); `null` if it is gone. */
function procStart(pid: number): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ESRCH') return existsProc() ? null : killCheck(pid);
    return killCheck(pid);
  }
  // Fields after the parenthesised command name: state is field 3, starttime field 22.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  return fields[19] ?? '0';
}

let procExists: boolean | undefined;
function existsProc(): boolean {
  if (procExists === undefined) {
    try {
      readFileSync('/proc/self/stat');
      procExists = true;
    } catch {
      procExists = false;
    }
  }
  return procExists;
}

function killCheck(pid: number): string | null {
  try {
    process.kill(pid, 0);
    return '0';
  } catch (e) {
    return errorCode(e) === 'EPERM' ? '0' : null;
  }
}

const PID_START = procStart(PID) ?? '0';

/** One queue instance's identity, its heartbeat file under `<dir>/owners/`, and the death check of other owners. */
export class Liveness {
  private readonly instance = randomBytes(6).toString('hex');
  /** `<hostTag>~<pid>~<pidStart>~<instance>`: see the module comment. */
  readonly owner = `${HOST_TAG}~${PID}~${PID_START}~${this.instance}`;
  private heartbeat: NodeJS.Timeout | undefined;
  private firstBeat: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly opts: { readonly heartbeatMs: number; readonly staleOwnerMs: number },
    private readonly report: (e: unknown) => void,
  ) {
    LIVE_INSTANCES.add(this.instance);
  }

  /** Whether the owner of an active/ file (`<key>~<owner>~<seq>.json`) is gone. */
  async ownerIsDead(activeName: string): Promise<boolean> {
    const parts = activeName.slice(0, -'.json'.length).split('~');
    if (parts.length !== 6) return false;
    const [, host, pidText, start, instance] = parts as [string, string, string, string, string];
    const owner = `${host}~${pidText}~${start}~${instance}`;
    if (owner === this.owner) return false;
    const pid = Number(pidText);
    if (host !== HOST_TAG) {
      try {
        const s = await stat(join(this.dir, 'owners', owner));
        return Date.now() - s.mtimeMs > this.opts.staleOwnerMs;
      } catch (e) {
        ignoreMissing(e);
        return true;
      }
    }
    if (pid === PID) return start !== PID_START || !LIVE_INSTANCES.has(instance);
    const current = procStart(pid);
    return current === null || (start !== '0' && current !== '0' && current !== start);
  }

  /** Starts the heartbeat (once) and resolves when its file exists: other hosts judge our claims by it. */
  started(): Promise<void> {
    if (!this.firstBeat) {
      const file = join(this.dir, 'owners', this.owner);
      const beat = async (): Promise<void> => {
        const now = new Date();
        try {
          await utimes(file, now, now);
        } catch (e) {
          ignoreMissing(e);
          await mkdir(join(this.dir, 'owners'), { recursive: true });
          await writeFile(file, '');
        }
      };
      this.firstBeat = beat();
      this.firstBeat.catch(() => {
        this.firstBeat = undefined; // the next runner start-up retries
      });
      this.heartbeat ??= setInterval(() => void beat().catch((e) => this.report(e)), this.opts.heartbeatMs);
    }
    return this.firstBeat;
  }

  /** This instance is closed: its remaining claims become orphans, and its heartbeat file goes. */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    LIVE_INSTANCES.delete(this.instance);
    if (this.heartbeat) await unlink(join(this.dir, 'owners', this.owner)).catch(() => undefined);
  }
}
