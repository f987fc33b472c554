/**
 * What the inference service takes: the parsed request parameters and translate's input files, and the
 * expansion of "a-b" ranges (seeds, style-mix layers) into explicit lists. Kept apart from the service because
 * these are the API contract (MAX_SEEDS, 32-bit seeds), not how a model is run; the HTTP layer and the
 * preprocessing modules import them without importing the service.
 */
import type { z } from "zod";
import type { GenerateRequest, InterpolateRequest, TranslateFileField, TranslateRequest } from "../api/inference.ts";
import { MAX_SEEDS } from "../api/inference.ts";
import { ApiError } from "../errors.ts";

export type GenerateParams = z.output<typeof GenerateRequest>;
export type InterpolateParams = z.output<typeof InterpolateRequest>;
export type TranslateParams = z.output<typeof TranslateRequest>;

/** The bytes of a translate request, whether they came as multipart files or base64 JSON. */
export type TranslateInputs = { [K in TranslateFileField]?: Uint8Array };

export function expandSeeds(seeds: number[] | string, field = "seeds"): number[] {
  if (Array.isArray(seeds)) return seeds;
  const [a, b] = seeds.split("-").map(Number);
  if (!(b >= a)) throw new ApiError("validation_failed", `${field}: range "${seeds}" must be "a-b" with a <= b`);
  if (b - a + 1 > MAX_SEEDS) throw new ApiError("validation_failed", `${field}: range "${seeds}" has ${b - a + 1} seeds; at most ${MAX_SEEDS}`);
  if (b > 4294967295) throw new ApiError("validation_failed", `${field}: seeds must be < 2^32`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

export const expandLayers = (layers: number[] | string, field = "style_mix.layers"): number[] => {
  if (Array.isArray(layers)) return layers;
  const [a, b] = layers.split("-").map(Number);
  if (!(b >= a)) throw new ApiError("validation_failed", `${field}: range "${layers}" must be "a-b" with a <= b`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
};
