/**
 * The demo models' recipes: base architecture (small enough to train from a fresh random init on two CPU
 * cores in minutes to a few hours with the wasm backend, and to ship all four under 20 MB),
 * fine-tune parameters in the API's own request shape, and what the shipped model.json says about the data.
 */
import type { CreateFineTuneRequest } from "../api/finetune.ts";
import type { StateDict } from "../checkpoints/tensor.ts";
import type { ModelFamily } from "../families.ts";
import type { ModelJson } from "../models/model-json.ts";
import { CycleGANModel } from "../networks/cyclegan/index.ts";
import { mainLayoutConfig } from "../networks/dcgan/config.ts";
import { DcganGenerator } from "../networks/dcgan/generator.ts";
import { SpadeGenerator } from "../networks/spade/index.ts";
import { StyleGAN2Generator } from "../networks/stylegan2/index.ts";
/** Emoji are trained at 32 px: at 64 px one CycleGAN step took ~17 s on a shared 2-core wasm machine. */
export const EMOJI_TRAIN_SIZE = 32;
import { FASHION_CLASSES, FASHION_SIZE } from "./fashion.ts";
import { SCENE_CLASSES, SCENE_LABEL_NC } from "./scenes.ts";

export type DemoFamily = ModelFamily;

export interface DemoRecipe {
  family: DemoFamily;
  /** name under models/ and in the registry */
  name: string;
  description: string;
  config: Record<string, unknown>;
  /** fine-tune request minus base_model/dataset/name */
  train: Omit<CreateFineTuneRequest, "base_model" | "dataset" | "name" | "version" | "webhook">;
  /** further fine-tunes, each from the previous stage's result (fresh optimizer and LR schedule) */
  then?: { steps: number; learning_rate: number }[];
  extra: Partial<Pick<ModelJson, "classes" | "class_names" | "domains">>;
  license: string;
  dataset: string;
}

