/**
 * What inspection reports: the accepted images, the rejected entries and the statistics summarising them,
 * and the final judgement of whether what was accepted is enough to train on.
 */
import { DatasetError, type RejectionCode } from "./errors.ts";
import { REQUIRED, type DatasetLayout } from "./layout.ts";
import type { ImageFormat } from "./paths.ts";

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

export function summarise(entries: readonly AcceptedImage[], rejected: readonly RejectedEntry[], entryCount: number, layout: DatasetLayout): DatasetStats {
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

export function requireUsable(layout: DatasetLayout, stats: DatasetStats, rejectedCount: number): void {
  const counts = stats.countsByFolder;
  const missing =
    layout === "stylegan2" || layout === "dcgan"
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
