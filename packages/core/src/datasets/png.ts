/**
 * Reads the class indices of a SPADE label map. sharp cannot do this: it expands palette PNGs to RGB, so the
 * indices are gone by the time pixels come out. Only what label maps are made of is supported (greyscale or
 * palette, not interlaced); the caller has already had sharp decode the file, so this is not a validator.
 */
import { inflate } from "node:zlib";
import { promisify } from "node:util";

const inflateAsync = promisify(inflate);
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

/** Largest sample value in a greyscale or palette PNG: the highest class index the label map uses. */
export async function maxLabelIndex(bytes: Uint8Array): Promise<number> {
  const h = readPngHeader(bytes);
  if (h.colorType !== 0 && h.colorType !== 3) throw new Error(`${PNG_COLOR_TYPE_NAMES[h.colorType] ?? "unknown"} PNG is not an index map`);
  if (h.interlaced) throw new Error("interlaced PNG");
  if (![1, 2, 4, 8, 16].includes(h.bitDepth) || (h.colorType === 3 && h.bitDepth === 16)) throw new Error(`bit depth ${h.bitDepth}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = view.getUint32(at + 4);
    if (at + 12 + length > bytes.length) throw new Error("truncated chunk");
    if (type === 0x49444154) idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === 0x49454e44) break;
    at += 12 + length;
  }
  const rowBytes = Math.ceil((h.width * h.bitDepth) / 8);
  const expected = h.height * (rowBytes + 1);
  // The header's dimensions bound the output exactly, so a hostile IDAT cannot inflate past them.
  const raw = await inflateAsync(Buffer.concat(idat), { maxOutputLength: Math.max(1, expected) });
  if (raw.length < expected) throw new Error("image data shorter than the header says");
  const bpp = h.bitDepth === 16 ? 2 : 1;
  let prev = new Uint8Array(rowBytes);
  let max = 0;
  for (let y = 0; y < h.height; y++) {
    const filter = raw[y * (rowBytes + 1)];
    const row = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    unfilter(filter, row, prev, bpp);
    max = Math.max(max, rowMax(row, h.width, h.bitDepth));
    prev = row;
  }
  return max;
}

function unfilter(filter: number, row: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = row.length;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 0xff;
      return;
    case 2:
      for (let i = 0; i < n; i++) row[i] = (row[i] + prev[i]) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) row[i] = (row[i] + (((i >= bpp ? row[i - bpp] : 0) + prev[i]) >> 1)) & 0xff;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const b = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        row[i] = (row[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      throw new Error(`unknown PNG filter ${filter}`);
  }
}

function rowMax(row: Uint8Array, width: number, bitDepth: number): number {
  let max = 0;
  if (bitDepth === 8) {
    for (let i = 0; i < width; i++) if (row[i] > max) max = row[i];
  } else if (bitDepth === 16) {
    for (let i = 0; i < width; i++) max = Math.max(max, (row[2 * i] << 8) | row[2 * i + 1]);
  } else {
    const perByte = 8 / bitDepth;
    const mask = (1 << bitDepth) - 1;
    for (let i = 0; i < width; i++) {
      const byte = row[Math.floor(i / perByte)];
      const v = (byte >> (8 - bitDepth * ((i % perByte) + 1))) & mask;
      if (v > max) max = v;
    }
  }
  return max;
}
