/** The first entry of a .zip whose name ends with `suffix`, uncompressed. */
export function readZipEntry(zipPath: string, suffix: string): Buffer;
