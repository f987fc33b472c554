/**
 * Validation and indexing of an uploaded dataset zip, with no storage in sight: bytes in, a report and the
 * accepted images' bytes out. Everything here treats the archive as hostile.
 *
 * Two passes. The first reads only the central directory: names, declared sizes and layout are judged
 * before a single byte is inflated, so bombs, oversize archives and wrong layouts fail in milliseconds. The
 * second inflates each surviving entry under a hard cap equal to its declared size (itself capped), so a
 * lying header costs at most that many bytes, then has sharp decode it fully.
 */
import { crc32, inflateRaw } from "node:zlib";
import { promisify } from "node:util";
import sharp, { type Metadata } from "sharp";
import yauzl from "yauzl";
import { z } from "zod";
import { mapLimited } from "../limits/map-limited.ts";
import { DatasetError, type RejectionCode } from "./errors.ts";
import { checkEntryName, imageFormatFromPath, junkReason, safeKeyFor, stemOf, type ImageFormat } from "./paths.ts";
import { isPng, maxLabelIndex, PNG_COLOR_TYPE_NAMES, readPngHeader } from "./png.ts";

const inflateRawAsync = promisify(inflateRaw);

export type DatasetLayout = "stylegan2" | "cyclegan" | "spade";

export interface DatasetLimits {
  /** Entries in the central directory, directories and junk included. */
  maxEntries: number;
  /** Sum of the declared uncompressed sizes of the entries that would be inflated. */
  maxTotalBytes: number;
  /** Declared (and therefore actual) uncompressed size of one entry. */
  maxEntryBytes: number;
  /** Uncompressed:compressed ratio above which an entry is treated as a bomb... */
  maxCompressionRatio: number;
  /** ...once its declared size reaches this; small files of zeros legitimately compress very well. */
  ratioCheckMinBytes: number;
  /** Width and height limit for every image; also bounds what the decoder will allocate. */
  maxImageSide: number;
  maxPathLength: number;
  /** Entries inflated and decoded at once; also how many onImage calls may be in flight. */
  concurrency: number;
}

export const DEFAULT_DATASET_LIMITS: Readonly<DatasetLimits> = Object.freeze({
  maxEntries: 10_000,
  maxTotalBytes: 512 * 1024 * 1024,
  maxEntryBytes: 32 * 1024 * 1024,
  maxCompressionRatio: 100,
  ratioCheckMinBytes: 1024 * 1024,
  maxImageSide: 4096,
  maxPathLength: 512,
  concurrency: 4,
});

const positiveInt = z.number().int().positive();
const LimitsSchema = z
  .object({
    maxEntries: positiveInt,
    maxTotalBytes: positiveInt,
    maxEntryBytes: positiveInt,
    maxCompressionRatio: z.number().positive(),
    ratioCheckMinBytes: z.number().int().nonnegative(),
    maxImageSide: positiveInt,
    maxPathLength: positiveInt,
    concurrency: positiveInt.max(64),
  })
  .partial()
  .strict();

export interface AcceptedImage {
  /** Normalised path inside the zip (forward slashes, no "." or empty segments). */
  path: string;
  /** safeKeyFor(path relative to the dataset root): where the caller should store it under the dataset's prefix. */
  key: string;
  /** "images", "images/<class>", "trainA", "trainB", "testA", "testB" or "labels". */
  role: string;
  format: ImageFormat;
  width: number;
  height: number;
  /** Decoded channels; 1 for label maps, whose palette is only a rendering of class indices. */
  channels: number;
  /** Byte length of the file as stored in the zip, uncompressed. */
  bytes: number;
  /** Label maps only: the highest class index used, to compare with the model's label_nc. */
  maxLabelValue?: number;
}

export interface RejectedEntry {
  path: string;
  code: RejectionCode;
  reason: string;
}

export interface DatasetStats {
  /** Entries in the archive, directories and junk included. */
  entryCount: number;
  acceptedCount: number;
  countsByFolder: Record<string, number>;
  /** Uncompressed bytes of the accepted images. */
  totalBytes: number;
  rejectedByCode: Partial<Record<RejectionCode, number>>;
  /** "WxH" -> number of accepted images of that size (label maps not counted). */
  resolutions: Record<string, number>;
  /** stylegan2 with images/<class>/ folders: the class names, sorted. */
  classes?: string[];
  /** spade: accepted image/label pairs. */
  pairs?: number;
  /** spade: the highest class index over all accepted label maps. */
  maxLabelValue?: number;
}

