/**
 * Reads a label map PNG as raw class indices. Image libraries expand palette PNGs to RGB, which loses the
 * indices SPADE needs (a Cityscapes/ADE20K label PNG is often a palette image), so this small decoder
 * returns the stored sample values of grayscale (1–16 bit) and palette PNGs as they are. Sizes are checked
 * from IHDR before anything is inflated, and inflation is capped at the exact expected length.
 */
import { inflateSync } from "node:zlib";
import sharp from "sharp";
import { ApiError } from "../errors.ts";

export interface LabelMap {
  width: number;
  height: number;
  /** row-major class ids */
  data: Int32Array;
  /** palette RGB triples when the PNG is a palette image */
  palette?: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function decodeLabelPng(bytes: Uint8Array, opts: { maxPixels: number; field?: string }): LabelMap {
  const field = opts.field ?? "label_map";
  const bad = (msg: string, code: "invalid_label_map" | "image_too_large" | "unsupported_media_type" = "invalid_label_map"): never => {
    throw new ApiError(code, `${field}: ${msg}`);
  };
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b)) bad("must be a PNG of class indices", "unsupported_media_type");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = -1;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos + 8 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const start = pos + 8;
    if (start + len + 4 > bytes.length) bad(`truncated PNG (chunk ${type} runs past the end)`);
    const body = bytes.subarray(start, start + len);
    if (type === "IHDR") {
      if (len !== 13) bad("corrupt IHDR");
      width = view.getUint32(start);
      height = view.getUint32(start + 4);
      bitDepth = body[8];
      colorType = body[9];
      if (width === 0 || height === 0) bad("zero-sized image");
      if (width * height > opts.maxPixels)
        bad(`${width}×${height} exceeds the limit of ${opts.maxPixels} pixels`, "image_too_large");
      if (body[12] !== 0) bad("interlaced PNGs are not supported for label maps; save without interlacing");
      if (colorType !== 0 && colorType !== 3)
        bad("must be a single-channel (grayscale) or palette PNG whose values are class indices, not an RGB image");
    } else if (type === "PLTE") {
      palette = body.slice();
    } else if (type === "IDAT") {
      idat.push(body);
    } else if (type === "IEND") {
      sawEnd = true;
      break;
    }
    pos = start + len + 4;
  }
  if (colorType < 0) bad("missing IHDR");
  if (!sawEnd || idat.length === 0) bad("truncated PNG (no image data or no IEND)");
  const bpp = Math.max(1, bitDepth >> 3);
  const stride = Math.ceil((width * bitDepth) / 8);
  const expected = (stride + 1) * height;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected });
  } catch (e) {
    return bad(`corrupt image data (${(e as Error).message})`);
  }
  if (raw.length !== expected) bad("truncated image data");
  const out = new Int32Array(width * height);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = new Uint8Array(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    unfilter(filter, line, prev, bpp) || bad(`unknown PNG filter ${filter}`);
    for (let x = 0; x < width; x++) out[y * width + x] = sample(line, x, bitDepth);
    prev = line;
  }
  if (palette && colorType === 3) {
    const entries = palette.length / 3;
    for (const v of out) if (v >= entries) bad(`palette index ${v} has no palette entry`);
  }
  return { width, height, data: out, palette: colorType === 3 ? palette : undefined };
}

function sample(line: Uint8Array, x: number, depth: number): number {
  if (depth === 8) return line[x];
  if (depth === 16) return (line[2 * x] << 8) | line[2 * x + 1];
  const perByte = 8 / depth;
  const byte = line[Math.floor(x / perByte)];
  const shift = 8 - depth * ((x % perByte) + 1);
  return (byte >> shift) & ((1 << depth) - 1);
}

function unfilter(filter: number, line: Uint8Array, prev: Uint8Array, bpp: number): boolean {
  for (let i = 0; i < line.length; i++) {
    const a = i >= bpp ? line[i - bpp] : 0;
    const b = prev[i];
    const c = i >= bpp ? prev[i - bpp] : 0;
    switch (filter) {
      case 0:
        return true;
      case 1:
        line[i] = (line[i] + a) & 0xff;
        break;
      case 2:
        line[i] = (line[i] + b) & 0xff;
        break;
      case 3:
        line[i] = (line[i] + ((a + b) >> 1)) & 0xff;
        break;
      case 4: {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        line[i] = (line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

/** Writes class indices (< 256) as an 8-bit grayscale PNG: test inputs and demo data. */
export async function encodeLabelPng(map: { width: number; height: number; data: ArrayLike<number> }): Promise<Uint8Array> {
  const px = Uint8Array.from(map.data as ArrayLike<number>);
  const buf = await sharp(px, { raw: { width: map.width, height: map.height, channels: 1 } })
    .toColourspace("b-w")
    .png()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
