/**
 * Projection: the w whose image is closest to a given one, found by gradient descent on w (and the per-layer
 * noise) the way NVlabs' `projector.py` does it:
 * - start at w_avg (the mean mapped w of `w_avg_samples` z's from RandomState(123)), w_std from the same samples;
 * - Adam (β 0.9, 0.999), learning rate 0.1 with a cosine ramp-down over the last 25 % and a linear ramp-up over
 *   the first 5 %; Gaussian noise on w of w_std × 0.05 × (1 − t/0.75)² that fades out;
 * - noise buffers start N(0, 1) and are optimised too, held back by projector.py's regulariser
 *   (auto-correlation at every octave down to 8², weight 1e5);
 * - one w for every layer.
 *
 * The image distance: projector.py uses LPIPS on NVIDIA's VGG16, whose weights ganserve cannot ship or fetch.
 * Without them the distance is the mix of Zhao et al. ("Loss Functions for Image Restoration with Neural
 * Networks", 2017): 0.84 × (1 − MS-SSIM) + 0.16 × L1, on images in [0, 1]. MS-SSIM (Wang et al. 2003) uses an
 * 11-tap Gaussian window (σ 1.5, shortened to fit small images), K1 0.01, K2 0.03, the five published scale
 * weights renormalised over the scales the image allows (each at least 8 pixels: 3 scales at 32²), and contrast
 * terms clamped at 1e-6 so fractional powers keep their gradient.
 *
 * Runs on TF.js (autodiff) with its own copy of the generator, so the serving engines and their noise buffers
 * are never touched; each step yields to the event loop and reports progress.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { z } from "zod";
import type { ProjectRequest, ProjectResponse } from "../../api/inference.ts";
import { resolveParams } from "../../api/describe.ts";
import { readSafetensors } from "../../checkpoints/safetensors.ts";
import { initBackend } from "../../engine/backend.ts";
import { enableTraining } from "../../engine/gradients.ts";
import { ApiError } from "../../errors.ts";
import { decodeRgb, floatToUint8, resizeRgb } from "../../images/codec.ts";
import type { InferenceService } from "../../inference/service.ts";
import type { ModelRegistry } from "../../models/registry.ts";
import { isNoiseConstKey, StyleGAN2Generator } from "../../networks/stylegan2/index.ts";
import { RandomState } from "../../random/index.ts";
import { latentOutput } from "../../latents/codec.ts";
import { encodeAnimation } from "./video.ts";

export type ProjectParams = z.output<typeof ProjectRequest>;
export type Progress = (done: number, total: number) => Promise<void> | void;

const MS_SSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
const MIN_SCALE = 8;

function gaussian(size: number, sigma = 1.5): tf.Tensor1D {
  const c = (size - 1) / 2;
  const g = Array.from({ length: size }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
  const s = g.reduce((a, b) => a + b, 0);
  return tf.tensor1d(g.map((v) => v / s));
}

/** Separable Gaussian blur, 'valid', per channel: x [N, H, W, C] → [N, H-k+1, W-k+1, C]. */
function blur(x: tf.Tensor4D, k: tf.Tensor1D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const size = k.shape[0];
  const planes = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [n * c, h, w, 1]) as tf.Tensor4D;
  const row = tf.conv2d(planes, tf.reshape(k, [1, size, 1, 1]) as tf.Tensor4D, 1, "valid");
  const both = tf.conv2d(row, tf.reshape(k, [size, 1, 1, 1]) as tf.Tensor4D, 1, "valid");
  const [, h2, w2] = both.shape;
  return tf.transpose(tf.reshape(both, [n, c, h2, w2]), [0, 2, 3, 1]) as tf.Tensor4D;
}

/** 2×2 mean pooling by reshape (its gradient needs no pooling kernel). */
function halve(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const hh = Math.floor(h / 2);
  const ww = Math.floor(w / 2);
  const cropped = tf.slice(x, [0, 0, 0, 0], [n, hh * 2, ww * 2, c]);
  return tf.mean(tf.reshape(cropped, [n, hh, 2, ww, 2, c]), [2, 4]) as tf.Tensor4D;
}

