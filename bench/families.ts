/**
 * The benchmarked models: configs at realistic sizes, random weights from a fixed seed (the TF.js networks'
 * own random initialisers, written in the official state-dict layout) and deterministic inputs, plus the
 * analytic conv FLOP counts the table reports. Shared by the orchestrator (run.ts) and the workers.
 */
import fs from "node:fs";
import path from "node:path";
import { writeSafetensors } from "../packages/core/src/checkpoints/safetensors.ts";
import type { StateDict } from "../packages/core/src/checkpoints/tensor.ts";
import type { ModelFamily } from "../packages/core/src/families.ts";
import { mainLayoutConfig } from "../packages/core/src/networks/dcgan/config.ts";
import { RandomState } from "../packages/core/src/random/index.ts";

/** The benched families: every family. */
export type Family = ModelFamily;

/** The DCGAN the bench serves: pytorch/examples' defaults (and its tutorial's), not the 256² of the others. */
export const DCGAN = { nz: 100, ngf: 64, size: 64 } as const;

/** One config per family (the Record type makes it every family); the table runs them in this order. */
export const CONFIGS: Record<Family, Record<string, unknown>> = {
  cyclegan: { netG: "resnet_9blocks", ngf: 64, norm: "instance", input_nc: 3, output_nc: 3, crop_size: 256 },
  // stylegan2-ada config-f channels (channel_base 32768, channel_max 512) at 256².
  stylegan2: {
    z_dim: 512,
    w_dim: 512,
    c_dim: 0,
    img_resolution: 256,
    img_channels: 3,
    mapping_kwargs: { num_layers: 8 },
    synthesis_kwargs: { channel_base: 32768, channel_max: 512, architecture: "skip", conv_clamp: null },
  },
  // Cityscapes-like: 35 labels + the instance-edge channel, ngf 64, 256x256.
  spade: { label_nc: 35, contain_dontcare_label: false, no_instance: false, ngf: 64, crop_size: 256, aspect_ratio: 1, norm_G: "spectralspadesyncbatch3x3", num_upsampling_layers: "normal" },
  // pytorch/examples' dcgan netG (`main` layout) at the size its tutorial trains: 64x64 RGB, nz 100, ngf 64.
  dcgan: mainLayoutConfig(DCGAN.nz, DCGAN.ngf, 3, DCGAN.size),
};

export const FAMILIES = Object.keys(CONFIGS) as Family[];

export const SIZE = 256;
export const BATCH = 8;

/** 2·MACs of every conv / transposed conv / 1x1 conv in the reference architecture (not our rewrites). */
export function convFlops(family: Family): number {
  const conv = (cin: number, cout: number, k: number, h: number, w = h) => 2 * cin * cout * k * k * h * w;
  if (family === "dcgan") {
    // Transposed convs, MACs per input pixel: nz → 8·ngf at 1x1, then 4x4 → 8x8 → 16x16 → 32x32 → 64x64.
    const { nz, ngf } = DCGAN;
    let f = conv(nz, 8 * ngf, 4, 1);
    for (let c = 8 * ngf, r = 4; c > ngf; c /= 2, r *= 2) f += conv(c, c / 2, 4, r);
    return f + conv(ngf, 3, 4, DCGAN.size / 2);
  }
  if (family === "cyclegan") {
    const ngf = 64;
    const s = SIZE;
    let f = conv(3, ngf, 7, s) + conv(ngf, 2 * ngf, 3, s / 2) + conv(2 * ngf, 4 * ngf, 3, s / 4);
    f += 18 * conv(4 * ngf, 4 * ngf, 3, s / 4);
    f += conv(4 * ngf, 2 * ngf, 3, s / 4) + conv(2 * ngf, ngf, 3, s / 2); // transposed: MACs per input pixel
    return f + conv(ngf, 3, 7, s);
  }
  if (family === "stylegan2") {
    const ch = (r: number) => Math.min(Math.floor(32768 / r), 512);
    let f = 0;
    for (let r = 4; r <= SIZE; r *= 2) {
      if (r > 4) f += conv(ch(r / 2), ch(r), 3, r / 2); // transposed conv at the input resolution
      f += conv(ch(r), ch(r), 3, r) + conv(ch(r), 3, 1, r);
    }
    return f;
  }
  const nf = 64;
  const snc = 36;
  const nh = 128;
  const blocks: [number, number, number][] = [
    [16 * nf, 16 * nf, 8],
    [16 * nf, 16 * nf, 16],
    [16 * nf, 16 * nf, 16],
    [16 * nf, 8 * nf, 32],
    [8 * nf, 4 * nf, 64],
    [4 * nf, 2 * nf, 128],
    [2 * nf, nf, 256],
  ];
  let f = conv(snc, 16 * nf, 3, 8);
  const norm = (c: number, r: number) => conv(snc, nh, 3, r) + 2 * conv(nh, c, 3, r);
  for (const [fin, fout, r] of blocks) {
    const fm = Math.min(fin, fout);
    f += conv(fin, fm, 3, r) + conv(fm, fout, 3, r) + norm(fin, r) + norm(fm, r);
    if (fin !== fout) f += conv(fin, fout, 1, r) + norm(fin, r);
  }
  return f + conv(nf, 3, 3, SIZE);
}

