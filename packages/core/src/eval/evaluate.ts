/**
 * Quality numbers for the three families, computed on a serving engine (so what is measured is exactly what
 * the API returns, 8-bit quantisation included):
 *
 * - CycleGAN: L1 and SSIM of G_A(a) against the paired real b, and of the identity baseline (b ≈ a) that a
 *   translator has to beat to be doing anything useful.
 * - SPADE: L1 and SSIM of G(label) against the image the label was rendered with.
 * - StyleGAN2: domain FID and k-NN precision/recall on Fashion-MNIST classifier features, generated images
 *   against a real set.
 * - DCGAN: the same, plus the classifier's confidence (mean top-class probability) on the samples and on the real
 *   set: does the shipped classifier see clothing in them as surely as in real photos of it.
 */
import { floatToUint8, resizeRgb, uint8ToFloat, type RgbImage } from "../images/codec.ts";
import * as tf from "@tensorflow/tfjs-core";
import type { CycleGANEngine, DcganEngine, SpadeEngine, StyleGAN2Engine } from "../inference/engine.ts";
import { samplerZ, seedToZ } from "../random/index.ts";
import { CLASSIFIER_CLASSES, CLASSIFIER_INPUT, extractFeatures, FEATURE_DIM, type FashionClassifier, grayBatch } from "./fashion-classifier.ts";
import { featureStats, frechetDistance } from "./fid.ts";
import { precisionRecall } from "./precision-recall.ts";
import { fromUint8, l1, ssim } from "./ssim.ts";
import { decodeImage, decodeLabels, readZipImages, stem, type ZipImage } from "./zip-images.ts";

export interface PixelScores {
  l1: number;
  ssim: number;
}

export interface CycleGANEvaluation {
  family: "cyclegan";
  pairs: number;
  direction: "AtoB" | "BtoA";
  model: PixelScores;
  identity: PixelScores;
}

export interface SpadeEvaluation {
  family: "spade";
  pairs: number;
  model: PixelScores;
}

export interface StyleGAN2Evaluation {
  family: "stylegan2";
  generated: number;
  real: number;
  /** Fréchet distance on our Fashion-MNIST classifier's features: a domain FID, not Inception FID */
  domain_fid: number;
  precision: number;
  recall: number;
  k: number;
  seed: number;
  /** a 10-class conditional model's samples sorted by the classifier (absent otherwise) */
  classes?: ClassScores;
}

/**
 * Does each class draw its own thing? For samples generated for class c (classes round-robin), the share the
 * classifier assigns to c, and how far apart the classes' mean images are; the same on the real set's class
 * folders (numbered 0 … c_dim−1) as the reference.
 */
export interface ClassScores {
  /** share of samples whose classifier top class is the class they were generated for (chance: 1 / classes) */
  accuracy: number;
  per_class_accuracy: number[];
  /** mean |difference| (0–1) between the mean images of the two closest classes: 0 when two classes draw alike */
  mean_image_min_distance: number;
  closest_classes: [number, number];
  /** the classifier's accuracy on the real images (absent when the real set has no numbered class folders) */
  real_accuracy?: number;
  real_mean_image_min_distance?: number;
}

export interface DcganEvaluation extends Omit<StyleGAN2Evaluation, "family"> {
  family: "dcgan";
  /** the classifier's mean top-class probability on the generated images */
  confidence: number;
  /** the same on the real images: what a generator's confidence is to be read against */
  real_confidence: number;
}

export type Evaluation = CycleGANEvaluation | SpadeEvaluation | StyleGAN2Evaluation | DcganEvaluation;

function accumulate() {
  let sl1 = 0;
  let sssim = 0;
  let n = 0;
  return {
    add(out: RgbImage, target: RgbImage) {
      const a = fromUint8(out);
      const b = fromUint8(target);
      sl1 += l1(a, b);
      sssim += ssim(a, b);
      n++;
    },
    get: (): PixelScores => ({ l1: sl1 / n, ssim: sssim / n }),
  };
}

/** Translation output → the uint8 image the API would have returned. */
function toImages(out: Float32Array, n: number, h: number, w: number, convention: "tanh" | "stylegan2" | "torchvision"): RgbImage[] {
  const px = h * w * 3;
  return Array.from({ length: n }, (_, i) => ({ data: floatToUint8(out.subarray(i * px, (i + 1) * px), convention), width: w, height: h }));
}

function batchFloat(images: readonly RgbImage[]): Float32Array {
  const px = images[0].width * images[0].height * 3;
  const x = new Float32Array(images.length * px);
  for (const [i, img] of images.entries()) x.set(uint8ToFloat(img.data), i * px);
  return x;
}

/**
 * Pairs testA/x with testB/x (trainA/trainB when the zip has no test folders). `direction` AtoB scores
 * G_A(a) against b; BtoA scores G_B(b) against a.
 */
