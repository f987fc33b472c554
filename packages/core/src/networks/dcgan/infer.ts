/**
 * DCGAN generator config from its state_dict: which layout (`fc_deconv`, `main`, `mlp`), nz, widths, output
 * channels and size, BatchNorm or not, bias or not, read from the names and shapes of the tensors. What weights
 * cannot show (activations, ConvTranspose2d stride and padding, BatchNorm eps) follows the tutorials the layouts
 * come from; `hints` (`--config`/`--set`) override it, and whatever is a guess is reported in `missing`.
 */
import { z } from "zod";
import { NUM_BATCHES_TRACKED, RUNNING_MEAN, RUNNING_STAT_LEAVES, RUNNING_VAR } from "../common/norm.ts";
import { DCGAN_LAYOUTS, DCGAN_SEQUENTIALS, type DcganConfig, type DcganLayer, DcganLayerSchema, type DcganLayout, parseDcganConfig, walkShapes } from "./config.ts";
import type { Inference } from "../../checkpoints/infer-common.ts";
import { CheckpointError, type RawTensor, type StateDict } from "../../checkpoints/tensor.ts";

const { main: MAIN, model: MODEL, fc: FC, deconv: DECONV } = DCGAN_SEQUENTIALS;
/** How each layout names its tensors, for error messages. */
export const DCGAN_LAYOUT_NAMES: Record<DcganLayout, string> = {
  fc_deconv: `fc_deconv (${FC}.N.* Linear/BatchNorm1d, then ${DECONV}.N.* ConvTranspose2d/BatchNorm2d)`,
  main: `main (${MAIN}.N.* ConvTranspose2d/BatchNorm2d from z of nz×1×1)`,
  mlp: `mlp (${MAIN}.N.* or ${MODEL}.N.* Linear/BatchNorm1d)`,
};

/** A state_dict that no layout explains: names the first tensor that does not fit and the layouts tried. */
export class DcganLayoutError extends CheckpointError {
  override name = "DcganLayoutError";
  constructor(
    file: string,
    readonly unexpected: string,
    reason: string,
    readonly tried: DcganLayout[],
  ) {
    super(file, `first unexpected tensor ${unexpected}: ${reason}; DCGAN layouts tried: ${tried.map((l) => DCGAN_LAYOUT_NAMES[l]).join(", ")}`);
  }
}

type Module =
  | { kind: "linear"; key: string; index: number; in: number; out: number; bias: boolean }
  | { kind: "conv_transpose2d"; key: string; index: number; in: number; out: number; kernel: number; bias: boolean }
  | { kind: "batch_norm"; key: string; index: number; features: number; affine: boolean };

interface Sequence {
  prefix: string;
  modules: Module[];
}

const BN_PARAMS = new Set<string>(["weight", "bias", ...RUNNING_STAT_LEAVES]);

/**
 * Whether every name (under nn.DataParallel's `module.` or not) is `<index>.<leaf>` under one of the tutorials'
 * Sequentials, or of a bare Sequential saved whole.
 */
export function hasDcganNames(keys: readonly string[]): boolean {
  const names = new RegExp(`^((${Object.values(DCGAN_SEQUENTIALS).join("|")})\\.)?\\d+\\.[a-z_]+$`);
  const bare = keys.map((k) => k.replace(/^module\./, ""));
  return bare.length > 0 && bare.every((k) => names.test(k));
}

