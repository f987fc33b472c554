/**
 * DCGAN generator config: the tutorials' generators are `nn.Sequential`s (or an `fc` + `deconv` pair of them), so
 * the config is the list of their modules in forward order, with the official state_dict prefix of each module
 * that has weights (`fc.0`, `deconv.3`, `main.0`...). The three layouts differ only in which modules appear:
 * - `fc_deconv`: Linear(nz → C·s·s) [+ BatchNorm1d] + ReLU, view to C×s×s, ConvTranspose2d stack, Tanh;
 * - `main`: pytorch/examples' all-convolution stack from a z of shape nz×1×1;
 * - `mlp`: Linear layers to nc·size·size, Tanh, view to an image.
 * Activations and views have no weights, so a state_dict cannot show them; importers fill them in from the
 * layout and from `--config` (see networks/dcgan/infer.ts).
 */
import { z } from "zod";

export const DCGAN_LAYOUTS = ["fc_deconv", "main", "mlp"] as const;

/**
 * The tutorials' nn.Sequential attribute names, spelled only here: `main` (pytorch/examples, and PyTorch-GAN's
 * MLPs), `model` (other MLPs), and the `fc` + `deconv` pair. Every parameter name is `<sequential>.<index>.<leaf>`.
 */
export const DCGAN_SEQUENTIALS = { main: "main", model: "model", fc: "fc", deconv: "deconv" } as const;
export type DcganLayout = (typeof DCGAN_LAYOUTS)[number];

/** Which generator turns a seed into z: PyTorch's `torch.manual_seed(s); torch.randn(...)` or numpy's RandomState. */
export const SEED_RNGS = ["torch", "numpy"] as const;
export type SeedRng = (typeof SEED_RNGS)[number];

const count = z.number().int().positive();
const key = z.string().min(1);

export const DcganLayerSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("linear"), key, in: count, out: count, bias: z.boolean() }),
  z.object({
    op: z.literal("conv_transpose2d"),
    key,
    in: count,
    out: count,
    kernel: count,
    stride: count,
    padding: z.number().int().nonnegative(),
    output_padding: z.number().int().nonnegative().default(0),
    bias: z.boolean(),
  }),
  z.object({ op: z.literal("batch_norm"), key, features: count, eps: z.number().positive().default(1e-5), affine: z.boolean().default(true) }),
  /** `.view(-1, C, H, W)` of a vector (PyTorch's NCHW order). */
  z.object({ op: z.literal("reshape"), shape: z.tuple([count, count, count]) }),
  z.object({ op: z.literal("relu") }),
  z.object({ op: z.literal("leaky_relu"), slope: z.number().nonnegative().default(0.2) }),
  z.object({ op: z.literal("tanh") }),
  z.object({ op: z.literal("sigmoid") }),
]);
export type DcganLayer = z.output<typeof DcganLayerSchema>;

export const DcganConfigSchema = z.looseObject({
  layout: z.enum(DCGAN_LAYOUTS),
  /** z as the notebook draws it: [nz] (`randn(1, nz)`) or [nz, 1, 1] (`randn(1, nz, 1, 1)`); same values either way. */
  z_shape: z.union([z.tuple([count]), z.tuple([count, z.literal(1), z.literal(1)])]),
  /** Output channels: 1 (grayscale) or 3 (RGB). */
  nc: z.union([z.literal(1), z.literal(3)]),
  img_size: count,
  /** What a seed means for this model unless a request says otherwise. */
  seed_rng: z.enum(SEED_RNGS).default("torch"),
  layers: z.array(DcganLayerSchema).min(1),
});
export type DcganConfig = z.output<typeof DcganConfigSchema>;

