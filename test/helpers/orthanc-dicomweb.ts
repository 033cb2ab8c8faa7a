/**
 * Orthanc with its DICOMweb plugin (Debian: orthanc-dicomweb), for STOW-RS transport tests in both
 * directions: Orthanc as a STOW-RS client (its "DicomWeb.Servers" entries, driven through
 * `POST /dicom-web/servers/<name>/stow`) and as a STOW-RS origin server (`<url>/dicom-web/studies`).
 * Process handling (free ports, TCP_NODELAY=1, temp dir, readiness on /system) is startOrthanc's.
 */
import { existsSync } from 'node:fs';
import { startOrthanc, type OrthancHandle } from './orthanc.js';

export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

/** Whether Orthanc and its DICOMweb plugin are installed (.ci/run installs both). */
export function orthancDicomWebAvailable(): boolean {
  return existsSync(DICOMWEB_PLUGIN) && ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].some((p) => existsSync(p));
}

/** A DICOMweb server Orthanc may send to, as "DicomWeb.Servers" takes it. */
export interface DicomWebServer {
  readonly Url: string;
  readonly HttpHeaders?: Record<string, string>;
  readonly [key: string]: unknown;
}

/** Starts Orthanc with the DICOMweb plugin at /dicom-web/ and these STOW-RS targets. */
export function startOrthancDicomWeb(opts: { servers?: Record<string, DicomWebServer>; config?: Record<string, unknown> } = {}): Promise<OrthancHandle> {
  return startOrthanc({
    config: {
      Plugins: [DICOMWEB_PLUGIN],
      DicomWeb: { Enable: true, Root: '/dicom-web/', Servers: opts.servers ?? {} },
      HttpTimeout: 20,
      ...opts.config,
    },
  });
}

/** Uploads a Part 10 file over Orthanc's REST API; resolves to its Orthanc instance ID. */
export async function orthancUpload(orthanc: OrthancHandle, bytes: Uint8Array): Promise<string> {
  const res = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/dicom' } });
  if (!res.ok) throw new Error(`Orthanc refused the upload: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { ID: string }).ID;
}

/** Orthanc IDs of the instances with this SOP Instance UID (POST /tools/lookup). */
export async function orthancLookup(orthanc: OrthancHandle, sopInstanceUid: string): Promise<string[]> {
  const res = await fetch(`${orthanc.httpUrl}/tools/lookup`, { method: 'POST', body: sopInstanceUid });
  if (!res.ok) throw new Error(`Orthanc lookup failed: HTTP ${res.status}`);
  return ((await res.json()) as Array<{ Type: string; ID: string }>).filter((r) => r.Type === 'Instance').map((r) => r.ID);
}

/** Asks Orthanc's DICOMweb client to STOW these resources to a configured server (synchronously). */
export async function orthancStowTo(orthanc: OrthancHandle, server: string, resources: string[], httpHeaders?: Record<string, string>): Promise<{ status: number; body: string }> {
  const res = await fetch(`${orthanc.httpUrl}/dicom-web/servers/${encodeURIComponent(server)}/stow`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ Resources: resources, Synchronous: true, ...(httpHeaders ? { HttpHeaders: httpHeaders } : {}) }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.text() };
}
