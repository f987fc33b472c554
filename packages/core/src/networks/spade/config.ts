/**
 * SPADE options in upstream (`opt.*`) names. Unknown keys pass through so a manifest's `config` parses as is;
 * the derived sizes (`semantic_nc`, `sw`, `sh`, `output_hw`) are computed here and, if the input already states
 * them, must agree (a mismatch means the config and the checkpoint came from different runs).
 */
import { z } from "zod";

export const NUM_UPSAMPLING = { normal: 5, more: 6, most: 7 } as const;

const SpadeConfigCore = z.object({
    label_nc: z.int().min(1),
    contain_dontcare_label: z.boolean().default(false),
    no_instance: z.boolean().default(false),
    ngf: z.int().min(1).default(64),
    norm_G: z
      .string()
      .regex(/^(spectral)?spade(syncbatch|batch|instance)\dx\d$/, "norm_G must look like [spectral]spade{syncbatch|batch|instance}<k>x<k>")
      .default("spectralspadesyncbatch3x3"),
    norm_E: z
      .string()
      .regex(/^(spectral)?(syncbatch|batch|instance|none)?$/, "norm_E must look like [spectral]{instance|batch|syncbatch|none}")
      .default("spectralinstance"),
    num_upsampling_layers: z.enum(["normal", "more", "most"]).default("normal"),
    crop_size: z.int().min(1).default(256),
    aspect_ratio: z.number().positive().default(1),
    use_vae: z.boolean().default(false),
    z_dim: z.int().min(1).default(256),
    init_type: z.string().default("xavier"),
    init_variance: z.number().positive().default(0.02),
    /** Upstream hard-codes 128; the fixtures' manifests state it, and a fork's checkpoint may differ. */
    spade_nhidden: z.int().min(1).default(128),
    semantic_nc: z.int().optional(),
    sw: z.int().optional(),
    sh: z.int().optional(),
    output_hw: z.tuple([z.int(), z.int()]).optional(),
});

/** Extra keys (init_type, spade_nhidden, dataset options...) are accepted and kept. */
export const SpadeConfigInput = SpadeConfigCore.loose();

export interface SpadeConfig extends Omit<z.output<typeof SpadeConfigCore>, "semantic_nc" | "sw" | "sh" | "output_hw"> {
  semantic_nc: number;
  sw: number;
  sh: number;
  output_hw: [number, number];
  /** Parsed from norm_G. */
  spade: { spectral: boolean; paramFree: "syncbatch" | "batch" | "instance"; kernel: number };
}

/** Python's round(): ties go to the even neighbour (round(2.5) == 2), which sh inherits upstream. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

export class SpadeConfigError extends Error {
  override name = "SpadeConfigError";
}

export function parseSpadeConfig(input: unknown): SpadeConfig {
  const res = SpadeConfigInput.safeParse(input);
  if (!res.success) throw new SpadeConfigError(`invalid SPADE config: ${z.prettifyError(res.error)}`);
  const c = res.data;
  const numUp = NUM_UPSAMPLING[c.num_upsampling_layers];
  const sw = Math.floor(c.crop_size / 2 ** numUp);
  const sh = pyRound(sw / c.aspect_ratio);
  if (sw < 1 || sh < 1)
    throw new SpadeConfigError(`crop_size ${c.crop_size} with aspect_ratio ${c.aspect_ratio} is too small for ${numUp} upsamplings (sw=${sw}, sh=${sh})`);
  if (c.num_upsampling_layers === "most" && Math.floor(c.ngf / 2) < 1)
    throw new SpadeConfigError("num_upsampling_layers 'most' needs ngf >= 2 (up_4 outputs ngf // 2 channels)");
  const semantic_nc = c.label_nc + (c.contain_dontcare_label ? 1 : 0) + (c.no_instance ? 0 : 1);
  const output_hw: [number, number] = [sh * 2 ** numUp, sw * 2 ** numUp];
  const check = (key: string, given: unknown, derived: unknown) => {
    if (given !== undefined && JSON.stringify(given) !== JSON.stringify(derived))
      throw new SpadeConfigError(`config says ${key}=${JSON.stringify(given)} but the options give ${JSON.stringify(derived)}`);
  };
  check("semantic_nc", c.semantic_nc, semantic_nc);
  check("sw", c.sw, sw);
  check("sh", c.sh, sh);
  check("output_hw", c.output_hw, output_hw);
  const m = /^(spectral)?spade(\D+)(\d)x\d/.exec(c.norm_G);
  if (!m) throw new SpadeConfigError(`cannot parse norm_G ${c.norm_G}`);
  const kernel = Number(m[3]);
  if (kernel % 2 === 0) throw new SpadeConfigError(`norm_G kernel ${kernel} must be odd (padding is kernel // 2)`);
  return {
    ...c,
    semantic_nc,
    sw,
    sh,
    output_hw,
    spade: { spectral: m[1] === "spectral", paramFree: m[2] as SpadeConfig["spade"]["paramFree"], kernel },
  };
}
