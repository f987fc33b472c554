/**
 * SPADE generator options. The weights fix semantic_nc (= label_nc + contain_dontcare_label + !no_instance) but
 * not how it splits, nor crop_size/aspect_ratio or normal-vs-more upsampling (the extra upsample has no weights),
 * so those come from hints and are reported as missing otherwise.
 */
import type { StateDict } from "../../checkpoints/tensor.ts";
import { type Inference, shapeOf } from "../../checkpoints/infer-common.ts";
import { hasSpectralOrig, spectralWeightKeys } from "../common/spectral-norm.ts";
import { generatorKeys } from "./generator.ts";
import { resnetBlockKeys, spadeNormKeys } from "./layers.ts";

const NUM_UP: Record<string, number> = { normal: 5, more: 6, most: 7 };

/** Whether a state dict holds a SPADE generator. */
export function isSpade(sd: StateDict): boolean {
  return generatorKeys.matches([...sd.keys()]);
}

export function inferSPADE(sd: StateDict, hints: Record<string, unknown>): Inference {
  const missing: string[] = [];
  const notes: string[] = [];
  const keys = [...sd.keys()];
  const fc = shapeOf(sd, generatorKeys.fcWeight);
  const headNorm = resnetBlockKeys.firstNorm(generatorKeys.head);
  const headConv = spectralWeightKeys(resnetBlockKeys.firstConv(generatorKeys.head));
  const useVae = fc?.length === 2;
  const shared = shapeOf(sd, spadeNormKeys.sharedConvWeight(headNorm));
  const semanticNc = useVae ? shared?.[1] : fc?.[1];
  const head = shapeOf(sd, headConv.orig) ?? shapeOf(sd, headConv.plain);
  const ngf = head ? head[0] / 16 : undefined;
  const spectral = hasSpectralOrig(sd);
  const paramFree = sd.has(spadeNormKeys.paramFreeRunningMean(headNorm)) ? "syncbatch" : "instance";
  const kernel = shared?.[3] ?? 3;

  const split = splitSemantic(semanticNc ?? 0, hints, missing);
  const numUpsampling = (hints.num_upsampling_layers as string | undefined) ?? (keys.some(generatorKeys.isExtraUp) ? "most" : "normal");
  if (!("num_upsampling_layers" in hints) && numUpsampling !== "most") missing.push("num_upsampling_layers");
  const cropSize = (hints.crop_size as number | undefined) ?? 256;
  if (!("crop_size" in hints)) missing.push("crop_size");
  const aspectRatio = (hints.aspect_ratio as number | undefined) ?? 1.0;
  if (!("aspect_ratio" in hints)) missing.push("aspect_ratio");
  const numUp = NUM_UP[numUpsampling];
  const sw = Math.floor(cropSize / 2 ** numUp);
  const sh = Math.round(sw / aspectRatio);
  if (useVae && fc && ngf && fc[0] !== 16 * ngf * sw * sh) notes.push(`fc expects sw*sh = ${fc[0] / (16 * ngf)}; crop_size/aspect_ratio/num_upsampling_layers disagree`);

  const config = {
    label_nc: split.label_nc,
    contain_dontcare_label: split.contain_dontcare_label,
    no_instance: split.no_instance,
    semantic_nc: semanticNc,
    ngf,
    norm_G: hints.norm_G ?? `${spectral ? "spectral" : ""}spade${paramFree}${kernel}x${kernel}`,
    num_upsampling_layers: numUpsampling,
    crop_size: cropSize,
    aspect_ratio: aspectRatio,
    use_vae: useVae,
    z_dim: hints.z_dim ?? (useVae ? fc![1] : 256),
    init_type: hints.init_type ?? "xavier",
    init_variance: hints.init_variance ?? 0.02,
    sw,
    sh,
    output_hw: [sh * 2 ** numUp, sw * 2 ** numUp],
    spade_nhidden: shared?.[0],
  };
  return { config, missing, notes };
}

/** semantic_nc = label_nc + dontcare + instance; any two hints fix the third. */
function splitSemantic(semanticNc: number, hints: Record<string, unknown>, missing: string[]) {
  const dontcare = hints.contain_dontcare_label as boolean | undefined;
  const noInstance = hints.no_instance as boolean | undefined;
  let labelNc = hints.label_nc as number | undefined;
  let d = dontcare;
  let n = noInstance;
  if (labelNc !== undefined) {
    const extra = semanticNc - labelNc;
    if (d === undefined && n !== undefined) d = extra - (n ? 0 : 1) === 1;
    else if (n === undefined && d !== undefined) n = extra - (d ? 1 : 0) === 0;
    else if (d === undefined && n === undefined) {
      if (extra === 0 || extra === 2) [d, n] = [extra === 2, extra === 0];
    }
  } else if (d !== undefined && n !== undefined) {
    labelNc = semanticNc - (d ? 1 : 0) - (n ? 0 : 1);
  }
  // Upstream's defaults: no dontcare label, instance maps used.
  if (d === undefined) {
    missing.push("contain_dontcare_label");
    d = false;
  }
  if (n === undefined) {
    missing.push("no_instance");
    n = false;
  }
  if (labelNc === undefined) {
    missing.push("label_nc");
    labelNc = semanticNc - (d ? 1 : 0) - (n ? 0 : 1);
  }
  return { label_nc: labelNc, contain_dontcare_label: d, no_instance: n };
}