/** MS-SSIM of images in [0, 1], [N, H, W, C] → scalar (mean over the batch). */
export function msSsim(x: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const scales: number[] = [];
    for (let s = Math.min(x.shape[1], x.shape[2]); s >= MIN_SCALE && scales.length < MS_SSIM_WEIGHTS.length; s = Math.floor(s / 2)) scales.push(s);
    const weights = MS_SSIM_WEIGHTS.slice(0, scales.length);
    const total = weights.reduce((a, b) => a + b, 0);
    const c1 = 0.01 ** 2;
    const c2 = 0.03 ** 2;
    let a = x;
    let b = y;
    let result: tf.Tensor | null = null;
    for (const [i, side] of scales.entries()) {
      const size = Math.min(11, side % 2 === 1 ? side : side - 1);
      const k = gaussian(size);
      const mx = blur(a, k);
      const my = blur(b, k);
      const sxx = tf.sub(blur(tf.mul(a, a) as tf.Tensor4D, k), tf.mul(mx, mx));
      const syy = tf.sub(blur(tf.mul(b, b) as tf.Tensor4D, k), tf.mul(my, my));
      const sxy = tf.sub(blur(tf.mul(a, b) as tf.Tensor4D, k), tf.mul(mx, my));
      const cs = tf.mean(tf.div(tf.add(tf.mul(2, sxy), c2), tf.add(tf.add(sxx, syy), c2)), [1, 2, 3]);
      let term = tf.pow(tf.maximum(cs, 1e-6), weights[i] / total);
      if (i === scales.length - 1) {
        const l = tf.mean(tf.div(tf.add(tf.mul(tf.mul(2, mx), my), c1), tf.add(tf.add(tf.mul(mx, mx), tf.mul(my, my)), c1)), [1, 2, 3]);
        term = tf.mul(term, tf.pow(tf.maximum(l, 1e-6), weights[i] / total));
      }
      result = result ? tf.mul(result, term) : term;
      a = halve(a);
      b = halve(b);
    }
    return tf.mean(result!) as tf.Scalar;
  });
}

/** projector.py's noise regulariser: squared auto-correlation (x and y shifts) at every octave down to 8². */
function noiseRegularizer(noises: tf.Variable[]): tf.Scalar {
  let reg: tf.Tensor = tf.scalar(0);
  for (const v of noises) {
    const [rows, cols] = v.shape as [number, number];
    let n = tf.reshape(v, [1, rows, cols, 1]) as tf.Tensor4D;
    for (;;) {
      const [, h, w] = n.shape;
      const rollX = tf.concat([tf.slice(n, [0, 0, w - 1, 0], [1, h, 1, 1]), tf.slice(n, [0, 0, 0, 0], [1, h, w - 1, 1])], 2);
      const rollY = tf.concat([tf.slice(n, [0, h - 1, 0, 0], [1, 1, w, 1]), tf.slice(n, [0, 0, 0, 0], [1, h - 1, w, 1])], 1);
      reg = tf.add(reg, tf.add(tf.square(tf.mean(tf.mul(n, rollX))), tf.square(tf.mean(tf.mul(n, rollY)))));
      if (h <= 8) break;
      n = halve(n);
    }
  }
  return reg as tf.Scalar;
}

export const psnr = (a: Uint8Array, b: Uint8Array) => {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
};

