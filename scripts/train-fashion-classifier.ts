/**
 * `npm run train:classifier`: trains the Fashion-MNIST feature network of the StyleGAN2 demo's domain FID and
 * writes models/_eval/fashion-classifier.safetensors (with its test accuracy in the metadata).
 * Usage: train-fashion-classifier.ts [--per-class N] [--epochs N] [--fashion-dir DIR]
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadFashionSplit, balancedIndices, fashionToRgb32 } from "../packages/core/src/demo/fashion.ts";
import { findFashionMnist } from "../packages/core/src/demo/sources.ts";
import { initBackend } from "../packages/core/src/engine/backend.ts";
import { enableTraining } from "../packages/core/src/engine/gradients.ts";
import { accuracy, CLASSIFIER_INPUT, trainClassifier } from "../packages/core/src/eval/fashion-classifier.ts";
import { ensureFashionMnist } from "./demo-data.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { "per-class": { type: "string" }, epochs: { type: "string" }, "fashion-dir": { type: "string" } } });
const perClass = Number(values["per-class"] ?? 2000);
const epochs = Number(values.epochs ?? 2);

function asGray(split: ReturnType<typeof loadFashionSplit>, indices: number[]) {
  const px = CLASSIFIER_INPUT * CLASSIFIER_INPUT;
  const x = new Float32Array(indices.length * px);
  const y = new Uint8Array(indices.length);
  indices.forEach((idx, k) => {
    const img = fashionToRgb32(split, idx);
    for (let i = 0; i < px; i++) x[k * px + i] = img.data[i * 3] / 255;
    y[k] = split.labels[idx];
  });
  return { x, y };
}

const backend = await initBackend();
enableTraining();
const files = values["fashion-dir"] ? findFashionMnist(values["fashion-dir"]) : ensureFashionMnist();
const train = loadFashionSplit("train", files);
const test = loadFashionSplit("test", files);
const tr = asGray(train, balancedIndices(train.labels, perClass));
const te = asGray(test, balancedIndices(test.labels, 1000));
const t0 = performance.now();
const clf = trainClassifier(tr.x, tr.y, { epochs, batch: 64, lr: 2e-3, seed: 1, onEpoch: (e, l) => console.log(`epoch ${e + 1}/${epochs}: loss ${l.toFixed(4)}`) });
const seconds = (performance.now() - t0) / 1000;
const acc = accuracy(clf, te.x, te.y);
console.log(`test accuracy ${(acc * 100).toFixed(2)}% on ${te.y.length} images; ${seconds.toFixed(0)} s on ${backend}`);
const out = path.join(root, "models/_eval/fashion-classifier.safetensors");
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(
  out,
  clf.toSafetensors({
    purpose: "Fashion-MNIST domain FID features (penultimate layer, 128-d); not Inception",
    dataset: `Fashion-MNIST train, first ${perClass} per class, padded to 32x32`,
    epochs: String(epochs),
    test_accuracy: acc.toFixed(4),
    license: "MIT (Fashion-MNIST, Zalando SE)",
  }),
);
console.log(`wrote ${path.relative(root, out)}`);
