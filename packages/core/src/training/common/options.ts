/** Reading the free-form per-family `options` of a fine-tune request, with a clear error for a bad value. */

export class TrainerOptionError extends Error {
  override name = "TrainerOptionError";
}

export function numberOption(opts: Record<string, unknown>, key: string, fallback: number, check: { min?: number; integer?: boolean } = {}): number {
  const v = opts[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new TrainerOptionError(`options.${key} must be a number, got ${JSON.stringify(v)}`);
  if (check.integer && !Number.isInteger(v)) throw new TrainerOptionError(`options.${key} must be an integer, got ${v}`);
  if (check.min !== undefined && v < check.min) throw new TrainerOptionError(`options.${key} must be at least ${check.min}, got ${v}`);
  return v;
}

export function stringOption(opts: Record<string, unknown>, key: string, fallback: string): string {
  const v = opts[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string") throw new TrainerOptionError(`options.${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function booleanOption(opts: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = opts[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new TrainerOptionError(`options.${key} must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}
