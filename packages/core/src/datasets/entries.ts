/**
 * Pass 2 of inspection: each surviving entry inflated under a hard cap equal to its declared size, its
 * content sniffed against its extension, fully decoded by sharp within the image-side limit, and, for SPADE,
 * its label map checked against its image. Accepted entries come back with their bytes; the rest are
 * rejected through `reject`.
 */
import { crc32, inflateRaw } from "node:zlib";
import { promisify } from "node:util";
import sharp, { type Metadata } from "sharp";
import type { Candidate, Reject } from "./central-directory.ts";
import { DatasetError, type RejectionCode } from "./errors.ts";
import type { DatasetLimits } from "./limits.ts";
import { safeKeyFor, type ImageFormat } from "./paths.ts";
import { isPng, maxLabelIndex, PNG_COLOR_TYPE_NAMES, readPngHeader } from "./png.ts";
import type { AcceptedImage } from "./report.ts";

const inflateRawAsync = promisify(inflateRaw);

export type Checked = { image: AcceptedImage & { index: number }; data: Uint8Array };

export async function processOne(buf: Buffer, c: Candidate, limits: DatasetLimits, reject: Reject): Promise<Checked[]> {
  const data = await readEntry(buf, c, reject);
  if (data === null) return [];
  const image = await checkImage(data, c, limits, reject);
  return image === null ? [] : [{ image, data }];
}

export async function processPair(buf: Buffer, pair: Candidate[], limits: DatasetLimits, reject: Reject): Promise<Checked[]> {
  const [imageEntry, labelEntry] = pair;
  const [image] = await processOne(buf, imageEntry, limits, reject);
  const [label] = await processOne(buf, labelEntry, limits, reject);
  if (image !== undefined && label !== undefined) {
    const problem = await checkLabel(label.data, label.image, image.image);
    if (problem.ok) {
      label.image.channels = 1;
      label.image.maxLabelValue = problem.max;
      return [image, label];
    }
    reject(labelEntry.index, labelEntry.path, problem.code, problem.reason);
    reject(imageEntry.index, imageEntry.path, "unmatched_stem", `its label map ${labelEntry.path} was rejected (${problem.code})`);
    return [];
  }
  // Accepting half a pair would leave an image without a label (or the reverse) in the dataset.
  if (image !== undefined) reject(imageEntry.index, imageEntry.path, "unmatched_stem", `its label map ${labelEntry.path} was rejected`);
  if (label !== undefined) reject(labelEntry.index, labelEntry.path, "unmatched_stem", `its image ${imageEntry.path} was rejected`);
  return [];
}

/** The entry's uncompressed bytes, never more than it declared; null when the entry was rejected. */
async function readEntry(buf: Buffer, c: Candidate, reject: Reject): Promise<Uint8Array | null> {
  const { entry } = c;
  const at = entry.relativeOffsetOfLocalHeader;
  if (buf.readUInt32LE(at) !== 0x04034b50) {
    reject(c.index, c.path, "corrupt_entry", "local file header missing");
    return null;
  }
  const start = at + 30 + buf.readUInt16LE(at + 26) + buf.readUInt16LE(at + 28);
  if (start + entry.compressedSize > buf.length) {
    reject(c.index, c.path, "corrupt_entry", "entry data runs past the end of the archive");
    return null;
  }
  const stored = buf.subarray(start, start + entry.compressedSize);
  const declared = entry.uncompressedSize;
  let data: Buffer;
  if (entry.compressionMethod === 0) data = Buffer.from(stored);
  else if (declared === 0) data = Buffer.alloc(0);
  else {
    try {
      // maxOutputLength is the hard cap: zlib stops and errors the moment output would pass it.
      data = await inflateRawAsync(stored, { maxOutputLength: declared });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
        throw new DatasetError("zip_bomb", `${c.path} inflates past its declared ${declared} bytes`, c.path);
      reject(c.index, c.path, "corrupt_entry", `deflate data is corrupt: ${(e as Error).message}`);
      return null;
    }
  }
  if (data.length !== declared) {
    reject(c.index, c.path, "corrupt_entry", `declares ${declared} bytes but holds ${data.length}`);
    return null;
  }
  if (crc32(data) !== entry.crc32) {
    reject(c.index, c.path, "corrupt_entry", "CRC-32 mismatch");
    return null;
  }
  return data;
}

