/**
 * Reads the generator options back from a bare state_dict, for checkpoints that arrive without their training
 * options (`latest_net_G_A.pth` alone). Everything that changes parameters is recoverable; U-Net dropout is not
 * (it has no parameters and no effect in eval), so it is reported as false.
 */
import type { Inference } from "../../checkpoints/infer-common.ts";
import { CheckpointError, type StateDict } from "../../checkpoints/tensor.ts";
import type { CycleGANConfig, NetG } from "./config.ts";
import { RUNNING_MEAN } from "../common/norm.ts";
import { MODEL } from "./layers.ts";
import { resnetKeys } from "./resnet.ts";
import { unetKeys } from "./unet.ts";

const weight = (layer: string) => `${layer}.weight`;
const bias = (layer: string) => `${layer}.bias`;
/** The U-Net's outermost down-conv and up-conv (Sequential indices 0 and 3), and the next level's Sequential. */
const UNET_DOWN = unetKeys.layer(unetKeys.root, 0);
const UNET_UP = unetKeys.layer(unetKeys.root, 3);
const UNET_SECOND = unetKeys.child(unetKeys.root, true);

const LINEAR_WEIGHT = new RegExp(`^${MODEL}\\.\\d+\\.weight$`);

/**
 * Whether every key lies under the generators' `model` Sequential, and if so whether it holds a Linear (a rank-2
 * `model.<i>.weight`): CycleGAN generators are all convolutions, so that makes it some other `model` Sequential.
 */
export function cycleganNamespace(sd: StateDict): "conv" | "linear" | undefined {
  const keys = [...sd.keys()];
  if (!keys.length || !keys.every((k) => k.startsWith(`${MODEL}.`))) return undefined;
  return [...sd].some(([k, t]) => LINEAR_WEIGHT.test(k) && t.shape.length === 2) ? "linear" : "conv";
}

export type InferredCycleGANConfig = Omit<CycleGANConfig, "init_gain">;

export function inferCycleGANConfig(sd: StateDict): InferredCycleGANConfig {
  const shape = (k: string) => sd.get(k)?.shape;
  if (shape(weight(UNET_DOWN))) return inferUnet(sd);
  if (shape(weight(resnetKeys.stemConv))) return inferResnet(sd);
  throw new Error(`not a pix2pix/CycleGAN generator state_dict (no ${weight(resnetKeys.stemConv)} or ${weight(UNET_DOWN)})`);
}

function inferResnet(sd: StateDict): InferredCycleGANConfig {
  const stem = sd.get(weight(resnetKeys.stemConv))!.shape;
  const blocks = new Set<number>();
  for (const k of sd.keys()) {
    const i = resnetKeys.blockIndex(k);
    if (i !== undefined) blocks.add(i);
  }
  const nBlocks = blocks.size;
  const netG: NetG | undefined = nBlocks === 6 ? "resnet_6blocks" : nBlocks === 9 ? "resnet_9blocks" : undefined;
  if (!netG) throw new Error(`ResnetGenerator with ${nBlocks} blocks: only 6 and 9 (define_G's resnet_6blocks/resnet_9blocks) are supported`);
  // Layout after the blocks: up, norm, relu, up, norm, relu, pad, conv.
  const headKey = weight(resnetKeys.headConv(nBlocks));
  const head = sd.get(headKey)?.shape;
  if (!head) throw new Error(`ResnetGenerator: missing final conv ${headKey}`);
  const dropoutConv = sd.get(weight(resnetKeys.blockLayer(resnetKeys.firstBlock, 6)))?.shape.length === 4;
  const norm = normOf(sd, bias(resnetKeys.stemConv), weight(resnetKeys.stemNorm));
  return { input_nc: stem[1], output_nc: head[0], ngf: stem[0], netG, norm, use_dropout: dropoutConv };
}

function inferUnet(sd: StateDict): InferredCycleGANConfig {
  const first = sd.get(weight(UNET_DOWN))!.shape;
  const last = sd.get(weight(UNET_UP))?.shape;
  if (!last) throw new Error(`UnetGenerator: missing outermost up-conv ${weight(UNET_UP)}`);
  let depth = 1;
  let seq = UNET_SECOND;
  for (let next = unetKeys.child(seq, false); [...sd.keys()].some((k) => k.startsWith(`${next}.`)); next = unetKeys.child(seq, false)) {
    depth++;
    seq = next;
  }
  const numDowns = depth + 1; // the innermost block has no child
  const netG: NetG | undefined = numDowns === 7 ? "unet_128" : numDowns === 8 ? "unet_256" : undefined;
  if (!netG) throw new Error(`UnetGenerator with num_downs ${numDowns}: only 7 (unet_128) and 8 (unet_256) are supported`);
  return {
    input_nc: first[1],
    output_nc: last[1],
    ngf: first[0],
    netG,
    norm: normOf(sd, bias(UNET_DOWN), weight(unetKeys.layer(UNET_SECOND, 2))),
    use_dropout: false,
  };
}

/** Batch norm has affine weights; otherwise convs carry a bias only under instance norm (upstream's use_bias). */
function normOf(sd: StateDict, firstConvBias: string, firstNormWeight: string): CycleGANConfig["norm"] {
  if (sd.has(firstNormWeight)) return "batch";
  return sd.has(firstConvBias) ? "instance" : "none";
}

const NORM_LAYERS: Record<string, string> = {
  instance: "InstanceNorm2d(affine=False, track_running_stats=False)",
  batch: "BatchNorm2d(affine=True, track_running_stats=True)",
};

/**
 * For imports (networks/infer.ts): define_G's arguments as upstream's options (the manifests' `config`), from the
 * reader above plus hints; init_* never matters for serving. Upstream ties use_bias to the norm (instance only).
 */
export function inferCycleGAN(sd: StateDict, hints: Record<string, unknown>, file = "checkpoint"): Inference {
  let inferred: InferredCycleGANConfig;
  try {
    inferred = inferCycleGANConfig(sd);
  } catch (e) {
    throw new CheckpointError(file, (e as Error).message);
  }
  const c: Record<string, unknown> = { ...inferred, ...hints };
  const notes: string[] = [];
  if (c.norm === "instance" && [...sd.keys()].some((k) => k.endsWith(`.${RUNNING_MEAN}`)))
    notes.push("InstanceNorm running stats present (2018 checkpoint); ignore them and normalise per instance");
  const useDropout = (c.use_dropout as boolean | undefined) ?? false;
  const config = {
    input_nc: c.input_nc,
    output_nc: c.output_nc,
    ngf: c.ngf,
    netG: c.netG,
    norm: c.norm,
    use_dropout: useDropout,
    no_dropout: !useDropout,
    init_type: c.init_type ?? "normal",
    init_gain: c.init_gain ?? 0.02,
    norm_layer: NORM_LAYERS[c.norm as string],
    use_bias: c.use_bias ?? c.norm === "instance",
  };
  return { config, missing: [], notes };
}
