import sharp from 'sharp';
import type { Rgb8 } from './render.js';
import type { Box } from './text-regions.js';

/**
 * Review previews: a before/after PNG pair of one frame with the masked boxes outlined (red on the
 * original, green on the result) and, when ultrasound regions were used, the kept data areas in blue.
 * The "before" image shows the burned-in text: it is as sensitive as the input and must be stored
 * like it.
 */
function overlay(width: number, height: number, boxes: readonly Box[], colour: string, regions: readonly Box[]): Buffer {
  const w = Math.max(1, Math.round(Math.min(width, height) / 300));
  const rect = (b: Box, c: string) => `<rect x="${b.x0}" y="${b.y0}" width="${b.x1 - b.x0}" height="${b.y1 - b.y0}" fill="none" stroke="${c}" stroke-width="${w}"/>`;
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${regions.map((r) => rect(r, '#3080ff')).join('')}${boxes.map((b) => rect(b, colour)).join('')}</svg>`,
  );
}

export async function previewPng(img: Rgb8, boxes: readonly Box[], after: boolean, regions: readonly Box[] = []): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: overlay(img.width, img.height, boxes, after ? '#00e000' : '#ff2020', regions) }])
    .png({ compressionLevel: 6 })
    .toBuffer();
}
