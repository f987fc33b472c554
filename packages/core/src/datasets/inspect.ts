/**
 * Validation and indexing of an uploaded dataset zip, with no storage in sight: bytes in, a report and the
 * accepted images' bytes out. Everything here treats the archive as hostile.
 *
 * Two passes. The first reads only the central directory: names, declared sizes and layout are judged
 * before a single byte is inflated, so bombs, oversize archives and wrong layouts fail in milliseconds. The
 * second inflates each surviving entry under a hard cap equal to its declared size (itself capped), so a
 * lying header costs at most that many bytes, then has sharp decode it fully.
 *
 * This module runs the passes: central-directory.ts (pass 1), layout.ts (which folders mean what),
 * entries.ts (pass 2) and report.ts (the result). The types a caller of inspectArchive needs are re-exported
 * here so callers depend on this module only.
 */
import { isFamily } from "../families.ts";
import { mapLimited } from "../limits/map-limited.ts";
import { openZip, readCentralDirectory, type Reject } from "./central-directory.ts";
import { processOne, processPair } from "./entries.ts";
import { DatasetError } from "./errors.ts";
import { assignRoles, resolveLayout, type DatasetLayout } from "./layout.ts";
import { resolveLimits, type DatasetLimits } from "./limits.ts";
import { requireUsable, summarise, type AcceptedImage, type DatasetReport, type RejectedEntry } from "./report.ts";

export type { DatasetLayout } from "./layout.ts";
export { DEFAULT_DATASET_LIMITS, type DatasetLimits } from "./limits.ts";
export type { AcceptedImage, DatasetReport, DatasetStats, RejectedEntry } from "./report.ts";

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

export async function inspectArchive(zipBytes: Uint8Array, opts: InspectOptions): Promise<DatasetReport> {
  const limits = resolveLimits(opts.limits);
  if (opts.layout !== "auto" && !isFamily(opts.layout))
    throw new DatasetError("invalid_options", `unknown layout ${JSON.stringify(opts.layout)}`);

  const buf = Buffer.from(zipBytes.buffer, zipBytes.byteOffset, zipBytes.byteLength);
  const zip = await openZip(buf);
  try {
    if (zip.entryCount > limits.maxEntries)
      throw new DatasetError("too_many_entries", `archive has ${zip.entryCount} entries; the limit is ${limits.maxEntries}`);
    if (zip.entryCount === 0) throw new DatasetError("empty_archive", "the zip archive is empty");

    const rejected: (RejectedEntry & { index: number })[] = [];
    const reject: Reject = (index, path, code, reason) => rejected.push({ index, path, code, reason });
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
