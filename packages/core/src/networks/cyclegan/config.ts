/**
 * Generator options in the upstream pix2pix/CycleGAN names (`define_G` arguments and the `opt.*` that feed them),
 * so a manifest's or a training run's `config` validates as is. Unknown keys pass through untouched.
 */
import { z } from "zod";

export const NET_G = ["resnet_6blocks", "resnet_9blocks", "unet_128", "unet_256"] as const;
export type NetG = (typeof NET_G)[number];

export const CycleGANConfigSchema = z.looseObject({
  /** Channels of domain A images (G_A's input, G_B's output). */
  input_nc: z.number().int().positive().default(3),
  /** Channels of domain B images (G_A's output, G_B's input). */
  output_nc: z.number().int().positive().default(3),
  ngf: z.number().int().positive().default(64),
  netG: z.enum(NET_G).default("resnet_9blocks"),
  /** 'none' is upstream's Identity norm; like batch norm it gives convs no bias (upstream's use_bias rule). */
  norm: z.enum(["instance", "batch", "none"]).default("instance"),
  /**
   * Dropout layers exist (and, for resnet generators, shift the state_dict indices) when true; they only act in
   * training mode. When absent, upstream's `no_dropout` flag is honoured; otherwise it defaults to false.
   */
  use_dropout: z.boolean().optional(),
  no_dropout: z.boolean().optional(),
  /** Std of the normal initialisation used by `randomInit`. */
  init_gain: z.number().positive().default(0.02),
});

export type CycleGANConfigInput = z.input<typeof CycleGANConfigSchema>;

export interface CycleGANConfig {
  input_nc: number;
  output_nc: number;
  ngf: number;
  netG: NetG;
  norm: "instance" | "batch" | "none";
  use_dropout: boolean;
  init_gain: number;
}

/** Validates and settles `use_dropout`. Throws a ZodError naming the offending option. */
export function parseCycleGANConfig(raw: unknown): CycleGANConfig {
  const c = CycleGANConfigSchema.parse(raw);
  return {
    input_nc: c.input_nc,
    output_nc: c.output_nc,
    ngf: c.ngf,
    netG: c.netG,
    norm: c.norm,
    use_dropout: c.use_dropout ?? (c.no_dropout !== undefined ? !c.no_dropout : false),
    init_gain: c.init_gain,
  };
}

/** Upstream gives convs a bias only when the norm layer is InstanceNorm (it has no affine shift of its own). */
export const convUsesBias = (c: Pick<CycleGANConfig, "norm">) => c.norm === "instance";

export interface SizeConstraints {
  /** Height and width must be multiples of this for the output to have the input's size (U-Net: to run at all). */
  sizeMultiple: number;
  /** Smallest height/width the network runs on. */
  minSize: number;
}

/**
 * Resnet: two stride-2 convs then two x2 transposed convs, so the output is the input rounded up to a multiple
 * of 4; the reflection pads need at least 4 pixels at the input and 2 at 1/4 scale. U-Net: every level halves,
 * and the skip concatenation needs the halves to come back exactly, so sizes must be multiples of 2^num_downs.
 */
export function sizeConstraints(netG: NetG): SizeConstraints {
  switch (netG) {
    case "resnet_6blocks":
    case "resnet_9blocks":
      return { sizeMultiple: 4, minSize: 8 };
    case "unet_128":
      return { sizeMultiple: 128, minSize: 128 };
    case "unet_256":
      return { sizeMultiple: 256, minSize: 256 };
  }
}

/**
 * What one image costs a serving pass, in bytes per pixel of the network input. Both generators are fully
 * convolutional: the network runs at whatever size it is given (with translate's `preprocess=none`, the
 * upload's own size), so memory grows with the input's pixels × the network's width. At its peak ONNX Runtime
 * holds about six full-resolution float32 maps of `ngf` channels (the 1/2- and 1/4-scale layers, with 2× and 4×
 * the channels on 1/4 and 1/16 of the pixels, add less); measured on emoji-cyclegan (resnet_6blocks, ngf 8):
 * +810 MB at 2048², 193 B/pixel. The float input and output are added on top.
 */
export const servingBytesPerPixel = (c: Pick<CycleGANConfig, "ngf" | "input_nc" | "output_nc">): number =>
  4 * (6 * Math.max(c.ngf, c.input_nc, c.output_nc) + c.input_nc + c.output_nc);