/** Shape after each layer ([F] for vectors, [C, H, W] for maps), or a message naming the first layer that cannot run. */
export function walkShapes(layers: readonly DcganLayer[], zShape: readonly number[]): { shapes: number[][] } | { error: string } {
  let s = [...zShape];
  const shapes: number[][] = [];
  for (const [i, l] of layers.entries()) {
    const where = `layer ${i} (${l.op}${"key" in l ? ` ${l.key}` : ""})`;
    const numel = s.reduce((a, b) => a * b, 1);
    switch (l.op) {
      case "linear":
        if (numel !== l.in || (s.length === 3 && (s[1] !== 1 || s[2] !== 1))) return { error: `${where} takes ${l.in} features, gets [${s}]` };
        s = [l.out];
        break;
      case "conv_transpose2d": {
        // A vector z of nz values is the nz×1×1 map pytorch/examples feeds its first ConvTranspose2d.
        const [c, h, w] = s.length === 1 ? [s[0], 1, 1] : s;
        if (c !== l.in) return { error: `${where} takes ${l.in} channels, gets [${s}]` };
        const out = (x: number) => (x - 1) * l.stride - 2 * l.padding + l.kernel + l.output_padding;
        if (l.output_padding >= l.stride) return { error: `${where}: output_padding must be smaller than stride` };
        if (out(h) < 1 || out(w) < 1) return { error: `${where} gives an empty map from [${s}]` };
        s = [l.out, out(h), out(w)];
        break;
      }
      case "batch_norm":
        if (s[0] !== l.features) return { error: `${where} normalises ${l.features} features, gets [${s}]` };
        break;
      case "reshape":
        if (s.length !== 1 || numel !== l.shape[0] * l.shape[1] * l.shape[2]) return { error: `${where} cannot view [${s}] as [${l.shape}]` };
        s = [...l.shape];
        break;
      default:
        break;
    }
    shapes.push(s);
  }
  return { shapes };
}

/** Validates a config, including that its layers chain from z to an nc×img_size×img_size image. Throws with the reason. */
export function parseDcganConfig(raw: unknown): DcganConfig {
  const c = DcganConfigSchema.parse(raw);
  const walked = walkShapes(c.layers, c.z_shape);
  if ("error" in walked) throw new Error(`dcgan config: ${walked.error}`);
  const out = walked.shapes.at(-1) ?? [];
  if (out.length !== 3 || out[0] !== c.nc || out[1] !== c.img_size || out[2] !== c.img_size)
    throw new Error(`dcgan config: the layers give [${out}], not the ${c.nc}×${c.img_size}×${c.img_size} image the config names`);
  return c;
}

/**
 * pytorch/examples' netG (`main` layout) for a square image of `size` = 4·2^k: ConvTranspose2d(nz, ngf·2^k, 4, 1, 0)
 * from the 1×1 z, k doublings (4/2/1) halving the width, the last to `nc` channels, then Tanh; no biases, BatchNorm
 * and ReLU between. The demo model and the bench build theirs with it.
 */
export function mainLayoutConfig(nz: number, ngf: number, nc: 1 | 3, size: number): DcganConfig {
  const ups = Math.log2(size / 4);
  if (!Number.isInteger(ups) || ups < 1) throw new Error(`main layout: size ${size} is not 4·2^k with k ≥ 1`);
  const layers: unknown[] = [];
  let ch = ngf * 2 ** (ups - 1);
  let at = 0;
  layers.push({ op: "conv_transpose2d", key: `${DCGAN_SEQUENTIALS.main}.${at}`, in: nz, out: ch, kernel: 4, stride: 1, padding: 0, bias: false });
  for (let i = 0; i < ups; i++) {
    layers.push({ op: "batch_norm", key: `${DCGAN_SEQUENTIALS.main}.${at + 1}`, features: ch }, { op: "relu" });
    at += 3;
    const out = i === ups - 1 ? nc : ch / 2;
    layers.push({ op: "conv_transpose2d", key: `${DCGAN_SEQUENTIALS.main}.${at}`, in: ch, out, kernel: 4, stride: 2, padding: 1, bias: false });
    ch = out;
  }
  layers.push({ op: "tanh" });
  return parseDcganConfig({ layout: "main", z_shape: [nz, 1, 1], nc, img_size: size, seed_rng: "torch", layers });
}