function sniff(data: Uint8Array): ImageFormat | "other" | null {
  if (isPng(data)) return "png";
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return "jpeg";
  const ascii = (from: number, to: number) => Buffer.from(data.subarray(from, to)).toString("latin1");
  if (data.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  const head = Buffer.from(data.subarray(0, 256)).toString("latin1").trimStart().toLowerCase();
  if (head.startsWith("gif8") || head.startsWith("<svg") || head.startsWith("<?xml") || head.startsWith("%pdf") || head.startsWith("ii*") || head.startsWith("mm\0*"))
    return "other";
  return null;
}

async function checkImage(data: Uint8Array, c: Candidate, limits: DatasetLimits, reject: Reject): Promise<(AcceptedImage & { index: number }) | null> {
  const no = (code: RejectionCode, reason: string) => {
    reject(c.index, c.path, code, reason);
    return null;
  };
  // sharp would happily decode SVG, PDF, TIFF... whatever the extension says; only the three formats we
  // promise ever reach a decoder.
  const sniffed = sniff(data);
  if (sniffed === null) return no("undecodable_image", "not a PNG, JPEG or WebP file");
  if (sniffed !== c.format) return no("format_mismatch", `file extension says ${c.format} but the content is ${sniffed === "other" ? "another format" : sniffed}`);
  const tooBig = (w: number, h: number) =>
    no("image_too_large", `${w}x${h} exceeds the ${limits.maxImageSide}x${limits.maxImageSide} limit`);
  if (sniffed === "png") {
    // Checked from the header ourselves so an absurd size is refused before any decoder sees it.
    let header: ReturnType<typeof readPngHeader>;
    try {
      header = readPngHeader(data);
    } catch (e) {
      return no("undecodable_image", (e as Error).message);
    }
    if (header.width > limits.maxImageSide || header.height > limits.maxImageSide) return tooBig(header.width, header.height);
  }
  const options = { limitInputPixels: limits.maxImageSide * limits.maxImageSide, failOn: "error" as const };
  let meta: Metadata;
  try {
    meta = await sharp(data, options).metadata();
  } catch (e) {
    return no("undecodable_image", `cannot read image header: ${(e as Error).message}`);
  }
  if (meta.format !== c.format) return no("format_mismatch", `decoder identified ${meta.format}, not ${c.format}`);
  if (meta.width > limits.maxImageSide || meta.height > limits.maxImageSide) return tooBig(meta.width, meta.height);
  if ((meta.pages ?? 1) > 1) return no("animated_image", `animated image with ${meta.pages} frames`);
  try {
    // stats() forces a full decode without materialising an output image.
    await sharp(data, options).stats();
  } catch (e) {
    return no("undecodable_image", `image data does not decode: ${(e as Error).message}`);
  }
  return {
    index: c.index,
    path: c.path,
    key: safeKeyFor(c.rel),
    role: c.role,
    format: c.format,
    width: meta.width,
    height: meta.height,
    channels: meta.channels,
    bytes: data.length,
  };
}

async function checkLabel(
  data: Uint8Array,
  label: AcceptedImage,
  image: AcceptedImage,
): Promise<{ ok: true; max: number } | { ok: false; code: RejectionCode; reason: string }> {
  const header = readPngHeader(data);
  if (header.colorType !== 0 && header.colorType !== 3)
    return {
      ok: false,
      code: "label_not_indexed",
      reason: `label map is ${PNG_COLOR_TYPE_NAMES[header.colorType] ?? "an unknown colour type"}; it must be a single-channel (greyscale) or palette PNG whose values are class indices`,
    };
  if (header.interlaced) return { ok: false, code: "label_unsupported", reason: "interlaced label maps are not supported; save without interlacing" };
  if (label.width !== image.width || label.height !== image.height)
    return { ok: false, code: "label_size_mismatch", reason: `label map is ${label.width}x${label.height} but ${image.path} is ${image.width}x${image.height}` };
  try {
    return { ok: true, max: await maxLabelIndex(data) };
  } catch (e) {
    return { ok: false, code: "label_unsupported", reason: `cannot read class indices: ${(e as Error).message}` };
  }
}
