import type { ModelInfo } from "./api.ts";

/** The two pages that run a model: StyleGAN2 and DCGAN generate from seeds, CycleGAN and SPADE translate an input. */
export type ModelPage = "generate" | "translate";

export const pageFor = (family: ModelInfo["family"]): ModelPage => (family === "stylegan2" || family === "dcgan" ? "generate" : "translate");

/** Dataset zip folders per family, as the fine-tune form shows them (the API's DatasetLayout describes the same). */
export const DATASET_FOLDERS: Record<ModelInfo["family"], string> = {
  stylegan2: "images/",
  cyclegan: "trainA/ + trainB/",
  spade: "images/ + labels/",
  dcgan: "images/ (class folders pooled)",
};
