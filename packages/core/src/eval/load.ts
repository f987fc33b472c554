/**
 * Model folders as shipped under models/<name>/: the same model.json record and weights.safetensors a
 * registry version holds, checked the same way (schema and SHA-256), so a folder and a published version are
 * interchangeable for evaluation and for registering the demo models.
 */
import fs from "node:fs";
import path from "node:path";
import { ModelJson } from "../models/model-json.ts";
import { sha256 } from "../models/registry.ts";
import { MODEL_RECORD_FILE } from "../storage/keys.ts";
import { FashionClassifier } from "./fashion-classifier.ts";

export interface ModelFiles {
  record: ModelJson;
  weights: Uint8Array;
}

export function loadModelFolder(dir: string): ModelFiles {
  const jsonPath = path.join(dir, MODEL_RECORD_FILE);
  if (!fs.existsSync(jsonPath)) throw new Error(`${dir} has no model.json`);
  const parsed = ModelJson.safeParse(JSON.parse(fs.readFileSync(jsonPath, "utf8")));
  if (!parsed.success) throw new Error(`${jsonPath} is not a valid model record: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const weights = new Uint8Array(fs.readFileSync(path.join(dir, parsed.data.weights.file)));
  if (sha256(weights) !== parsed.data.weights.sha256) throw new Error(`${dir}/${parsed.data.weights.file} does not match the sha256 in model.json`);
  return { record: parsed.data, weights };
}

/** models/_eval/fashion-classifier.safetensors relative to a repository (or any) root. */
export const CLASSIFIER_RELATIVE_PATH = path.join("models", "_eval", "fashion-classifier.safetensors");

export function loadFashionClassifier(file: string): FashionClassifier {
  if (!fs.existsSync(file)) throw new Error(`the Fashion-MNIST feature network ${file} is missing; train it with npm run train:classifier`);
  return FashionClassifier.fromSafetensors(new Uint8Array(fs.readFileSync(file)), file);
}
