/**
 * Reads an evaluation zip's images by path. Evaluation zips are the user's own files on their own machine,
 * but the same bounds apply as for uploads: the archive goes through `inspectArchive` when it has a training
 * layout, and paired CycleGAN test sets (testA/ + testB/ only, which no training layout accepts) are read
 * entry by entry with a size cap and decoded with the pixel limit.
 */
import { Buffer } from "node:buffer";
import yauzl from "yauzl";
import { inspectArchive, type DatasetLayout } from "../datasets/inspect.ts";
import { decodeRgb, type RgbImage } from "../images/codec.ts";
import { decodeLabelPng } from "../images/label-png.ts";

const MAX_ENTRY_BYTES = 32 * 1024 * 1024;
const MAX_PIXELS = 4096 * 4096;

export interface ZipImage {
  path: string;
  /** folder role: trainA, testB, images, images/<class>, labels */
  role: string;
  bytes: Uint8Array;
}

async function rawEntries(zip: Uint8Array): Promise<ZipImage[]> {
  const z = await yauzl.fromBufferPromise(Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength), { decodeStrings: true, validateEntrySizes: true });
  const out: ZipImage[] = [];
  try {
    for await (const entry of z.eachEntry()) {
      const name = entry.fileName;
      if (name.endsWith("/") || !/\.(png|jpe?g|webp)$/i.test(name)) continue;
      if (entry.uncompressedSize > MAX_ENTRY_BYTES) throw new Error(`${name}: ${entry.uncompressedSize} bytes is more than an image should be`);
      const stream = await z.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      const parts = name.split("/").filter(Boolean);
      out.push({ path: name, role: parts.slice(0, -1).join("/"), bytes: new Uint8Array(Buffer.concat(chunks)) });
    }
  } finally {
    z.close();
  }
  return out;
}

/** All image entries with their role. Training layouts are validated by inspectArchive. */
export async function readZipImages(zip: Uint8Array, layout: DatasetLayout): Promise<ZipImage[]> {
  const entries = await rawEntries(zip);
  const hasTest = entries.some((e) => /(^|\/)test[AB]$/.test(e.role));
  if (layout === "cyclegan" && hasTest) return entries.map((e) => ({ ...e, role: e.role.replace(/^.*\/(test[AB]|train[AB])$/, "$1") }));
  const out: ZipImage[] = [];
  await inspectArchive(zip, {
    layout,
    onImage: (path, role, bytes) => {
      out.push({ path, role, bytes });
    },
  });
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export const stem = (p: string) => p.replace(/^.*\//, "").replace(/\.[^.]+$/, "");

export const decodeImage = (e: ZipImage): Promise<RgbImage> => decodeRgb(e.bytes, { maxPixels: MAX_PIXELS, field: e.path });
export const decodeLabels = (e: ZipImage) => decodeLabelPng(e.bytes, { maxPixels: MAX_PIXELS, field: e.path });
