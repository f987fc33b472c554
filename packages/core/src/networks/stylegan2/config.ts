/**
 * StyleGAN2 (stylegan2-ada-pytorch `Generator`) configuration in the official keyword names, so a manifest's
 * `config`, a pickle's `init_kwargs` and our `model.json` all parse with one schema. Defaults are upstream's.
 * `num_ws` and `channels_dict` are derived; when given (as manifests do) they must agree with the derivation.
 */
import { z } from "zod";
import { ACTIVATION_NAMES } from "../common/bias_act.ts";

const nullableInt = z.number().int().positive().nullable();

export const MappingKwargs = z.looseObject({
  num_layers: z.number().int().min(1).default(8),
  embed_features: nullableInt.default(null),
  layer_features: nullableInt.default(null),
  activation: z.enum(ACTIVATION_NAMES).default("lrelu"),
  lr_multiplier: z.number().positive().default(0.01),
  w_avg_beta: z.number().nullable().default(0.995),
});

export const SynthesisKwargs = z.looseObject({
  channel_base: z.number().int().positive().default(32768),
  channel_max: z.number().int().positive().default(512),
  architecture: z.enum(["orig", "skip", "resnet"]).default("skip"),
  /** Accepted for compatibility; we always compute in float32 (upstream's non-CUDA path does too). */
  num_fp16_res: z.number().int().min(0).default(0),
  conv_clamp: z.number().positive().nullable().default(null),
  resample_filter: z.array(z.number()).min(1).default([1, 3, 3, 1]),
  use_noise: z.boolean().default(true),
  kernel_size: z.number().int().positive().optional(),
  activation: z.enum(ACTIVATION_NAMES).optional(),
});

const isPow2 = (n: number) => Number.isInteger(Math.log2(n));

export const StyleGAN2Config = z
  .looseObject({
    z_dim: z.number().int().min(0),
    w_dim: z.number().int().positive(),
    c_dim: z.number().int().min(0).default(0),
    img_resolution: z.number().int().min(4).max(1 << 14).refine(isPow2, "img_resolution must be a power of two"),
    img_channels: z.number().int().positive().default(3),
    mapping_kwargs: MappingKwargs.prefault({}),
    synthesis_kwargs: SynthesisKwargs.prefault({}),
    num_ws: z.number().int().optional(),
    channels_dict: z.record(z.string(), z.number().int()).optional(),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.z_dim + cfg.c_dim === 0) ctx.addIssue({ code: "custom", message: "z_dim and c_dim cannot both be 0" });
    const d = derive(cfg);
    if (cfg.num_ws !== undefined && cfg.num_ws !== d.numWs)
      ctx.addIssue({ code: "custom", path: ["num_ws"], message: `num_ws ${cfg.num_ws} does not match the architecture (${d.numWs})` });
    if (cfg.channels_dict)
      for (const res of d.blockResolutions)
        if (cfg.channels_dict[String(res)] !== undefined && cfg.channels_dict[String(res)] !== d.channels[res])
          ctx.addIssue({ code: "custom", path: ["channels_dict", String(res)], message: `expected ${d.channels[res]}` });
  });

export type StyleGAN2Config = z.output<typeof StyleGAN2Config>;
export type StyleGAN2ConfigInput = z.input<typeof StyleGAN2Config>;

export interface Derived {
  blockResolutions: number[];
  /** channels_dict: min(channel_base // res, channel_max). */
  channels: Record<number, number>;
  numWs: number;
}

type DeriveInput = Pick<StyleGAN2Config, "img_resolution" | "synthesis_kwargs">;

export function derive(cfg: DeriveInput): Derived {
  const log2 = Math.round(Math.log2(cfg.img_resolution));
  const blockResolutions = Array.from({ length: log2 - 1 }, (_, i) => 2 ** (i + 2));
  const { channel_base, channel_max } = cfg.synthesis_kwargs;
  const channels: Record<number, number> = {};
  for (const res of blockResolutions) channels[res] = Math.min(Math.floor(channel_base / res), channel_max);
  // Every block has conv1, all but b4 have conv0; only the last block's ToRGB adds a w (the others share the
  // next block's conv0 w, which is why num_ws is not the number of layers).
  let numWs = 0;
  for (const res of blockResolutions) numWs += res === 4 ? 1 : 2;
  numWs += 1;
  return { blockResolutions, channels, numWs };
}

export function parseConfig(raw: unknown): StyleGAN2Config {
  return StyleGAN2Config.parse(raw);
}