export async function evaluateCycleGAN(
  engine: CycleGANEngine,
  pairedZip: Uint8Array,
  opts: { direction?: "AtoB" | "BtoA"; batch?: number; limit?: number } = {},
): Promise<CycleGANEvaluation> {
  const direction = opts.direction ?? "AtoB";
  const entries = await readZipImages(pairedZip, "cyclegan");
  const useTest = entries.some((e) => e.role === "testA");
  const [ra, rb] = useTest ? ["testA", "testB"] : ["trainA", "trainB"];
  const bByStem = new Map(entries.filter((e) => e.role === rb).map((e) => [stem(e.path), e]));
  const pairs = entries
    .filter((e) => e.role === ra && bByStem.has(stem(e.path)))
    .map((e) => (direction === "AtoB" ? [e, bByStem.get(stem(e.path))!] : [bByStem.get(stem(e.path))!, e]) as [ZipImage, ZipImage])
    .slice(0, opts.limit ?? Infinity);
  if (pairs.length === 0) throw new Error(`no paired images: the zip needs ${ra}/<name> and ${rb}/<name> with the same names`);
  const model = accumulate();
  const identity = accumulate();
  const batch = opts.batch ?? 8;
  for (let i = 0; i < pairs.length; i += batch) {
    const chunk = pairs.slice(i, i + batch);
    const src = await Promise.all(chunk.map(([s]) => decodeImage(s)));
    const dst = await Promise.all(chunk.map(([, d]) => decodeImage(d)));
    const { width: w, height: h } = src[0];
    for (const [k, img] of [...src, ...dst].entries())
      if (img.width !== w || img.height !== h) throw new Error(`${chunk[k % chunk.length][k < src.length ? 0 : 1].path}: all images must be ${w}×${h}`);
    if (w % engine.sizeMultiple || h % engine.sizeMultiple) throw new Error(`image size ${w}×${h} is not a multiple of ${engine.sizeMultiple}`);
    const out = toImages(await engine.forward(direction, batchFloat(src), src.length, h, w), src.length, h, w, "tanh");
    out.forEach((o, k) => {
      model.add(o, dst[k]);
      identity.add(src[k], dst[k]);
    });
  }
  return { family: "cyclegan", pairs: pairs.length, direction, model: model.get(), identity: identity.get() };
}

/** images/<x> rendered from labels/<x>: G(label) is scored against the image. */
export async function evaluateSpade(engine: SpadeEngine, zip: Uint8Array, opts: { seed?: number; batch?: number; limit?: number } = {}): Promise<SpadeEvaluation> {
  const entries = await readZipImages(zip, "spade");
  const labels = new Map(entries.filter((e) => e.role === "labels").map((e) => [stem(e.path), e]));
  const pairs = entries
    .filter((e) => e.role === "images" && labels.has(stem(e.path)))
    .map((e) => [e, labels.get(stem(e.path))!] as const)
    .slice(0, opts.limit ?? Infinity);
  if (pairs.length === 0) throw new Error("no image/label pairs: the zip needs images/<name> and labels/<name>");
  const scores = accumulate();
  const batch = opts.batch ?? 8;
  const { height: h, width: w } = engine;
  for (let i = 0; i < pairs.length; i += batch) {
    const chunk = pairs.slice(i, i + batch);
    const label = new Int32Array(chunk.length * h * w);
    const targets: RgbImage[] = [];
    for (const [k, [img, lab]] of chunk.entries()) {
      const map = decodeLabels(lab);
      if (map.width !== w || map.height !== h) throw new Error(`${lab.path}: label map is ${map.width}×${map.height}; the model takes ${w}×${h}`);
      label.set(map.data, k * h * w);
      const target = await decodeImage(img);
      targets.push(target.width === w && target.height === h ? target : await resizeRgb(target, w, h));
    }
    const out = toImages(await engine.forward(label, null, chunk.length, { seed: opts.seed ?? 0 }), chunk.length, h, w, "tanh");
    for (const [k, o] of out.entries()) scores.add(o, targets[k]);
  }
  return { family: "spade", pairs: pairs.length, model: scores.get() };
}

/**
 * `n` images from seeds seed..seed+n-1 in batches of `batch`: each batch's z rows come from `zOf(seed)`,
 * `render` turns them into uint8 RGB (it gets the index of the batch's first sample), and the result is brought
 * to the classifier's size unless `native`. The one sampling loop of the families scored against a real set.
 */
async function sampleSeeds(
  opts: { seed: number; n: number; batch: number; native?: boolean },
  zDim: number,
  zOf: (seed: number) => Float32Array,
  render: (z: Float32Array, m: number, first: number) => Promise<RgbImage[]>,
): Promise<RgbImage[]> {
  const out: RgbImage[] = [];
  for (let i = 0; i < opts.n; i += opts.batch) {
    const m = Math.min(opts.batch, opts.n - i);
    const z = new Float32Array(m * zDim);
    for (let k = 0; k < m; k++) z.set(zOf(opts.seed + i + k), k * zDim);
    for (const im of await render(z, m, i)) out.push(opts.native ? im : await classifierSize(im));
  }
  return out;
}

