/**
 * Pass 1 of inspection: the zip's central directory only. Names, entry types, declared sizes, compression
 * ratios and overlapping data are judged before a single byte is inflated, so bombs and oversize archives
 * fail in milliseconds. What survives is a list of candidates for pass 2.
 */
import yauzl from "yauzl";
import { DatasetError, type RejectionCode } from "./errors.ts";
import type { DatasetLimits } from "./limits.ts";
import { checkEntryName, imageFormatFromPath, junkReason, safeKeyFor, type ImageFormat } from "./paths.ts";

/** Records a per-entry rejection; entries are reported in archive order by their central-directory index. */
export type Reject = (index: number, path: string, code: RejectionCode, reason: string) => void;

/** What pass 1 keeps about an entry that will be inflated. */
export interface Candidate {
  index: number;
  path: string;
  /** Path relative to the dataset root, once the root is known. */
  rel: string;
  format: ImageFormat;
  role: string;
  entry: yauzl.Entry;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MSDOS_DIRECTORY = 0x10;

export async function openZip(buf: Buffer): Promise<yauzl.ZipFile> {
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

export async function readCentralDirectory(
  zip: yauzl.ZipFile,
  fileSize: number,
  limits: DatasetLimits,
  reject: Reject,
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