export function inferDCGAN(sd: StateDict, hints: Record<string, unknown>, file = "checkpoint"): Inference {
  const notes: string[] = [];
  const missing: string[] = [];
  const keys = [...sd.keys()];
  if (keys.length === 0) throw new CheckpointError(file, "the state_dict is empty");
  // nn.DataParallel saves every name under "module.".
  const root = keys.every((k) => k.startsWith("module.")) ? "module." : "";
  if (root) notes.push("names carry nn.DataParallel's module. prefix; kept as they are");

  const hintedLayout = hints.layout as DcganLayout | undefined;
  if (hintedLayout !== undefined && !DCGAN_LAYOUTS.includes(hintedLayout))
    throw new CheckpointError(file, `layout ${JSON.stringify(hintedLayout)} is not one of ${DCGAN_LAYOUTS.join(", ")}`);

  if (Array.isArray(hints.layers)) return fromHintedLayers(sd, hints, file, notes);

  const hasFc = keys.some((k) => k.startsWith(`${root}${FC}.`)) && keys.some((k) => k.startsWith(`${root}${DECONV}.`));
  const seqPrefix = hasFc ? undefined : sequentialPrefix(keys, root);
  const tried: DcganLayout[] = hintedLayout ? [hintedLayout] : [...DCGAN_LAYOUTS];
  const fail = (key: string, reason: string): never => {
    throw new DcganLayoutError(file, key, reason, tried);
  };
  const prefixes = hasFc ? [`${root}${FC}.`, `${root}${DECONV}.`] : seqPrefix !== undefined ? [seqPrefix] : [];
  if (!prefixes.length) fail(keys[0], "no DCGAN layout names it");
  const seqs = prefixes.map((p) => parseSequence(sd, p, file, fail));
  const stray = keys.find((k) => !prefixes.some((p) => k.startsWith(p)));
  if (stray) fail(stray, `outside ${prefixes.join(" and ")}`);
  for (const s of seqs) if (!s.modules.length) fail(`${s.prefix}*`, "holds no weights");

  const first = seqs[0].modules.find((m) => m.kind !== "batch_norm");
  if (!first) return fail(seqs[0].modules[0].key, "a BatchNorm before any Linear or ConvTranspose2d");
  const layout: DcganLayout = hasFc ? "fc_deconv" : first.kind === "linear" ? "mlp" : "main";
  if (hintedLayout && hintedLayout !== layout) fail(`${first.key}.weight`, `its names and shapes are the ${layout} layout, not ${hintedLayout}`);
  if (layout === "fc_deconv") {
    if (seqs[0].modules.some((m) => m.kind === "conv_transpose2d")) fail(`${seqs[0].prefix}*`, "fc holds a ConvTranspose2d");
    if (seqs[1].modules.some((m) => m.kind === "linear")) fail(`${seqs[1].prefix}*`, "deconv holds a Linear");
  } else if (layout === "mlp" && seqs[0].modules.some((m) => m.kind === "conv_transpose2d")) {
    const m = seqs[0].modules.find((x) => x.kind === "conv_transpose2d")!;
    fail(`${m.key}.weight`, "a ConvTranspose2d in a Linear (mlp) stack");
  } else if (layout === "main" && seqs[0].modules.some((m) => m.kind === "linear")) {
    const m = seqs[0].modules.find((x) => x.kind === "linear")!;
    fail(`${m.key}.weight`, "a Linear in a ConvTranspose2d (main) stack");
  }

  // Activations cannot be seen in a state_dict. ReLU is what the DCGAN paper, pytorch/examples and the articles'
  // fc_deconv use; MLP generators are written with either ReLU or LeakyReLU(0.2), so an MLP asks.
  const hiddenAct = (hints.hidden_act as string | undefined) ?? "relu";
  if (hiddenAct !== "relu" && hiddenAct !== "leaky_relu") throw new CheckpointError(file, `hidden_act must be relu or leaky_relu, not ${JSON.stringify(hiddenAct)}`);
  if (hints.hidden_act === undefined && layout === "mlp") missing.push("hidden_act");
  const slope = (hints.leaky_slope as number | undefined) ?? 0.2;
  const outAct = (hints.out_act as string | undefined) ?? "tanh";
  if (!["tanh", "sigmoid", "none"].includes(outAct)) throw new CheckpointError(file, `out_act must be tanh, sigmoid or none, not ${JSON.stringify(outAct)}`);
  const bnEps = (hints.bn_eps as number | undefined) ?? 1e-5;
  const hasBn = seqs.some((s) => s.modules.some((m) => m.kind === "batch_norm"));
  // PyTorch-GAN's MLP passes 0.8 as BatchNorm1d's second positional argument, which is eps.
  if (hasBn && layout === "mlp" && hints.bn_eps === undefined) missing.push("bn_eps");

  const layers: DcganLayer[] = [];
  const act = (): DcganLayer => (hiddenAct === "relu" ? { op: "relu" } : { op: "leaky_relu", slope });
  // Channels (or features) flowing out of the last layer, to check each weight takes what the previous gives.
  let width: number | undefined;
  let convIndex = 0;
  for (const [si, seq] of seqs.entries()) {
    if (si === 1) {
      // fc's output viewed as C×s×s for deconv: C is the first ConvTranspose2d's input channels.
      const c = (seq.modules.find((m) => m.kind === "conv_transpose2d") as { in: number } | undefined)?.in ?? 0;
      const side = Math.round(Math.sqrt((width ?? 0) / c));
      if (!c || side * side * c !== width) fail(`${seq.modules[0].key}.weight`, `fc gives ${width} features, which is not ${c || "?"}×s×s`);
      layers.push({ op: "reshape", shape: [c, side, side] });
      width = c;
    }
    for (const [mi, m] of seq.modules.entries()) {
      const tensor = `${m.key}.${m.kind === "batch_norm" ? RUNNING_MEAN : "weight"}`;
      if (m.kind === "batch_norm") {
        if (width !== m.features) fail(tensor, `normalises ${m.features} features, the layer before gives ${width}`);
        layers.push({ op: "batch_norm", key: m.key, features: m.features, eps: bnEps, affine: m.affine });
      } else if (m.kind === "linear") {
        if (width !== undefined && width !== m.in) fail(tensor, `takes ${m.in} features, the layer before gives ${width}`);
        layers.push({ op: "linear", key: m.key, in: m.in, out: m.out, bias: m.bias });
        width = m.out;
      } else {
        if (width !== undefined && width !== m.in) fail(tensor, `takes ${m.in} channels, the layer before gives ${width}`);
        const [stride, padding, outputPadding, guessed] = convGeometry(m.kernel, convIndex === 0 && layout === "main");
        if (guessed) {
          notes.push(`${m.key}: kernel ${m.kernel}; assumed stride ${stride}, padding ${padding}, output_padding ${outputPadding} (pass layers to override)`);
          if (!missing.includes("layers")) missing.push("layers");
        }
        layers.push({ op: "conv_transpose2d", key: m.key, in: m.in, out: m.out, kernel: m.kernel, stride, padding, output_padding: outputPadding, bias: m.bias });
        width = m.out;
        convIndex++;
      }
      const next = seq.modules[mi + 1];
      const isLast = si === seqs.length - 1 && mi === seq.modules.length - 1;
      if (isLast) break;
      // Between weight modules sit the parameterless ones: after a Linear/ConvTranspose2d either a BatchNorm
      // comes next or an activation does; after a BatchNorm, an activation. The end of fc holds its ReLU.
      const gap = next ? next.index - m.index - 1 : 1;
      if (next?.kind === "batch_norm") {
        if (gap > 0) notes.push(`${gap} module(s) without weights between ${m.key} and ${next.key}; taken as identity (e.g. Dropout)`);
        continue;
      }
      if (gap === 0) continue;
      layers.push(act());
      if (gap > 1) notes.push(`${gap - 1} module(s) without weights after the activation following ${m.key}; taken as identity (e.g. Dropout)`);
    }
  }
  if (outAct !== "none") layers.push({ op: outAct as "tanh" | "sigmoid" });

  const nz = (seqs[0].modules[0] as { in: number }).in;
  const zShape: [number] | [number, 1, 1] = layout === "main" ? [nz, 1, 1] : [nz];
  let nc: number;
  let size: number;
  if (layout === "mlp") {
    [nc, size] = imageOf(width ?? 0, hints, file);
    layers.push({ op: "reshape", shape: [nc, size, size] });
  } else {
    const last = [...seqs.at(-1)!.modules].reverse().find((m) => m.kind === "conv_transpose2d")!;
    nc = last.out;
    size = 0;
  }
  const config: Record<string, unknown> = {
    layout,
    z_shape: zShape,
    nc,
    img_size: size,
    seed_rng: (hints.seed_rng as string | undefined) ?? "torch",
    batch_norm: hasBn,
    bias: seqs.some((s) => s.modules.some((m) => m.kind !== "batch_norm" && m.bias)),
    layers,
  };
  if (layout !== "mlp") {
    const out = walkedOutput({ z_shape: zShape, layers }, file);
    config.img_size = out[1];
    if (out[1] !== out[2]) throw new CheckpointError(file, `the layers give a ${out[1]}×${out[2]} image; only square images are served`);
  }
  const parsed = validated(config, file);
  checkTensors(sd, parsed.layers, file, tried);
  return { config: { ...config, ...parsed }, missing, notes };
}

