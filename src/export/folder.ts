import { join } from 'node:path';
import { writeFileAtomic } from '../pipeline/file-outputs.js';
import { ExportError, type Destination, type ExportInfo } from '../pipeline/ports.js';

const safe = (s: string) => (s || 'unknown').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);

/** Writes each object to <root>/<new PatientID>/<new study>/<new series>/<new SOP instance>.dcm, durably. */
export class FolderDestination implements Destination {
  readonly name: string;

  constructor(private readonly root: string) {
    this.name = `folder:${root}`;
  }

  async send(part10: Uint8Array, info: ExportInfo): Promise<void> {
    const target = join(this.root, safe(info.patientId), safe(info.studyInstanceUid), safe(info.seriesInstanceUid), `${safe(info.sopInstanceUid)}.dcm`);
    try {
      writeFileAtomic(target, part10, true);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A full or read-only disk may clear up; a bad path will not.
      throw new ExportError(`folder write failed: ${code ?? 'error'}`, code === 'ENOSPC' || code === 'EAGAIN' || code === 'EBUSY');
    }
  }

  async close(): Promise<void> {}
}