export interface DatasetReport {
  layout: DatasetLayout;
  /** Wrapper folder the dataset sat in ("" when none), e.g. "horse2zebra/" from a zipped folder. */
  root: string;
  entries: AcceptedImage[];
  stats: DatasetStats;
  rejected: RejectedEntry[];
}

export type OnImage = (path: string, role: string, bytes: Uint8Array, image: AcceptedImage) => void | Promise<void>;

export interface InspectOptions {
  layout: DatasetLayout | "auto";
  limits?: Partial<DatasetLimits>;
  /**
   * Receives each accepted image once it is fully validated (for SPADE, once its partner is too); awaited,
   * and called up to `concurrency` times at once. If inspectArchive then throws, the archive as a whole is
   * refused and whatever onImage stored must be discarded.
   */
  onImage?: OnImage;
}

/** What pass 1 keeps about an entry that will be inflated. */
interface Candidate {
  index: number;
  path: string;
  /** Path relative to the dataset root, once the root is known. */
  rel: string;
  format: ImageFormat;
  role: string;
  entry: yauzl.Entry;
}

const REQUIRED: Record<DatasetLayout, string[]> = {
  stylegan2: ["images"],
  cyclegan: ["trainA", "trainB"],
  spade: ["images", "labels"],
};
const EXPECTED: Record<DatasetLayout, string> = {
  stylegan2: "images/ (or images/<class>/ for a class-conditional dataset)",
  cyclegan: "trainA/ and trainB/ (testA/ and testB/ optional)",
  spade: "images/ and labels/ with one label map per image, matched by file name",
};
const CYCLEGAN_ROLES = new Set(["trainA", "trainB", "testA", "testB"]);

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MSDOS_DIRECTORY = 0x10;

export async function inspectArchive(zipBytes: Uint8Array, opts: InspectOptions): Promise<DatasetReport> {
  const parsed = LimitsSchema.safeParse(opts.limits ?? {});
  if (!parsed.success) throw new DatasetError("invalid_options", `invalid limits: ${z.prettifyError(parsed.error)}`);
  const limits: DatasetLimits = { ...DEFAULT_DATASET_LIMITS, ...parsed.data };
  if (!["stylegan2", "cyclegan", "spade", "auto"].includes(opts.layout))
    throw new DatasetError("invalid_options", `unknown layout ${JSON.stringify(opts.layout)}`);

  const buf = Buffer.from(zipBytes.buffer, zipBytes.byteOffset, zipBytes.byteLength);
  const zip = await openZip(buf);
  try {
    if (zip.entryCount > limits.maxEntries)
      throw new DatasetError("too_many_entries", `archive has ${zip.entryCount} entries; the limit is ${limits.maxEntries}`);
    if (zip.entryCount === 0) throw new DatasetError("empty_archive", "the zip archive is empty");

    const rejected: (RejectedEntry & { index: number })[] = [];
    const reject = (index: number, path: string, code: RejectionCode, reason: string) => rejected.push({ index, path, code, reason });
    const candidates = await readCentralDirectory(zip, buf.length, limits, reject);
    const entryCount = zip.entryCount;

    const { layout, root } = resolveLayout(candidates, opts.layout);
    const work = assignRoles(candidates, layout, root, reject);

    const accepted: (AcceptedImage & { index: number })[] = [];
    let failed = false;
    // mapLimited lets every call finish before it throws: the caller cleans up what onImage stored when we
    // throw, and a write still in flight would land after that clean-up.
    await mapLimited(work, limits.concurrency, async (item) => {
      try {
        const out = layout === "spade" ? await processPair(buf, item, limits, reject) : await processOne(buf, item[0], limits, reject);
        for (const { image, data } of out) {
          if (failed) return;
          await opts.onImage?.(image.path, image.role, data, image);
          accepted.push(image);
        }
      } catch (error) {
        failed = true;
        throw error;
      }
    });

    accepted.sort((a, b) => a.index - b.index);
    rejected.sort((a, b) => a.index - b.index);
    const entries = accepted.map(({ index: _, ...image }) => image);
    const stats = summarise(entries, rejected, entryCount, layout);
    requireUsable(layout, stats, rejected.length);
    return { layout, root, entries, stats, rejected: rejected.map(({ index: _, ...r }) => r) };
  } finally {
    zip.close();
  }
}

