/**
 * CycleGAN/pix2pix define_G arguments from a ResnetGenerator or UnetGenerator state dict. Dropout only shows in
 * resnet blocks (it shifts the second conv's index); init_* never matters for serving.
 */
import type { StateDict } from "./tensor.ts";
import { type Inference, shapeOf } from "./infer-common.ts";

const NORM_LAYERS: Record<string, string> = {
  instance: "InstanceNorm2d(affine=False, track_running_stats=False)",
  batch: "BatchNorm2d(affine=True, track_running_stats=True)",
};

export function inferCycleGAN(sd: StateDict, hints: Record<string, unknown>): Inference {
  const keys = [...sd.keys()];
  return keys.some((k) => k.startsWith("model.model.")) ? unet(sd, keys, hints) : resnet(sd, keys, hints);
}

function resnet(sd: StateDict, keys: string[], hints: Record<string, unknown>): Inference {
  const notes: string[] = [];
  const missing: string[] = [];
  const blocks = [...new Set(keys.map((k) => /^model\.(\d+)\.conv_block\./.exec(k)?.[1]).filter((b) => b))];
  const convIdx = keys.filter((k) => /^model\.\d+\.weight$/.test(k) && sd.get(k)!.shape.length === 4).map((k) => Number(k.split(".")[1]));
  const first = shapeOf(sd, "model.1.weight");
  const last = shapeOf(sd, `model.${Math.max(...convIdx)}.weight`);
  // Affine BatchNorm stores weight; InstanceNorm (affine=False) stores nothing, or only running stats in 2018 checkpoints.
  const norm = sd.has("model.2.weight") ? "batch" : "instance";
  if (norm === "instance" && sd.has("model.2.running_mean"))
    notes.push("InstanceNorm running stats present (2018 checkpoint); ignore them and normalise per instance");
  const useDropout = blocks.length > 0 && sd.get(`model.${blocks[0]}.conv_block.6.weight`)?.shape.length === 4;
  const netG = `resnet_${blocks.length}blocks`;
  if (blocks.length !== 6 && blocks.length !== 9) notes.push(`${netG} is not one of upstream's named options (resnet_6blocks, resnet_9blocks)`);
  return finish(
    {
      input_nc: first?.[1],
      output_nc: last?.[0],
      ngf: first?.[0],
      netG,
      norm,
      use_dropout: useDropout,
      use_bias: sd.has("model.1.bias"),
    },
    hints,
    missing,
    notes,
  );
}

function unet(sd: StateDict, keys: string[], hints: Record<string, unknown>): Inference {
  const notes: string[] = [];
  // Each UnetSkipConnectionBlock adds one "model" (its Sequential) to the key path, plus the generator's own.
  const numDowns = Math.max(...keys.map((k) => k.split(".").filter((t) => t === "model").length)) - 1;
  const down = shapeOf(sd, "model.model.0.weight");
  const up = shapeOf(sd, "model.model.3.weight");
  const netG = `unet_${2 ** numDowns}`;
  if (numDowns !== 7 && numDowns !== 8) notes.push(`${netG} (num_downs ${numDowns}) is not one of upstream's named options (unet_128, unet_256)`);
  const norm = sd.has("model.model.1.model.2.weight") ? "batch" : "instance";
  return finish(
    {
      input_nc: down?.[1],
      // ConvTranspose2d weights are [in, out, k, k].
      output_nc: up?.[1],
      ngf: down?.[0],
      netG,
      norm,
      use_dropout: undefined,
      use_bias: sd.has("model.model.0.bias"),
    },
    hints,
    // Unet dropout sits after the up-conv, leaves indices unchanged and is inert in eval: nothing to ask.
    [],
    notes,
  );
}

function finish(inferred: Record<string, unknown>, hints: Record<string, unknown>, missing: string[], notes: string[]): Inference {
  const c = { ...inferred, ...hints };
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
    use_bias: c.use_bias,
  };
  return { config, missing, notes };
}
