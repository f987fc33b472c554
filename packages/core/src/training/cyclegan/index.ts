export { createCycleGANTrainer, cycleGanLoadSize, CycleGANTrainer, type CycleGANTrainOptions } from "./trainer.ts";