async function openZip(buf: Buffer): Promise<yauzl.ZipFile> {
  try {
    // decodeStrings off: yauzl would otherwise fail the whole archive on the first "../" name, and those are
    // per-entry rejections here. validateEntrySizes off: it fails stored entries archive-wide too; the same
    // checks are made per entry below.
    return await yauzl.fromBufferPromise(buf, { decodeStrings: false, validateEntrySizes: false });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/end of central directory record signature not found/i.test(message))
      throw new DatasetError("not_a_zip", "not a zip archive (no end-of-central-directory record)");
    throw new DatasetError("corrupt_archive", `unreadable zip archive: ${message}`);
  }
}

async function readCentralDirectory(
  zip: yauzl.ZipFile,
  fileSize: number,
  limits: DatasetLimits,
  reject: (index: number, path: string, code: RejectionCode, reason: string) => void,
): Promise<Candidate[]> {
  const candidates: Candidate[] = [];
  const seenPaths = new Set<string>();
  const seenKeys = new Set<string>();
  let files = 0;
  let declaredTotal = 0;
  let index = -1;
  try {
    for await (const entry of zip.eachEntry()) {
      index++;
      const raw = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const isDir = raw.endsWith("/") || mode === S_IFDIR || ((entry.versionMadeBy >> 8) === 0 && (entry.externalFileAttributes & MSDOS_DIRECTORY) !== 0);
      const name = checkEntryName(raw, limits.maxPathLength);
      if (!name.ok) {
        reject(index, raw, name.code, name.reason);
        continue;
      }
      const path = name.path;
      if (isDir) continue;
      files++;
      if (mode === S_IFLNK) {
        reject(index, path, "symlink", "symbolic link; only regular files are accepted");
        continue;
      }
      if (mode !== 0 && mode !== S_IFREG) {
        reject(index, path, "not_regular_file", `special file (mode 0o${mode.toString(8)})`);
        continue;
      }
      const junk = junkReason(path);
      if (junk !== null) {
        reject(index, path, "ignored_junk", junk);
        continue;
      }
      const format = imageFormatFromPath(path);
      if (format === null) {
        reject(index, path, "not_an_image", "not a .png, .jpg, .jpeg or .webp file");
        continue;
      }
      if (entry.isEncrypted()) {
        reject(index, path, "encrypted", "encrypted entry; upload an unencrypted zip");
        continue;
      }
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        reject(index, path, "unsupported_compression", `compression method ${entry.compressionMethod}; only stored and deflate are supported`);
        continue;
      }
      if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize) {
        reject(index, path, "corrupt_entry", `stored entry declares ${entry.uncompressedSize} bytes but holds ${entry.compressedSize}`);
        continue;
      }
      const key = safeKeyFor(path);
      if (seenPaths.has(path) || seenKeys.has(key)) {
        reject(index, path, "duplicate_path", seenPaths.has(path) ? "another entry has the same path" : `another entry maps to the same storage key ${key}`);
        continue;
      }
      seenPaths.add(path);
      seenKeys.add(key);

      const declared = entry.uncompressedSize;
      if (declared > limits.maxEntryBytes)
        throw new DatasetError("zip_bomb", `${path} declares ${declared} uncompressed bytes; the limit per file is ${limits.maxEntryBytes}`, path);
      if (declared >= limits.ratioCheckMinBytes && declared > limits.maxCompressionRatio * Math.max(1, entry.compressedSize))
        throw new DatasetError(
          "zip_bomb",
          `${path} expands ${Math.round(declared / Math.max(1, entry.compressedSize))}:1; the limit is ${limits.maxCompressionRatio}:1`,
          path,
        );
      declaredTotal += declared;
      if (declaredTotal > limits.maxTotalBytes)
        throw new DatasetError("archive_too_large", `images in the archive exceed ${limits.maxTotalBytes} bytes uncompressed`);
      if (entry.relativeOffsetOfLocalHeader + 30 + entry.compressedSize > fileSize) {
        reject(index, path, "corrupt_entry", "entry data runs past the end of the archive");
        continue;
      }
      candidates.push({ index, path, rel: path, format, role: "", entry });
    }
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError("corrupt_archive", `unreadable zip central directory: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (files === 0) throw new DatasetError("empty_archive", "the zip archive contains only folders");
  assertNoOverlap(candidates);
  return candidates;
}

/**
 * Entries whose data ranges overlap are how the densest zip bombs work (one compressed kernel referenced by
 * thousands of headers); no zip tool writes them. 30 bytes is the smallest a local header can be.
 */
function assertNoOverlap(candidates: readonly Candidate[]): void {
  const spans = candidates
    .map((c) => ({ path: c.path, start: c.entry.relativeOffsetOfLocalHeader, end: c.entry.relativeOffsetOfLocalHeader + 30 + c.entry.compressedSize }))
    .sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++)
    if (spans[i].start < spans[i - 1].end)
      throw new DatasetError("zip_bomb", `${spans[i].path} and ${spans[i - 1].path} share compressed data (overlapping entries)`, spans[i].path);
}

function topFolders(candidates: readonly Candidate[], root: string): Set<string> {
  const out = new Set<string>();
  for (const c of candidates) {
    if (!c.path.startsWith(root)) continue;
    const rest = c.path.slice(root.length);
    const slash = rest.indexOf("/");
    if (slash > 0) out.add(rest.slice(0, slash));
  }
  return out;
}

function detect(folders: Set<string>): DatasetLayout | null {
  if (folders.has("trainA") && folders.has("trainB")) return "cyclegan";
  if (folders.has("images") && folders.has("labels")) return "spade";
  if (folders.has("images")) return "stylegan2";
  return null;
}

/** Finds the layout and the folder it sits in: the archive root, or the one folder a zipped directory adds. */
function resolveLayout(candidates: readonly Candidate[], wanted: DatasetLayout | "auto"): { layout: DatasetLayout; root: string } {
  const fits = (folders: Set<string>): DatasetLayout | null =>
    wanted === "auto" ? detect(folders) : REQUIRED[wanted].every((f) => folders.has(f)) ? wanted : null;
  const roots = [""];
  const first = candidates[0]?.path.split("/")[0];
  if (first !== undefined && candidates.every((c) => c.path.startsWith(`${first}/`))) roots.push(`${first}/`);
  for (const root of roots) {
    const layout = fits(topFolders(candidates, root));
    if (layout !== null) return { layout, root };
  }
  if (candidates.length === 0) throw new DatasetError("no_usable_images", "the archive contains no acceptable image files");
  const list = (root: string) => [...topFolders(candidates, root)].sort().map((f) => `${root}${f}/`);
  const found = [...list(""), ...(roots.length > 1 ? list(roots[1]) : [])];
  const where = found.length > 0 ? `found ${found.join(", ")}` : "found images but no folders";
  const expected =
    wanted === "auto"
      ? `one of: ${Object.entries(EXPECTED).map(([l, e]) => `${l}: ${e}`).join("; ")}`
      : `${wanted} datasets need ${EXPECTED[wanted]}`;
  throw new DatasetError("wrong_layout", `archive does not match a dataset layout (${where}); expected ${expected}`);
}

/** Gives every candidate its role or rejects it; returns the units of pass-2 work (pairs for SPADE). */
function assignRoles(
  candidates: Candidate[],
  layout: DatasetLayout,
  root: string,
  reject: (index: number, path: string, code: RejectionCode, reason: string) => void,
): Candidate[][] {
  const outside = (c: Candidate) => reject(c.index, c.path, "outside_layout", `not where the ${layout} layout keeps images; expected ${EXPECTED[layout]}`);
  const placed: Candidate[] = [];
  for (const c of candidates) {
    if (!c.path.startsWith(root)) {
      outside(c);
      continue;
    }
    c.rel = c.path.slice(root.length);
    const segs = c.rel.split("/");
    if (layout === "stylegan2" && segs[0] === "images" && (segs.length === 2 || segs.length === 3)) c.role = segs.slice(0, -1).join("/");
    else if (layout === "cyclegan" && segs.length === 2 && CYCLEGAN_ROLES.has(segs[0])) c.role = segs[0];
    else if (layout === "spade" && segs.length === 2 && (segs[0] === "images" || segs[0] === "labels")) c.role = segs[0];
    else {
      outside(c);
      continue;
    }
    placed.push(c);
  }

  if (layout === "stylegan2") {
    // Conditional training needs a class for every image; a loose file would silently get none.
    if (placed.some((c) => c.role !== "images"))
      return placed
        .filter((c) => {
          if (c.role !== "images") return true;
          reject(c.index, c.path, "outside_layout", "dataset has images/<class>/ folders, so every image must be in one");
          return false;
        })
        .map((c) => [c]);
    return placed.map((c) => [c]);
  }
  if (layout === "cyclegan") return placed.map((c) => [c]);

  const images = new Map<string, Candidate>();
  const labels = new Map<string, Candidate>();
  for (const c of placed) {
    if (c.role === "labels" && c.format !== "png") {
      reject(c.index, c.path, "label_not_indexed", "label maps must be PNG files of class indices");
      continue;
    }
    const byStem = c.role === "labels" ? labels : images;
    const stem = stemOf(c.rel);
    if (byStem.has(stem)) {
      reject(c.index, c.path, "duplicate_path", `another ${c.role === "labels" ? "label map" : "image"} has the stem "${stem}"`);
      continue;
    }
    byStem.set(stem, c);
  }
  const pairs: Candidate[][] = [];
  for (const [stem, image] of images) {
    const label = labels.get(stem);
    if (label === undefined) reject(image.index, image.path, "unmatched_stem", `no labels/${stem}.png for this image`);
    else pairs.push([image, label]);
  }
  for (const [stem, label] of labels)
    if (!images.has(stem)) reject(label.index, label.path, "unmatched_stem", `no image named images/${stem}.* for this label map`);
  return pairs.sort((a, b) => a[0].index - b[0].index);
}

type Reject = (index: number, path: string, code: RejectionCode, reason: string) => void;
type Checked = { image: AcceptedImage & { index: number }; data: Uint8Array };

async function processOne(buf: Buffer, c: Candidate, limits: DatasetLimits, reject: Reject): Promise<Checked[]> {
  const data = await readEntry(buf, c, reject);
  if (data === null) return [];
  const image = await checkImage(data, c, limits, reject);
  return image === null ? [] : [{ image, data }];
}

async function processPair(buf: Buffer, pair: Candidate[], limits: DatasetLimits, reject: Reject): Promise<Checked[]> {
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
    let header;
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

function summarise(entries: readonly AcceptedImage[], rejected: readonly RejectedEntry[], entryCount: number, layout: DatasetLayout): DatasetStats {
  const countsByFolder: Record<string, number> = {};
  const resolutions: Record<string, number> = {};
  const rejectedByCode: Partial<Record<RejectionCode, number>> = {};
  let totalBytes = 0;
  for (const e of entries) {
    countsByFolder[e.role] = (countsByFolder[e.role] ?? 0) + 1;
    // Label maps always match their image's size; counting them too would double every SPADE resolution.
    if (e.role !== "labels") {
      const res = `${e.width}x${e.height}`;
      resolutions[res] = (resolutions[res] ?? 0) + 1;
    }
    totalBytes += e.bytes;
  }
  for (const r of rejected) rejectedByCode[r.code] = (rejectedByCode[r.code] ?? 0) + 1;
  const stats: DatasetStats = { entryCount, acceptedCount: entries.length, countsByFolder, totalBytes, rejectedByCode, resolutions };
  if (layout === "stylegan2") {
    const classes = Object.keys(countsByFolder)
      .filter((r) => r.startsWith("images/"))
      .map((r) => r.slice("images/".length))
      .sort();
    if (classes.length > 0) stats.classes = classes;
  }
  if (layout === "spade") {
    stats.pairs = countsByFolder.labels ?? 0;
    stats.maxLabelValue = entries.reduce((m, e) => Math.max(m, e.maxLabelValue ?? 0), 0);
  }
  return stats;
}

function requireUsable(layout: DatasetLayout, stats: DatasetStats, rejectedCount: number): void {
  const counts = stats.countsByFolder;
  const missing =
    layout === "stylegan2"
      ? stats.acceptedCount === 0
        ? ["images"]
        : []
      : layout === "spade"
        ? stats.pairs === 0
          ? ["image/label pairs"]
          : []
        : REQUIRED.cyclegan.filter((r) => !(counts[r] > 0));
  if (missing.length === 0) return;
  const why = Object.entries(stats.rejectedByCode)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${n} ${code}`)
    .join(", ");
  throw new DatasetError(
    "no_usable_images",
    `no usable ${missing.join(" or ")} in the archive${rejectedCount > 0 ? ` (${rejectedCount} files rejected: ${why})` : ""}`,
  );
}