/** The Sequential's prefix ("main.", "model." or "" for a bare nn.Sequential), from the first name. */
function sequentialPrefix(keys: string[], root: string): string | undefined {
  const m = new RegExp(`^(${root.replace(".", "\\.")}(?:${MAIN}\\.|${MODEL}\\.)?)\\d+\\.[a-z_]+$`).exec(keys[0]);
  return m?.[1];
}

/** BatchNorm without running statistics cannot run in eval mode, which is how a generator is served. */
const missingStats = (file: string, key: string) =>
  new CheckpointError(
    file,
    `BatchNorm ${key} has no running statistics (${RUNNING_MEAN}, ${RUNNING_VAR}): it was built with track_running_stats=False, and ganserve runs BatchNorm in eval mode on the stored statistics; re-save it from a model that tracks them`,
  );

function parseSequence(sd: StateDict, prefix: string, file: string, fail: (key: string, reason: string) => never): Sequence {
  const groups = new Map<number, Map<string, RawTensor>>();
  for (const [k, t] of sd) {
    if (!k.startsWith(prefix)) continue;
    const m = /^(\d+)\.([a-z_]+)$/.exec(k.slice(prefix.length));
    if (!m) fail(k, `not a ${prefix}<index>.<parameter> name`);
    const index = Number(m![1]);
    if (!groups.has(index)) groups.set(index, new Map());
    groups.get(index)!.set(m![2], t);
  }
  const modules: Module[] = [];
  for (const index of [...groups.keys()].sort((a, b) => a - b)) {
    const p = groups.get(index)!;
    const key = `${prefix}${index}`;
    const w = p.get("weight");
    const other = [...p.keys()].find((n) => n !== "weight" && n !== "bias");
    if (w && (w.shape.length === 2 || w.shape.length === 4) && other === undefined) {
      const b = p.get("bias");
      const out = w.shape.length === 2 ? w.shape[0] : w.shape[1];
      if (b && (b.shape.length !== 1 || b.shape[0] !== out)) fail(`${key}.bias`, `shape [${b.shape}] for ${out} outputs`);
      if (w.shape.length === 2) modules.push({ kind: "linear", key, index, in: w.shape[1], out: w.shape[0], bias: !!b });
      else {
        if (w.shape[2] !== w.shape[3]) fail(`${key}.weight`, `a ${w.shape[2]}×${w.shape[3]} kernel; DCGAN layers use square kernels`);
        // ConvTranspose2d stores [in, out, k, k].
        modules.push({ kind: "conv_transpose2d", key, index, in: w.shape[0], out: w.shape[1], kernel: w.shape[2], bias: !!b });
      }
      continue;
    }
    const bnLike = [...p.keys()].every((n) => BN_PARAMS.has(n)) && [...p].every(([n, t]) => t.shape.length === (n === NUM_BATCHES_TRACKED ? 0 : 1));
    if (!bnLike) {
      const name = other ?? "weight";
      const t = p.get(name)!;
      fail(`${key}.${name}`, `a [${t.shape}] tensor that is not a Linear, ConvTranspose2d or BatchNorm parameter`);
    }
    const mean = p.get(RUNNING_MEAN);
    if (!mean || !p.has(RUNNING_VAR)) throw missingStats(file, key);
    const features = mean.shape[0];
    for (const [n, t] of p) if (t.shape.length === 1 && t.shape[0] !== features) fail(`${key}.${n}`, `${t.shape[0]} values, ${RUNNING_MEAN} has ${features}`);
    modules.push({ kind: "batch_norm", key, index, features, affine: p.has("weight") });
  }
  return { prefix, modules };
}