/** An image at the classifier's input size (as it is when it already has it). */
async function classifierSize(img: RgbImage): Promise<RgbImage> {
  return img.width === CLASSIFIER_INPUT && img.height === CLASSIFIER_INPUT ? img : resizeRgb(img, CLASSIFIER_INPUT, CLASSIFIER_INPUT);
}

/**
 * `n` images from seeds seed..seed+n-1 (classes round-robin for a conditional model), as uint8 at 32×32, or at
 * the generator's own resolution with `native` (Inception FID resizes them itself).
 */
export async function generateStyleGAN2(
  engine: StyleGAN2Engine,
  opts: { seed: number; n: number; batch?: number; truncation_psi?: number; native?: boolean },
): Promise<RgbImage[]> {
  const render = async (z: Float32Array, m: number, first: number) => {
    let c: Float32Array | null = null;
    if (engine.cDim > 0) {
      c = new Float32Array(m * engine.cDim);
      for (let k = 0; k < m; k++) c[k * engine.cDim + ((first + k) % engine.cDim)] = 1;
    }
    const ws = await engine.mapping(z, c, m, { truncation_psi: opts.truncation_psi ?? 1 });
    const r = engine.resolution;
    return toImages(await engine.synthesis(ws, m, { noise_mode: "const" }), m, r, r, "stylegan2");
  };
  return sampleSeeds({ seed: opts.seed, n: opts.n, batch: opts.batch ?? 16, native: opts.native }, engine.zDim, (s) => seedToZ(s, engine.zDim), render);
}

/** What StyleGAN2 and DCGAN evaluations take: a seed range to sample, the classifier, k, and a cap on the real set. */
interface SampleScoring {
  seed: number;
  n: number;
  classifier: FashionClassifier;
  k?: number;
  limitReal?: number;
}

/**
 * Domain FID and precision/recall (k = 3) of the `sample`d images against the real images of a stylegan2-layout
 * zip (e.g. the Fashion-MNIST test split), on the classifier's penultimate features; the two image sets come
 * back too, for family-specific numbers on them.
 */
async function scoreSamples(realZip: Uint8Array, sample: (seed: number, n: number) => Promise<RgbImage[]>, opts: SampleScoring) {
  const real = await realImages(realZip, opts.limitReal, opts.k ?? 3);
  const fake = await sample(opts.seed, opts.n);
  return { real, fake, scores: { ...domainScores(real, fake, opts.classifier, opts.k ?? 3), seed: opts.seed } };
}

/** A StyleGAN2's samples against a real set: domain FID and precision/recall, and per-class scores when conditional. */
export async function evaluateStyleGAN2(engine: StyleGAN2Engine, realZip: Uint8Array, opts: SampleScoring): Promise<StyleGAN2Evaluation> {
  const { fake, scores } = await scoreSamples(realZip, (seed, n) => generateStyleGAN2(engine, { seed, n }), opts);
  // Class scores read the Fashion-MNIST classifier's 10 classes as the model's: only a 10-class model has them.
  if (engine.cDim !== CLASSIFIER_CLASSES) return { family: "stylegan2", ...scores };
  const generated = classScores(opts.classifier, fake, (i) => i % engine.cDim, engine.cDim);
  const labelled = await labelledRealImages(realZip, engine.cDim, opts.limitReal);
  const real = labelled.images.length ? classScores(opts.classifier, labelled.images, (i) => labelled.labels[i], engine.cDim) : undefined;
  return {
    family: "stylegan2",
    ...scores,
    classes: { ...generated, ...(real ? { real_accuracy: real.accuracy, real_mean_image_min_distance: real.mean_image_min_distance } : {}) },
  };
}

/** The real images in class folders whose name starts with a class number below cDim, with that number. */
async function labelledRealImages(realZip: Uint8Array, cDim: number, limit: number | undefined): Promise<{ images: RgbImage[]; labels: number[] }> {
  const images: RgbImage[] = [];
  const labels: number[] = [];
  for (const e of (await readZipImages(realZip, "stylegan2")).slice(0, limit ?? Infinity)) {
    const n = /^images\/(\d+)(?:[-_].*)?$/.exec(e.role);
    if (!n || Number(n[1]) >= cDim) continue;
    images.push(await classifierSize(await decodeImage(e)));
    labels.push(Number(n[1]));
  }
  return { images, labels };
}

