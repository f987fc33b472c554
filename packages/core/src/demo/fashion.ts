/**
 * Fashion-MNIST as a class-conditional StyleGAN2 dataset: 28×28 grayscale padded to 32×32 (StyleGAN2 needs a
 * power of two; padding keeps the garments' scale, where resizing would blur them) and replicated to RGB.
 * Class folders carry their index as a prefix because the dataset indexer sorts class names, and the model's
 * class ids must stay the official label numbers.
 */
import fs from "node:fs";
import { buildDatasetZip, type DatasetFile } from "../datasets/build.ts";
import { encodeRgb } from "../images/codec.ts";
import { readIdx } from "./idx.ts";
import { findFashionMnist, type FashionMnistFiles } from "./sources.ts";

export const FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"] as const;
/** Folder names: sorted order equals label order. */
export const FASHION_FOLDERS = FASHION_CLASSES.map((c, i) => `${i}-${c.toLowerCase().replace(/[^a-z]+/g, "-")}`);
export const FASHION_SIZE = 32;
const PAD = (FASHION_SIZE - 28) / 2;

export interface FashionSplit {
  /** N×28×28 uint8, white garment on black as distributed */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export function loadFashionSplit(split: "train" | "test", files: FashionMnistFiles = findFashionMnist()): FashionSplit {
  const img = readIdx(fs.readFileSync(split === "train" ? files.trainImages : files.testImages), split === "train" ? files.trainImages : files.testImages);
  const lab = readIdx(fs.readFileSync(split === "train" ? files.trainLabels : files.testLabels), split === "train" ? files.trainLabels : files.testLabels);
  if (img.shape.length !== 3 || img.shape[1] !== 28 || img.shape[2] !== 28) throw new Error(`Fashion-MNIST images have shape [${img.shape}]; expected [N, 28, 28]`);
  if (lab.shape.length !== 1 || lab.shape[0] !== img.shape[0]) throw new Error(`Fashion-MNIST labels [${lab.shape}] do not match images [${img.shape}]`);
  return { images: img.data as Uint8Array, labels: lab.data as Uint8Array, count: img.shape[0] };
}

/** One 28×28 sample → 32×32 HWC RGB. */
export function fashionToRgb32(split: FashionSplit, index: number): { data: Uint8Array; width: number; height: number } {
  const out = new Uint8Array(FASHION_SIZE * FASHION_SIZE * 3);
  const src = split.images.subarray(index * 784, (index + 1) * 784);
  for (let y = 0; y < 28; y++)
    for (let x = 0; x < 28; x++) {
      const v = src[y * 28 + x];
      const o = ((y + PAD) * FASHION_SIZE + x + PAD) * 3;
      out[o] = out[o + 1] = out[o + 2] = v;
    }
  return { data: out, width: FASHION_SIZE, height: FASHION_SIZE };
}

/** Indices of the first `perClass` samples of each class, in file order (deterministic, class-balanced). */
export function balancedIndices(labels: Uint8Array, perClass: number, classes = 10): number[] {
  const taken = new Array<number>(classes).fill(0);
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c < classes && taken[c] < perClass) {
      taken[c]++;
      out.push(i);
    }
  }
  return out;
}

export interface FashionDatasetOptions {
  split: "train" | "test";
  perClass: number;
  /** defaults to the Debian package's files */
  files?: FashionMnistFiles;
}

/** A stylegan2-layout zip: images/<index>-<class>/<split>-<n>.png. */
export async function buildFashionDataset(opts: FashionDatasetOptions): Promise<{ zip: Uint8Array; count: number }> {
  const split = loadFashionSplit(opts.split, opts.files);
  const files: DatasetFile[] = [];
  for (const i of balancedIndices(split.labels, opts.perClass)) {
    const png = await encodeRgb(fashionToRgb32(split, i), "png");
    files.push({ path: `images/${FASHION_FOLDERS[split.labels[i]]}/${opts.split}-${String(i).padStart(5, "0")}.png`, bytes: png });
  }
  return { zip: buildDatasetZip(files), count: files.length };
}