export async function project(
  inference: InferenceService,
  registry: ModelRegistry,
  params: ProjectParams,
  tenant: string | undefined,
  limits: { maxPixels: number },
  progress?: Progress,
): Promise<ProjectResponse> {
  const t0 = performance.now();
  const { record, engine } = await inference.styleGan(params.model, params.version, tenant, "generate/project");
  const p = resolveParams(record, params);
  const res = engine.resolution;
  const bytes = new Uint8Array(Buffer.from(p.image, "base64"));
  let target = await decodeRgb(bytes, { maxPixels: limits.maxPixels });
  if (target.width !== res || target.height !== res) {
    if (!p.resize)
      throw new ApiError("unprocessable", `image: ${target.width}×${target.height}, the model makes ${res}×${res}; send that size or resize: true`, {
        field: "image",
        reason: "wrong_size",
        resolution: res,
      });
    target = await resizeRgb(target, res, res);
  }
  if (engine.cDim > 0 && p.class_idx === undefined) throw new ApiError("validation_failed", `class_idx: required, the model is conditional on ${engine.cDim} classes`);
  if (p.class_idx !== undefined && engine.cDim > 0 && p.class_idx >= engine.cDim)
    throw new ApiError("validation_failed", `class_idx: ${p.class_idx} is out of range 0..${engine.cDim - 1}`);

  await initBackend();
  enableTraining();
  const { tensors } = readSafetensors(await registry.weights(record), `${record.name}/${record.version}/weights.safetensors`);
  const g = StyleGAN2Generator.fromStateDict(record.config, tensors, `${record.name}/${record.version}`);
  try {
    const snapshotEvery = p.progress_video ? Math.max(1, Math.floor(p.steps / 50)) : undefined;
    const { ws, image: img, losses, snapshots } = await projectWs(g, p, target.data, progress, snapshotEvery);
    const shape = { numWs: g.numWs, wDim: g.config.w_dim };
    const px = floatToUint8(img, "stylegan2");
    const image = await inference.outputs.encodeOne({ data: px, width: res, height: res }, p, tenant);
    let progressVideo: ProjectResponse["progress_video"];
    if (snapshots.length) {
      const strip = new Uint8Array(snapshots.length * res * res * 3);
      for (const [i, f] of snapshots.entries()) strip.set(floatToUint8(f, "stylegan2"), i * res * res * 3);
      const { bytes, contentType } = await encodeAnimation(strip, res, res, snapshots.length, { format: "webp", fps: 10 });
      progressVideo = { content_type: contentType, width: res, height: res, ...(await inference.outputs.deliver(bytes, contentType, "webp", p.output, tenant)) };
    }
    return {
      model: record.name,
      version: record.version,
      params: { ...p, image: undefined, version: record.version },
      ...(latentOutput(ws, 0, shape, "w", p.latent_format) as { w: string | number[] }),
      image,
      psnr: Math.round(psnr(px, target.data) * 1000) / 1000,
      loss: losses,
      ...(progressVideo ? { progress_video: progressVideo } : {}),
      timings: { queue_ms: 0, compute_ms: 0, encode_ms: 0, total_ms: Math.round((performance.now() - t0) * 100) / 100 },
    };
  } finally {
    g.dispose();
  }
}

export type ProjectOptions = Pick<ProjectParams, "steps" | "learning_rate" | "optimize_noise" | "w_avg_samples" | "seed" | "class_idx">;

/**
 * The optimisation on a generator (which it modifies: its noise buffers end up optimised): target RGB bytes
 * [res, res, 3] → ws [numWs, wDim] (one w repeated), the image of it [res, res, 3] raw, and the loss per step.
 */
