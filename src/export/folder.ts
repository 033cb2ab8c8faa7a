import { join } from 'node:path';
import { DeidError, isResourceError } from '../errors.js';
import { DirSyncers, placeFile } from '../pipeline/durable-fs.js';
import { exportFailure, type Destination, type ExportInfo } from '../pipeline/ports.js';

const safe = (s: string) => (s || 'unknown').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/**
 * Writes each object to <root>/<new PatientID>/<new study>/<new series>/<new SOP instance>.dcm, durably,
 * and never over a different object: the same bytes again are a no-op, and another object under the
 * same UIDs (a source that reused a UID) gets a content-hash suffix, as `deid run` does.
 */
export class FolderDestination implements Destination {
  readonly name: string;
  /** Directory fsyncs of concurrent sends into one series folder, coalesced. */
  private readonly syncers = new DirSyncers();

  constructor(private readonly root: string) {
    this.name = `folder:${root}`;
  }

  async send(part10: Uint8Array, info: ExportInfo): Promise<void> {
    const target = join(this.root, safe(info.patientId), safe(info.studyInstanceUid), safe(info.seriesInstanceUid), `${safe(info.sopInstanceUid)}.dcm`);
    try {
      // Durable, directory entry included: the spooled original is deleted once this resolves.
      await placeFile(target, part10, { durable: true, syncers: this.syncers });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A full disk is waited out; a busy one may clear up; a bad path will not.
      if (isResourceError(e)) throw new DeidError('DEID_ERR_OUT_OF_RESOURCES', `folder write failed: ${code}`);
      throw exportFailure(code === 'EAGAIN' || code === 'EBUSY', `folder write failed: ${code ?? 'error'}`);
    }
  }

  async close(): Promise<void> {
    this.syncers.close();
  }
}
