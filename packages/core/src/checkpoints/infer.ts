/**
 * Model family and upstream config from a state dict, for imports that arrive without a config. Whatever the
 * weights cannot decide comes from hints (CLI flags, a network pickle's initKwargs); what neither supplies is
 * listed in `missing` with the default that was used, so a CLI can ask.
 */
import type { ModelFamily } from "../families.ts";
import { CheckpointError, type StateDict } from "./tensor.ts";
import { inferCycleGAN } from "./infer-cyclegan.ts";
import { inferSPADE } from "./infer-spade.ts";
import { inferStyleGAN2 } from "./infer-stylegan2.ts";

export interface ConfigHints {
  family?: ModelFamily;
  /** Any upstream option by its official name (e.g. label_nc, crop_size, mapping_kwargs: {lr_multiplier}). */
  [option: string]: unknown;
}

export interface InferredConfig {
  family: ModelFamily;
  /** Upstream option names, shaped like the fixture manifests' `config`. */
  config: Record<string, unknown>;
  missing: string[];
  notes: string[];
}

export function detectFamily(sd: StateDict): ModelFamily | undefined {
  const keys = [...sd.keys()];
  if (sd.has("mapping.fc0.weight") || keys.some((k) => k.startsWith("synthesis.b"))) return "stylegan2";
  if (keys.some((k) => k.startsWith("head_0.") || k.startsWith("G_middle_0.")) && keys.some((k) => k.startsWith("conv_img."))) return "spade";
  if (keys.length && keys.every((k) => k.startsWith("model."))) return "cyclegan";
  return undefined;
}

export function inferModelConfig(sd: StateDict, hints: ConfigHints = {}, file = "checkpoint"): InferredConfig {
  const { family: hinted, ...rest } = hints;
  const family = hinted ?? detectFamily(sd);
  if (!family) throw new CheckpointError(file, `cannot tell the model family from its ${sd.size} tensor names; pass family`);
  const run = { stylegan2: inferStyleGAN2, cyclegan: inferCycleGAN, spade: inferSPADE }[family];
  return { family, ...run(sd, rest) };
}
