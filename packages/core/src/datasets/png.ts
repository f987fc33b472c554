/**
 * PNG facts the dataset inspector needs before decoding (signature, IHDR) and the label maps' class range.
 */
import { decodeLabelPng } from "../images/label-png.ts";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colorType: number;
  interlaced: boolean;
}

export const PNG_COLOR_TYPE_NAMES: Record<number, string> = { 0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA" };

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

export function readPngHeader(bytes: Uint8Array): PngHeader {
  if (!isPng(bytes) || bytes.length < 33) throw new Error("not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452) throw new Error("PNG does not start with IHDR");
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlaced: bytes[28] !== 0,
  };
}

/**
 * Largest sample value in a greyscale or palette PNG: the highest class index the label map uses. Decoded
 * by the same reader the API uses for label maps, so a dataset accepts exactly what translate accepts.
 */
export async function maxLabelIndex(bytes: Uint8Array): Promise<number> {
  const { data } = decodeLabelPng(bytes, { maxPixels: Number.MAX_SAFE_INTEGER, field: "label map" });
  let max = 0;
  for (const v of data) if (v > max) max = v;
  return max;
}
