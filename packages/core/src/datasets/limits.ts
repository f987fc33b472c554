/**
 * The bounds dataset inspection works under. Every one of them caps what a hostile archive can cost
 * (entries, inflated bytes, decoder allocations, concurrency), so a caller's overrides are validated before
 * they replace a default.
 */
import { z } from "zod";
import { DatasetError } from "./errors.ts";

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

/** The defaults overridden by a caller's (validated) partial limits. */
export function resolveLimits(overrides: Partial<DatasetLimits> | undefined): DatasetLimits {
  const parsed = LimitsSchema.safeParse(overrides ?? {});
  if (!parsed.success) throw new DatasetError("invalid_options", `invalid limits: ${z.prettifyError(parsed.error)}`);
  return { ...DEFAULT_DATASET_LIMITS, ...parsed.data };
}
