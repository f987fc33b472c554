/** `createTrainer(family, init)`: the fine-tune worker's single entry point to the per-family trainers. */
import { createCycleGANTrainer } from "./cyclegan/index.ts";
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
  }
}

export type { StepResult, Trainer, TrainerInit, TrainerOptions, TrainImage, TrainingData } from "./types.ts";
