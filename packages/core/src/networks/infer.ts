/**
 * Model family and upstream config from a state dict, for imports that arrive without a config. Whatever the
 * weights cannot decide comes from hints (CLI flags, a network pickle's initKwargs); what neither supplies is
 * listed in `missing` with the default that was used, so a CLI can ask. It sits in networks/ rather than
 * checkpoints/ because DCGAN's reader builds on its network config (networks/dcgan/infer.ts), and checkpoints/
 * is the layer below.
 */
import type { ModelFamily } from "../families.ts";
import type { Inference } from "../checkpoints/infer-common.ts";
import { CheckpointError, type StateDict } from "../checkpoints/tensor.ts";
import { cycleganNamespace, inferCycleGAN } from "./cyclegan/infer.ts";
import { inferSPADE, isSpade } from "./spade/infer.ts";
import { inferStyleGAN2, isStyleGAN2 } from "./stylegan2/infer.ts";
import { hasDcganNames, inferDCGAN } from "./dcgan/infer.ts";

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

const INFER: Record<ModelFamily, (sd: StateDict, hints: Record<string, unknown>, file: string) => Inference> = {
  stylegan2: inferStyleGAN2,
  cyclegan: inferCycleGAN,
  spade: inferSPADE,
  dcgan: inferDCGAN,
};

export function detectFamily(sd: StateDict): ModelFamily | undefined {
  if (isStyleGAN2(sd)) return "stylegan2";
  if (isSpade(sd)) return "spade";
  // CycleGAN's `model` Sequential is all convolutions; a Linear in it makes it a DCGAN MLP generator.
  const cyclegan = cycleganNamespace(sd);
  if (cyclegan) return cyclegan === "conv" ? "cyclegan" : "dcgan";
  // DCGAN: the articles' fc + deconv pair, pytorch/examples' `main` Sequential, an MLP's `model` Sequential, or a
  // bare Sequential saved whole.
  if (hasDcganNames([...sd.keys()])) return "dcgan";
  return undefined;
}

export function inferModelConfig(sd: StateDict, hints: ConfigHints = {}, file = "checkpoint"): InferredConfig {
  const { family: hinted, ...rest } = hints;
  const family = hinted ?? detectFamily(sd);
  if (!family) throw new CheckpointError(file, `cannot tell the model family from its ${sd.size} tensor names; pass family`);
  return { family, ...INFER[family](sd, rest, file) };
}