/**
 * Stride, padding and output_padding of a ConvTranspose2d, which its weight does not store. The tutorials' first
 * layer of an all-convolution stack turns 1×1 into k×k (stride 1, padding 0); every other layer doubles the size,
 * which for their 4×4 kernels is stride 2, padding 1. Other kernels are a guess that doubles the size too.
 */
function convGeometry(kernel: number, fromPoint: boolean): [stride: number, padding: number, outputPadding: number, guessed: boolean] {
  if (fromPoint) return [1, 0, 0, false];
  if (kernel === 4) return [2, 1, 0, false];
  return kernel % 2 === 0 ? [2, (kernel - 2) / 2, 0, true] : [2, (kernel - 1) / 2, 1, true];
}

/** nc and size of an MLP's output vector: hints, else a square grayscale or RGB image. */
function imageOf(features: number, hints: Record<string, unknown>, file: string): [number, number] {
  const nc = hints.nc as number | undefined;
  const size = hints.img_size as number | undefined;
  if (nc !== undefined || size !== undefined) {
    const c = nc ?? features / (size! * size!);
    const s = size ?? Math.round(Math.sqrt(features / c));
    if (c * s * s !== features) throw new CheckpointError(file, `the last Linear gives ${features} values, not nc ${c} × ${s} × ${s}`);
    return [c, s];
  }
  for (const c of [1, 3]) {
    const s = Math.round(Math.sqrt(features / c));
    if (c * s * s === features) return [c, s];
  }
  throw new CheckpointError(file, `the last Linear gives ${features} values, which is not a square grayscale or RGB image; pass nc and img_size`);
}

