/**
 * StyleGAN2-ADA Generator kwargs from state-dict names and shapes. lr_multiplier and conv_clamp change the
 * output but leave no trace in the weights, so they come from hints (or initKwargs of a network pickle).
 */
import type { StateDict } from "../../checkpoints/tensor.ts";
import { type Inference, shapeOf } from "../../checkpoints/infer-common.ts";
import { NOISE_STRENGTH } from "./layers.ts";
import { mappingKeys } from "./mapping.ts";
import { synthesisKeys } from "./synthesis.ts";

/** Whether a state dict holds a StyleGAN2 generator. */
export function isStyleGAN2(sd: StateDict): boolean {
  return sd.has(mappingKeys.fcWeight(0)) || [...sd.keys()].some((k) => synthesisKeys.blockResolution(k) !== undefined);
}

export function inferStyleGAN2(sd: StateDict, hints: Record<string, unknown>): Inference {
  const missing: string[] = [];
  const notes: string[] = [];
  const mapping = (hints.mapping_kwargs ?? {}) as Record<string, unknown>;
  const synthesis = (hints.synthesis_kwargs ?? {}) as Record<string, unknown>;

  const fcs = [...sd.keys()].map(mappingKeys.fcIndex).filter((i) => i !== undefined);
  const numLayers = fcs.length ? Math.max(...fcs) + 1 : 0;
  const wDim = shapeOf(sd, mappingKeys.wAvg)?.[0] ?? shapeOf(sd, mappingKeys.fcWeight(numLayers - 1))?.[0];
  const embedShape = shapeOf(sd, mappingKeys.embedWeight);
  const cDim = embedShape ? embedShape[1] : 0;
  const embedFeatures = embedShape ? embedShape[0] : 0;
  const firstFc = shapeOf(sd, mappingKeys.fcWeight(0));
  const zDim = firstFc ? firstFc[1] - embedFeatures : undefined;
  const layerFeatures = firstFc && numLayers > 1 ? firstFc[0] : undefined;

  const resolutions = [...new Set([...sd.keys()].map(synthesisKeys.blockResolution).filter((r) => r !== undefined))].sort((a, b) => a - b);
  const imgResolution = resolutions[resolutions.length - 1];
  const channelsDict: Record<string, number> = {};
  for (const r of resolutions) {
    const w = shapeOf(sd, synthesisKeys.conv1Weight(r));
    if (w) channelsDict[String(r)] = w[0];
  }
  const imgChannels = shapeOf(sd, synthesisKeys.torgbWeight(imgResolution))?.[0];
  const has = (test: (key: string) => boolean) => [...sd.keys()].some(test);
  const architecture = has(synthesisKeys.isSkip)
    ? "resnet"
    : resolutions.slice(0, -1).some((r) => sd.has(synthesisKeys.torgbWeight(r)))
      ? "skip"
      : "orig";
  const { channelBase, channelMax } = channelParams(channelsDict);
  if (channelBase === undefined) notes.push("channels_dict does not follow min(channel_base // res, channel_max); channel_base is a guess");
  // num_ws counts every conv plus the last block's torgb (upstream SynthesisNetwork).
  const numWs = resolutions.reduce((n, r) => n + (r === 4 ? 1 : 2), 0) + 1;

  const filter = sd.get(synthesisKeys.resampleFilter(resolutions[0]));
  if (filter && !isDefaultFilter(filter.data as Float32Array)) notes.push("resample_filter differs from [1,3,3,1]; the stored buffer is what runs");

  const pick = <T>(obj: Record<string, unknown>, key: string, fallback: T, name: string, uncertain: boolean): T => {
    if (key in obj) return obj[key] as T;
    if (uncertain) missing.push(name);
    return fallback;
  };
  const config = {
    z_dim: hints.z_dim ?? zDim,
    w_dim: hints.w_dim ?? wDim,
    c_dim: hints.c_dim ?? cDim,
    img_resolution: hints.img_resolution ?? imgResolution,
    img_channels: hints.img_channels ?? imgChannels,
    mapping_kwargs: {
      num_layers: mapping.num_layers ?? numLayers,
      lr_multiplier: pick(mapping, "lr_multiplier", 0.01, "mapping_kwargs.lr_multiplier", true),
      w_avg_beta: pick(mapping, "w_avg_beta", 0.995, "mapping_kwargs.w_avg_beta", false),
      embed_features: mapping.embed_features ?? (embedShape && embedFeatures !== wDim ? embedFeatures : null),
      layer_features: mapping.layer_features ?? (layerFeatures !== undefined && layerFeatures !== wDim ? layerFeatures : null),
      activation: pick(mapping, "activation", "lrelu", "mapping_kwargs.activation", false),
    },
    synthesis_kwargs: {
      channel_base: synthesis.channel_base ?? channelBase,
      channel_max: synthesis.channel_max ?? channelMax,
      architecture: synthesis.architecture ?? architecture,
      num_fp16_res: pick(synthesis, "num_fp16_res", 0, "synthesis_kwargs.num_fp16_res", false),
      conv_clamp: pick(synthesis, "conv_clamp", null, "synthesis_kwargs.conv_clamp", true),
      resample_filter: synthesis.resample_filter ?? [1, 3, 3, 1],
      use_noise: synthesis.use_noise ?? has((k) => k.endsWith(`.${NOISE_STRENGTH}`)),
    },
    num_ws: numWs,
    channels_dict: channelsDict,
  };
  return { config, missing, notes };
}

/** Invert channels_dict[res] = min(channel_base // res, channel_max). */
function channelParams(dict: Record<string, number>): { channelBase?: number; channelMax?: number } {
  const entries = Object.entries(dict).map(([r, c]) => [Number(r), c] as const);
  if (!entries.length) return {};
  const channelMax = Math.max(...entries.map(([, c]) => c));
  // The highest resolution with the fewest channels is never clamped; channel_base = res * channels there.
  const [r, c] = entries.reduce((a, b) => (b[1] < a[1] || (b[1] === a[1] && b[0] > a[0]) ? b : a));
  const channelBase = r * c;
  const ok = entries.every(([res, ch]) => Math.min(Math.floor(channelBase / res), channelMax) === ch);
  return { channelBase: ok ? channelBase : undefined, channelMax };
}

function isDefaultFilter(f: Float32Array): boolean {
  const k = [1, 3, 3, 1];
  return f.length === 16 && f.every((v, i) => Math.abs(v - (k[i >> 2] * k[i & 3]) / 64) < 1e-7);
}