export async function projectWs(
  g: StyleGAN2Generator,
  p: ProjectOptions,
  target: Uint8Array,
  progress?: Progress,
  /** keep the image of the current w every this many steps (and the last), for the progress video */
  snapshotEvery?: number,
): Promise<{ ws: Float32Array; image: Float32Array; losses: number[]; snapshots: Float32Array[] }> {
  const { z_dim, c_dim, w_dim, img_resolution: res } = g.config;
  const numWs = g.numWs;
  const steps = p.steps;
  // w statistics (projector.py: 10000 z's from RandomState(123)), mapped in chunks to bound memory.
  const samples = p.w_avg_samples;
  const zs = Float32Array.from(new RandomState(123).randn(samples * z_dim));
  const wSum = new Float64Array(w_dim);
  const wAll = new Float32Array(samples * w_dim);
  for (let i = 0; i < samples; i += 1000) {
    const m = Math.min(1000, samples - i);
    const w = tf.tidy(() => {
      const c = c_dim > 0 ? g.classLabels(Array.from({ length: m }, () => p.class_idx ?? 0)) : null;
      return tf.slice(g.mapping(tf.tensor2d(zs.subarray(i * z_dim, (i + m) * z_dim), [m, z_dim]), c), [0, 0, 0], [m, 1, w_dim]).dataSync() as Float32Array;
    });
    wAll.set(w, i * w_dim);
    for (let k = 0; k < w.length; k++) wSum[k % w_dim] += w[k];
  }
  const wAvg = Float32Array.from(wSum, (s) => s / samples);
  let sq = 0;
  for (let k = 0; k < wAll.length; k++) sq += (wAll[k] - wAvg[k % w_dim]) ** 2;
  const wStd = Math.sqrt(sq / samples);

  const rs = new RandomState(p.seed);
  const noiseVars = p.optimize_noise ? [...g.stateDict().keys()].filter(isNoiseConstKey).map((k) => g.variable(k)) : [];
  for (const v of noiseVars) {
    v.assign(tf.tensor(Float32Array.from(rs.randn(v.size)), v.shape));
    v.trainable = true;
  }
  const wOpt = tf.variable(tf.tensor2d(wAvg, [1, w_dim]), true, `project_w_${Math.random().toString(36).slice(2)}`);
  const targetT = tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(target), [1, res, res, 3]), 255) as tf.Tensor4D);
  const optimizer = tf.train.adam(p.learning_rate, 0.9, 0.999, 1e-8);
  const losses: number[] = [];
  const snapshots: Float32Array[] = [];
  try {
    await progress?.(0, steps);
    for (let step = 0; step < steps; step++) {
      const t = step / steps;
      const wNoiseScale = wStd * 0.05 * Math.max(0, 1 - t / 0.75) ** 2;
      let ramp = Math.min(1, (1 - t) / 0.25);
      ramp = 0.5 - 0.5 * Math.cos(ramp * Math.PI);
      ramp *= Math.min(1, t / 0.05);
      (optimizer as unknown as { learningRate: number }).learningRate = p.learning_rate * ramp;
      const wNoise = Float32Array.from(rs.randn(w_dim), (v) => v * wNoiseScale);
      const cost = optimizer.minimize(
        () =>
          tf.tidy(() => {
            const w = tf.add(wOpt, tf.tensor2d(wNoise, [1, w_dim]));
            const ws = tf.tile(tf.reshape(w, [1, 1, w_dim]), [1, numWs, 1]) as tf.Tensor3D;
            // Unclamped, as projector.py feeds its VGG: saturated pixels keep their gradient.
            const img = tf.div(tf.add(g.synthesis(ws, { noise_mode: "const" }), 1), 2) as tf.Tensor4D;
            const dist = tf.add(tf.mul(0.84, tf.sub(1, msSsim(img, targetT))), tf.mul(0.16, tf.mean(tf.abs(tf.sub(img, targetT)))));
            return (noiseVars.length ? tf.add(dist, tf.mul(noiseRegularizer(noiseVars), 1e5)) : dist) as tf.Scalar;
          }),
        true,
        [wOpt, ...noiseVars],
      );
      losses.push(Math.round((await cost!.data())[0] * 1e6) / 1e6);
      cost!.dispose();
      // Normalise noise as projector.py does after each step: zero mean, unit variance.
      if (noiseVars.length)
        tf.tidy(() => {
          for (const v of noiseVars) {
            const { mean, variance } = tf.moments(v);
            v.assign(tf.div(tf.sub(v, mean), tf.sqrt(variance)));
          }
        });
      if (snapshotEvery && (step % snapshotEvery === 0 || step === steps - 1))
        snapshots.push(
          tf.tidy(() => {
            const ws = tf.tile(tf.reshape(wOpt, [1, 1, w_dim]), [1, numWs, 1]) as tf.Tensor3D;
            return g.synthesis(ws, { noise_mode: "const" }).dataSync() as Float32Array;
          }),
        );
      await progress?.(step + 1, steps);
      await new Promise((r) => setImmediate(r));
    }
    const wFinal = wOpt.dataSync() as Float32Array;
    const ws = new Float32Array(numWs * w_dim);
    for (let l = 0; l < numWs; l++) ws.set(wFinal, l * w_dim);
    const img = tf.tidy(() => g.synthesis(tf.tensor3d(ws, [1, numWs, w_dim]), { noise_mode: "const" }).dataSync() as Float32Array);
    return { ws, image: img, losses, snapshots };
  } finally {
    wOpt.dispose();
    targetT.dispose();
    optimizer.dispose();
  }
}