export const DEMO_RECIPES: Record<DemoFamily, DemoRecipe> = {
  stylegan2: {
    family: "stylegan2",
    name: "fashion-stylegan2",
    description: "Class-conditional StyleGAN2 on Fashion-MNIST (32×32, 10 classes), trained from scratch by ganserve's fine-tune worker",
    config: {
      z_dim: 64,
      w_dim: 64,
      c_dim: 10,
      img_resolution: FASHION_SIZE,
      img_channels: 3,
      mapping_kwargs: { num_layers: 2 },
      // channel_max 32: a batch-8 step takes ~0.35 s on one otherwise idle core (wasm); the shipped 12 000
      // steps took 101 minutes on cores shared with the other demos' runs.
      synthesis_kwargs: { channel_base: 1024, channel_max: 32, num_fp16_res: 0, conv_clamp: 256 },
    },
    train: { steps: 3000, batch_size: 8, learning_rate: 0.0025, seed: 1, options: { augment: false, ema_rampup: 0.05, style_mixing_prob: 0, mirror: false } },
    // biome-ignore lint/suspicious/noThenProperty: the recipe's later stages, as model.json records them; an array, never a thenable.
    then: [
      { steps: 4000, learning_rate: 0.0025 },
      { steps: 5000, learning_rate: 0.0025 },
    ],
    extra: { class_names: [...FASHION_CLASSES] },
    license: "Training data: Fashion-MNIST © 2017 Zalando SE, MIT licence (Debian package dataset-fashion-mnist)",
    dataset: "Fashion-MNIST train split (Debian dataset-fashion-mnist), padded 28→32, gray→RGB, class folders 0-9",
  },
  cyclegan: {
    family: "cyclegan",
    name: "emoji-cyclegan",
    description: "CycleGAN Google (Noto) ↔ Twitter (Twemoji) emoji style, 32×32, trained unpaired by ganserve's fine-tune worker",
    config: {
      input_nc: 3,
      output_nc: 3,
      ngf: 8,
      netG: "resnet_6blocks",
      norm: "instance",
      no_dropout: true,
      load_size: EMOJI_TRAIN_SIZE,
      crop_size: EMOJI_TRAIN_SIZE,
    },
    // A 2-layer PatchGAN (receptive field 34 px, about the whole 32 px image); each stage continues the previous
    // one's result and decays its LR to 0 over its second half. Held-out L1 and SSIM by stage: docs/demo-models.md.
    train: { steps: 6000, batch_size: 1, learning_rate: 0.0002, seed: 1, options: { lambda_cycle: 10, lambda_identity: 5, pool_size: 50, ndf: 16, load_size: EMOJI_TRAIN_SIZE, n_layers_D: 2 } },
    // biome-ignore lint/suspicious/noThenProperty: the recipe's later stages, as model.json records them; an array, never a thenable.
    then: [
      { steps: 6000, learning_rate: 0.0002 },
      { steps: 20000, learning_rate: 0.0002 },
      { steps: 15000, learning_rate: 0.0002 },
    ],
    extra: { domains: { A: "google-emoji", B: "twitter-emoji" } },
    license:
      "Training data: Noto Emoji images © Google, Apache License 2.0 (npm emoji-datasource-google@16.0.0); Twemoji graphics © Twitter/X and contributors, CC-BY 4.0 (npm emoji-datasource-twitter@16.0.0)",
    dataset: "emoji-datasource-google / emoji-datasource-twitter 16.0.0, img/<set>/64 downscaled to 32, base emoji drawn by both sets, composited on white; 1 in 10 held out by name hash",
  },
  spade: {
    family: "spade",
    name: "scenes-spade",
    description: "SPADE on ganserve's procedural outdoor scenes (64×64, 8 classes; ngf 8: ngf 16 / batch 4 took ~17 s per step on two shared cores), trained from scratch by ganserve's fine-tune worker",
    config: {
      label_nc: SCENE_LABEL_NC,
      contain_dontcare_label: false,
      no_instance: true,
      ngf: 8,
      norm_G: "spectralspadeinstance3x3",
      num_upsampling_layers: "normal",
      crop_size: 64,
      aspect_ratio: 1,
      use_vae: false,
      spade_nhidden: 16,
      init_type: "xavier",
      init_variance: 0.02,
    },
    // pix2pix's L1 term (λ 100) stands in for upstream's VGG loss, whose weights are not available offline.
    // Two stages, as the shipped model was made (docs/demo-models.md, Results); no LR decay (upstream's default).
    train: { steps: 2400, batch_size: 2, learning_rate: 0.0002, seed: 1, options: { num_D: 1, ndf: 16, lambda_feat: 10, lambda_l1: 100 } },
    // biome-ignore lint/suspicious/noThenProperty: the recipe's later stages, as model.json records them; an array, never a thenable.
    then: [{ steps: 2000, learning_rate: 0.0002 }],
    extra: { classes: SCENE_CLASSES.map((c) => ({ ...c })) },
    license: "Training data: procedural scenes generated by ganserve (packages/core/src/demo/scenes.ts), MIT like the project",
    dataset: "ganserve procedural scenes, seed 1, 64×64",
  },
  dcgan: {
    family: "dcgan",
    name: "fashion-dcgan",
    description:
      "DCGAN (pytorch/examples netG, 32×32 grayscale, nz 100, ngf 16) on Fashion-MNIST, trained from scratch by ganserve's fine-tune worker; seeds are torch.manual_seed seeds",
    config: { ...mainLayoutConfig(100, 16, 1, FASHION_SIZE) },
    // pytorch/examples' Adam(2e-4, β1 0.5); batch 32 and ndf 16 (a step took ~0.9 s on a loaded 2-core wasm machine),
    // 1000 steps: about 5 passes over the 6000 images, in the ~15 minutes a demo may take.
    train: { steps: 1000, batch_size: 32, learning_rate: 0.0002, seed: 1, options: { loss: "nonsaturating", ndf: 16 } },
    extra: {},
    license: "Training data: Fashion-MNIST © 2017 Zalando SE, MIT licence (Debian package dataset-fashion-mnist)",
    dataset: "Fashion-MNIST train split (Debian dataset-fashion-mnist), padded 28→32, all classes pooled (unconditional)",
  },
};

/** Fresh random weights in the native layout the serving engines read (see inference/engines/tfjs.ts). */
export function randomBaseWeights(recipe: DemoRecipe, seed: number): StateDict {
  if (recipe.family === "stylegan2") {
    const g = StyleGAN2Generator.randomInit(recipe.config, seed);
    const sd = g.stateDict();
    g.dispose();
    return sd;
  }
  if (recipe.family === "cyclegan") {
    const m = CycleGANModel.randomInit(recipe.config, seed);
    const { G_A, G_B } = m.stateDicts();
    m.dispose();
    const sd: StateDict = new Map();
    for (const [k, v] of G_A) sd.set(`netG_A.${k}`, v);
    for (const [k, v] of G_B ?? []) sd.set(`netG_B.${k}`, v);
    return sd;
  }
  const g = recipe.family === "dcgan" ? DcganGenerator.randomInit(recipe.config, seed) : SpadeGenerator.randomInit(recipe.config, seed);
  const sd = g.stateDict();
  g.dispose();
  return sd;
}