function walkedOutput(config: { z_shape: number[]; layers: DcganLayer[] }, file: string): number[] {
  const walked = walkShapes(config.layers, config.z_shape);
  if ("error" in walked) throw new CheckpointError(file, walked.error);
  return walked.shapes.at(-1) ?? [];
}

function validated(config: Record<string, unknown>, file: string): DcganConfig {
  try {
    return parseDcganConfig(config);
  } catch (e) {
    throw new CheckpointError(file, e instanceof Error ? e.message : String(e));
  }
}

/** The tensors a layer list loads, with shapes; num_batches_tracked is optional (torch < 0.4.1 has none). */
export function dcganTensors(layers: readonly DcganLayer[]): Map<string, { shape: number[]; optional?: boolean }> {
  const out = new Map<string, { shape: number[]; optional?: boolean }>();
  for (const l of layers) {
    if (l.op === "linear") {
      out.set(`${l.key}.weight`, { shape: [l.out, l.in] });
      if (l.bias) out.set(`${l.key}.bias`, { shape: [l.out] });
    } else if (l.op === "conv_transpose2d") {
      out.set(`${l.key}.weight`, { shape: [l.in, l.out, l.kernel, l.kernel] });
      if (l.bias) out.set(`${l.key}.bias`, { shape: [l.out] });
    } else if (l.op === "batch_norm") {
      if (l.affine) {
        out.set(`${l.key}.weight`, { shape: [l.features] });
        out.set(`${l.key}.bias`, { shape: [l.features] });
      }
      out.set(`${l.key}.${RUNNING_MEAN}`, { shape: [l.features] });
      out.set(`${l.key}.${RUNNING_VAR}`, { shape: [l.features] });
      out.set(`${l.key}.${NUM_BATCHES_TRACKED}`, { shape: [], optional: true });
    }
  }
  return out;
}

/** Every tensor of the state_dict is one the layers load, with the shape they need, and none is absent. */
function checkTensors(sd: StateDict, layers: readonly DcganLayer[], file: string, tried: DcganLayout[]): void {
  const want = dcganTensors(layers);
  for (const [k, t] of sd) {
    const w = want.get(k);
    if (!w) throw new DcganLayoutError(file, k, "the layers load no tensor of that name", tried);
    if (w.shape.length !== t.shape.length || w.shape.some((d, i) => d !== t.shape[i]))
      throw new DcganLayoutError(file, k, `shape [${t.shape}], the layers need [${w.shape}]`, tried);
  }
  for (const [k, w] of want) {
    if (w.optional || sd.has(k)) continue;
    if (k.endsWith(`.${RUNNING_MEAN}`) || k.endsWith(`.${RUNNING_VAR}`)) throw missingStats(file, k.slice(0, k.lastIndexOf(".")));
    throw new CheckpointError(file, `missing tensor ${k} [${w.shape}]`);
  }
}

/** `layers` given in full (`--config`): validated against the state_dict instead of inferred. */
function fromHintedLayers(sd: StateDict, hints: Record<string, unknown>, file: string, notes: string[]): Inference {
  const parsedLayers = z.array(DcganLayerSchema).safeParse(hints.layers);
  if (!parsedLayers.success) throw new CheckpointError(file, `layers: ${z.prettifyError(parsedLayers.error)}`);
  const layers = parsedLayers.data;
  const firstWeighted = layers.find((l) => l.op === "linear" || l.op === "conv_transpose2d") as { op: string; in: number } | undefined;
  const hasConv = layers.some((l) => l.op === "conv_transpose2d");
  const layout = (hints.layout as DcganLayout | undefined) ?? (firstWeighted?.op === "linear" ? (hasConv ? "fc_deconv" : "mlp") : "main");
  const nz = firstWeighted?.in ?? 0;
  const partial = { layout, z_shape: layout === "main" ? [nz, 1, 1] : [nz], seed_rng: hints.seed_rng ?? "torch", layers };
  const out = walkedOutput(partial, file);
  const config = validated({ ...partial, nc: out[0], img_size: out[1] }, file);
  checkTensors(sd, config.layers, file, [layout]);
  notes.push("layers taken from the config as given");
  return { config: { ...config }, missing: [], notes };
}
