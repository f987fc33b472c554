/**
 * Contract between the fine-tune worker (jobs, storage, checkpoints, events) and the per-family trainers
 * (networks, losses, optimisers). The worker owns I/O; a trainer owns tensors.
 *
 * Resumability: every source of randomness in step `k` (batch indices, augmentation, noise, image-pool
 * choices) must be a pure function of (seed, k) plus the state returned by `saveState`, so a worker that
 * restarts from a checkpoint at step k continues exactly as if it had never stopped.
 */
import type { StateDict } from "../checkpoints/tensor.ts";
import type { ModelFamily } from "../families.ts";

/** Decoded training images: HWC uint8 RGB at the training resolution. */
export interface TrainImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type TrainingData =
  | { family: "stylegan2"; images: TrainImage[]; /** class index per image when the dataset has classes */ labels?: number[]; classes?: string[] }
  | { family: "cyclegan"; A: TrainImage[]; B: TrainImage[] }
  | { family: "spade"; images: TrainImage[]; /** class-id maps, same size as images, row-major */ labels: Int32Array[] }
  | { family: "dcgan"; images: TrainImage[] };

export interface TrainerOptions {
  steps: number;
  batch_size: number;
  learning_rate: number;
  seed: number;
  /** per-family options, see CreateFineTuneRequest.options */
  options: Record<string, unknown>;
}

export interface StepResult {
  step: number;
  losses: Record<string, number>;
}

export interface Trainer {
  readonly family: ModelFamily;
  /** Steps completed so far (0 for a fresh trainer; restored by loadState). */
  readonly step: number;
  /** Runs one optimisation step (generator and discriminator updates) and returns the loss terms. */
  trainStep(): Promise<StepResult>;
  /** Everything needed to resume: G, D, G_ema, optimiser moments, image pool, step. Official names where they exist. */
  saveState(): StateDict;
  loadState(state: StateDict): void;
  /** The generator to publish, in the native weights layout the serving engines read, and its upstream config. */
  exportGenerator(): { config: Record<string, unknown>; weights: StateDict };
  /** A deterministic grid of sample outputs (fixed seeds / held inputs) as HWC uint8 RGB. */
  sampleGrid(): Promise<TrainImage>;
  dispose(): void;
}

/** Built by `createTrainer(family, ...)` in ./index.ts. */
export interface TrainerInit {
  /** upstream config of the base model (model.json `config`) */
  config: Record<string, unknown>;
  /** the base model's weights in the native layout (see inference/engines/tfjs.ts) */
  weights: StateDict;
  data: TrainingData;
  options: TrainerOptions;
}