/** The classifier's accuracy on images of known class, and the distance between the two closest class means. */
export function classScores(classifier: FashionClassifier, images: RgbImage[], classOf: (i: number) => number, classes: number) {
  const hits = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  const px = CLASSIFIER_INPUT * CLASSIFIER_INPUT * 3;
  const sums = Array.from({ length: classes }, () => new Float64Array(px));
  for (let i = 0; i < images.length; i += 256) {
    const top = tf.tidy(() => tf.argMax(classifier.logits(grayBatch(images.slice(i, i + 256))), 1));
    const predicted = top.dataSync();
    top.dispose();
    predicted.forEach((p, k) => {
      const c = classOf(i + k);
      counts[c]++;
      if (p === c) hits[c]++;
      const img = images[i + k].data;
      for (let j = 0; j < px; j++) sums[c][j] += img[j];
    });
  }
  let closest: [number, number] = [0, 1];
  let min = Infinity;
  for (let a = 0; a < classes; a++)
    for (let b = a + 1; b < classes; b++) {
      if (!counts[a] || !counts[b]) continue;
      let d = 0;
      for (let j = 0; j < px; j++) d += Math.abs(sums[a][j] / counts[a] - sums[b][j] / counts[b]);
      if (d / px / 255 < min) [min, closest] = [d / px / 255, [a, b]];
    }
  return {
    accuracy: hits.reduce((t, h) => t + h, 0) / images.length,
    per_class_accuracy: hits.map((h, c) => (counts[c] ? h / counts[c] : 0)),
    mean_image_min_distance: min,
    closest_classes: closest,
  };
}

/** The real images of a stylegan2-layout zip (class folders or not), at the classifier's size. */
async function realImages(realZip: Uint8Array, limit: number | undefined, k: number): Promise<RgbImage[]> {
  const entries = (await readZipImages(realZip, "stylegan2")).slice(0, limit ?? Infinity);
  const real: RgbImage[] = [];
  for (const e of entries) real.push(await classifierSize(await decodeImage(e)));
  if (real.length <= k) throw new Error(`the real set has ${real.length} images; need more than ${k}`);
  return real;
}
/** Domain FID and precision/recall (k) of generated against real images, on the classifier's features. */
function domainScores(real: RgbImage[], fake: RgbImage[], classifier: FashionClassifier, k: number) {
  const fr = extractFeatures(classifier, real);
  const ff = extractFeatures(classifier, fake);
  const fid = frechetDistance(featureStats(fr, real.length, FEATURE_DIM), featureStats(ff, fake.length, FEATURE_DIM));
  const pr = precisionRecall(fr, real.length, ff, fake.length, FEATURE_DIM, k);
  return { generated: fake.length, real: real.length, domain_fid: fid, precision: pr.precision, recall: pr.recall, k };
}

/** Mean top-class softmax probability of the classifier over the images. */
export function meanConfidence(classifier: FashionClassifier, images: readonly RgbImage[], batch = 256): number {
  let sum = 0;
  for (let i = 0; i < images.length; i += batch) {
    const top = tf.tidy(() => tf.max(tf.softmax(classifier.logits(grayBatch(images.slice(i, i + batch)))), 1));
    sum += (top.dataSync() as Float32Array).reduce((a, v) => a + v, 0);
    top.dispose();
  }
  return sum / images.length;
}

/**
 * `n` DCGAN images from seeds seed..seed+n-1 with the model's sampler (torch's for an import), quantised as
 * `/v1/generate` does, gray shown as RGB and at the classifier's size.
 */
export async function generateDcgan(engine: DcganEngine, opts: { seed: number; n: number; batch?: number }): Promise<RgbImage[]> {
  const { resolution: r, channels } = engine;
  const render = async (z: Float32Array, m: number) => {
    const px = floatToUint8(await engine.forward(z, m), "torchvision");
    return Array.from({ length: m }, (_, k) => {
      const one = px.subarray(k * r * r * channels, (k + 1) * r * r * channels);
      const rgb = channels === 3 ? Uint8Array.from(one) : Uint8Array.from({ length: r * r * 3 }, (_, j) => one[Math.floor(j / 3)]);
      return { data: rgb, width: r, height: r };
    });
  };
  return sampleSeeds({ seed: opts.seed, n: opts.n, batch: opts.batch ?? 64 }, engine.zDim, (s) => samplerZ(engine.seedRng, s, engine.zDim), render);
}

/** A DCGAN's samples against a real set: domain FID, precision/recall, and the classifier's confidence on both. */
export async function evaluateDcgan(engine: DcganEngine, realZip: Uint8Array, opts: SampleScoring): Promise<DcganEvaluation> {
  const { real, fake, scores } = await scoreSamples(realZip, (seed, n) => generateDcgan(engine, { seed, n }), opts);
  return {
    family: "dcgan",
    ...scores,
    confidence: meanConfidence(opts.classifier, fake),
    real_confidence: meanConfidence(opts.classifier, real),
  };
}
