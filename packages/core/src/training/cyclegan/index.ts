export { createCycleGANTrainer, CycleGANTrainer, type CycleGANTrainOptions } from "./trainer.ts";
