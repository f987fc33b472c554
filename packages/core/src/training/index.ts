/** `createTrainer(family, init)`: the fine-tune worker's single entry point to the per-family trainers. */
import { parseSpadeConfig } from "../networks/spade/config.ts";
import { parseConfig as parseStyleGAN2Config } from "../networks/stylegan2/config.ts";
import { parseDcganConfig } from "../networks/dcgan/config.ts";
import { createCycleGANTrainer, cycleGanLoadSize } from "./cyclegan/index.ts";
import { createDcganTrainer } from "./dcgan/trainer.ts";
import { createSpadeTrainer } from "./spade/index.ts";
import { createStyleGAN2Trainer } from "./stylegan2/index.ts";
import type { Trainer, TrainerInit } from "./types.ts";

export type TrainerFamily = Trainer["family"];

export function createTrainer(family: TrainerFamily, init: TrainerInit): Trainer {
  if (init.data.family !== family) throw new Error(`a ${family} trainer cannot train on ${init.data.family} data`);
  switch (family) {
    case "stylegan2":
      return createStyleGAN2Trainer(init);
    case "cyclegan":
      return createCycleGANTrainer(init);
    case "spade":
      return createSpadeTrainer(init);
    case "dcgan":
      return createDcganTrainer(init);
  }
}

/**
 * The size the family's trainer brings every training image to (StyleGAN2: img_resolution after a centre
 * crop; CycleGAN: load_size × load_size; SPADE and DCGAN: the generator's output size), so the worker can decode each
 * image straight at it and hold count × this, not the sources' sizes. Undefined when the options do not
 * resolve: the trainer then reports them.
 */
export function trainingImageSize(family: TrainerFamily, init: Pick<TrainerInit, "config" | "options">): { width: number; height: number } | undefined {
  try {
    switch (family) {
      case "stylegan2": {
        const r = parseStyleGAN2Config(init.config).img_resolution;
        return { width: r, height: r };
      }
      case "cyclegan": {
        const s = cycleGanLoadSize(init);
        return { width: s, height: s };
      }
      case "spade": {
        const [height, width] = parseSpadeConfig(init.config).output_hw;
        return { width, height };
      }
      case "dcgan": {
        const s = parseDcganConfig(init.config).img_size;
        return { width: s, height: s };
      }
    }
  } catch {
    return undefined;
  }
}

export type { StepResult, Trainer, TrainerInit, TrainerOptions, TrainImage, TrainingData } from "./types.ts";
