export { colorizeLabels, createSpadeTrainer, SpadeTrainer, type SpadeTrainOptions } from "./trainer.ts";
