/**
 * Reads the generator options back from a bare state_dict, for checkpoints that arrive without their training
 * options (`latest_net_G_A.pth` alone). Everything that changes parameters is recoverable; U-Net dropout is not
 * (it has no parameters and no effect in eval), so it is reported as false.
 */
import type { Inference } from "../../checkpoints/infer-common.ts";
import { CheckpointError, type StateDict } from "../../checkpoints/tensor.ts";
import type { CycleGANConfig, NetG } from "./config.ts";

export type InferredCycleGANConfig = Omit<CycleGANConfig, "init_gain">;

export function inferCycleGANConfig(sd: StateDict): InferredCycleGANConfig {
  const shape = (k: string) => sd.get(k)?.shape;
  if (shape("model.model.0.weight")) return inferUnet(sd);
  if (shape("model.1.weight")) return inferResnet(sd);
  throw new Error("not a pix2pix/CycleGAN generator state_dict (no model.1.weight or model.model.0.weight)");
}

function inferResnet(sd: StateDict): InferredCycleGANConfig {
  const stem = sd.get("model.1.weight")!.shape;
  const blocks = new Set<number>();
  for (const k of sd.keys()) {
    const m = /^model\.(\d+)\.conv_block\./.exec(k);
    if (m) blocks.add(Number(m[1]));
  }
  const nBlocks = blocks.size;
  const netG: NetG | undefined = nBlocks === 6 ? "resnet_6blocks" : nBlocks === 9 ? "resnet_9blocks" : undefined;
  if (!netG) throw new Error(`ResnetGenerator with ${nBlocks} blocks: only 6 and 9 (define_G's resnet_6blocks/resnet_9blocks) are supported`);
  // Layout after the blocks: up, norm, relu, up, norm, relu, pad, conv.
  const head = sd.get(`model.${10 + nBlocks + 7}.weight`)?.shape;
  if (!head) throw new Error(`ResnetGenerator: missing final conv model.${10 + nBlocks + 7}.weight`);
  const dropoutConv = sd.get("model.10.conv_block.6.weight")?.shape.length === 4;
  return { input_nc: stem[1], output_nc: head[0], ngf: stem[0], netG, norm: normOf(sd, "model.1.bias", "model.2.weight"), use_dropout: dropoutConv };
}

function inferUnet(sd: StateDict): InferredCycleGANConfig {
  const first = sd.get("model.model.0.weight")!.shape;
  const last = sd.get("model.model.3.weight")?.shape;
  if (!last) throw new Error("UnetGenerator: missing outermost up-conv model.model.3.weight");
  let depth = 1;
  let seq = "model.model.1.model";
  while ([...sd.keys()].some((k) => k.startsWith(`${seq}.3.model.`))) {
    depth++;
    seq += ".3.model";
  }
  const numDowns = depth + 1; // the innermost block has no child
  const netG: NetG | undefined = numDowns === 7 ? "unet_128" : numDowns === 8 ? "unet_256" : undefined;
  if (!netG) throw new Error(`UnetGenerator with num_downs ${numDowns}: only 7 (unet_128) and 8 (unet_256) are supported`);
  return {
    input_nc: first[1],
    output_nc: last[1],
    ngf: first[0],
    netG,
    norm: normOf(sd, "model.model.0.bias", "model.model.1.model.2.weight"),
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
  if (c.norm === "instance" && [...sd.keys()].some((k) => k.endsWith(".running_mean")))
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