export interface Inputs {
  cyclegan: Float32Array; // x NHWC [8, 256, 256, 3]
  stylegan2: Float32Array; // z [8, 512]
  spade: Int32Array; // label [8, 256, 256], also used as the instance map
  dcgan: Float32Array; // z [8, 100]
}

export function makeInputs(family: Family, seed = 1234): StateDict {
  const rs = new RandomState(seed);
  if (family === "stylegan2") return new Map([["z", { dtype: "F32", shape: [BATCH, 512], data: Float32Array.from(rs.randn(BATCH * 512)) }]]);
  if (family === "dcgan") return new Map([["z", { dtype: "F32", shape: [BATCH, DCGAN.nz], data: Float32Array.from(rs.randn(BATCH * DCGAN.nz)) }]]);
  if (family === "cyclegan") {
    const n = BATCH * SIZE * SIZE * 3;
    const noise = rs.randn(n);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const p = Math.floor(i / 3);
      const xx = p % SIZE;
      const yy = Math.floor(p / SIZE) % SIZE;
      x[i] = Math.max(-1, Math.min(1, 0.6 * Math.sin(xx / 17 + (i % 3)) * Math.cos(yy / 23) + 0.2 * noise[i]));
    }
    return new Map([["x", { dtype: "F32", shape: [BATCH, SIZE, SIZE, 3], data: x }]]);
  }
  // Blocky label maps (16x16 blocks), like real segmentation maps rather than per-pixel noise.
  const blocks = rs.randn(BATCH * 16 * 16);
  const label = new Int32Array(BATCH * SIZE * SIZE);
  for (let b = 0; b < BATCH; b++)
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) label[(b * SIZE + y) * SIZE + x] = Math.floor(Math.abs(blocks[(b * 16 + (y >> 4)) * 16 + (x >> 4)]) * 1000) % 35;
  return new Map([["label", { dtype: "I32", shape: [BATCH, SIZE, SIZE], data: label }]]);
}

/** Random weights in the official layout, from the TF.js networks' initialisers (cpu backend, fixed seed). */
export async function makeWeights(family: Family, seed = 1): Promise<StateDict> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-cpu");
  await tf.setBackend("cpu");
  if (family === "cyclegan") {
    const { CycleGANGenerator } = await import("../packages/core/src/networks/cyclegan/index.ts");
    const g = CycleGANGenerator.randomInit(CONFIGS.cyclegan, seed);
    const sd = g.stateDict();
    g.dispose();
    return sd;
  }
  if (family === "stylegan2") {
    const { StyleGAN2Generator } = await import("../packages/core/src/networks/stylegan2/index.ts");
    const g = StyleGAN2Generator.randomInit(CONFIGS.stylegan2, seed);
    const sd = g.stateDict();
    g.dispose();
    // Upstream init leaves noise_strength at 0; a trained model's is not, and the bench should pay for the noise.
    for (const [k, t] of sd) if (k.endsWith("noise_strength")) (t.data as Float32Array)[0] = 0.1;
    return sd;
  }
  if (family === "dcgan") {
    const { DcganGenerator } = await import("../packages/core/src/networks/dcgan/generator.ts");
    const g = DcganGenerator.randomInit(CONFIGS.dcgan, seed);
    const sd = g.stateDict();
    g.dispose();
    // weights_init leaves running_mean 0 and running_var 1, where eval-mode BatchNorm is nearly the identity; a
    // trained model's are not, and the diff against torch should show the statistics are applied.
    const rs = new RandomState(seed + 1);
    for (const [k, t] of sd) {
      const d = t.data as Float32Array;
      if (k.endsWith("running_mean")) d.set(rs.randn(d.length).map((v) => 0.1 * v));
      if (k.endsWith("running_var")) for (let i = 0; i < d.length; i++) d[i] = 0.5 + rs.randomSample();
    }
    return sd;
  }
  const { SpadeGenerator } = await import("../packages/core/src/networks/spade/index.ts");
  const g = SpadeGenerator.randomInit(CONFIGS.spade, seed);
  const sd = g.stateDict();
  g.dispose();
  return sd;
}

export function files(dir: string, family: Family) {
  return {
    weights: path.join(dir, `${family}.weights.safetensors`),
    inputs: path.join(dir, `${family}.inputs.safetensors`),
    config: path.join(dir, `${family}.config.json`),
    out: (engine: string) => path.join(dir, `${family}.${engine}.out.f32`),
  };
}

export async function prepare(dir: string, family: Family): Promise<void> {
  const f = files(dir, family);
  fs.writeFileSync(f.weights, writeSafetensors(await makeWeights(family)));
  fs.writeFileSync(f.inputs, writeSafetensors(makeInputs(family)));
  fs.writeFileSync(f.config, JSON.stringify(CONFIGS[family]));
}
