/**
 * `npx tsx scripts/dcgan-loss-curves.ts [--steps 200] [--images 2000] [--ngf 16] [--batch 32] [--losses a,b] [--out DIR]`
 *
 * Trains a small one-channel 32×32 DCGAN (`main` layout, nz 100) from scratch on Fashion-MNIST with our own
 * trainer, once per loss the family allows, and prints each loss curve's first, last, smallest and largest
 * values and whether every value was finite (issue #26's "200 steps with each loss, finite curve"). With --out,
 * writes each run's curve as JSON and an 8×8 grid of samples (fixed torch seeds 0-63) as a grayscale PNG.
 * Fashion-MNIST comes from Debian's dataset-fashion-mnist (see packages/core/src/demo/sources.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import { readIdx } from "../packages/core/src/demo/idx.ts";
import { findFashionMnist } from "../packages/core/src/demo/sources.ts";
import { initBackend } from "../packages/core/src/engine/backend.ts";
import { encodeLabelPng } from "../packages/core/src/images/label-png.ts";
import { mainLayoutConfig } from "../packages/core/src/networks/dcgan/config.ts";
import { torchSeedToZ } from "../packages/core/src/random/torch-randn.ts";
import { DcganTrainer } from "../packages/core/src/training/dcgan/trainer.ts";
import { FAMILY_LOSS_RULES, GAN_LOSSES, type GanLoss } from "../packages/core/src/training/losses.ts";
import type { TrainImage } from "../packages/core/src/training/types.ts";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "200" },
    images: { type: "string", default: "2000" },
    ngf: { type: "string", default: "16" },
    batch: { type: "string", default: "32" },
    losses: { type: "string" },
    out: { type: "string" },
  },
});
const steps = Number(args.steps);
const ngf = Number(args.ngf);
const NZ = 100;
const allowed = GAN_LOSSES.filter((l) => !FAMILY_LOSS_RULES.dcgan.refuse[l]);
const losses = (args.losses ? args.losses.split(",") : allowed) as GanLoss[];

/** pytorch/examples' netG for 32×32: 1×1 → 4 → 8 → 16 → 32 (the `main` layout, built where its names live). */
const config = mainLayoutConfig(NZ, ngf, 1, 32);

/** The first n Fashion-MNIST training images, 28×28 padded to 32×32 (black border), as RGB. */
function fashion(n: number): TrainImage[] {
  const idx = readIdx(gunzipSync(fs.readFileSync(findFashionMnist().trainImages)), "train-images");
  const [count, h, w] = idx.shape;
  return Array.from({ length: Math.min(n, count) }, (_, i) => {
    const data = new Uint8Array(32 * 32 * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) data.fill(idx.data[i * h * w + y * w + x], ((y + 2) * 32 + x + 2) * 3, ((y + 2) * 32 + x + 3) * 3);
    return { data, width: 32, height: 32 };
  });
}

async function grid(t: DcganTrainer): Promise<Uint8Array> {
  const z = tf.tensor2d(Float32Array.from({ length: 64 * NZ }, (_, i) => torchSeedToZ(Math.floor(i / NZ), NZ)[i % NZ]), [64, NZ]);
  const y = t.G.forward(z);
  const v = (await y.data()) as Float32Array;
  tf.dispose([z, y]);
  const data = new Uint8Array(256 * 256);
  for (let n = 0; n < 64; n++)
    for (let r = 0; r < 32; r++)
      for (let c = 0; c < 32; c++) data[(Math.floor(n / 8) * 32 + r) * 256 + (n % 8) * 32 + c] = Math.round(Math.min(1, Math.max(0, (v[(n * 32 + r) * 32 + c] + 1) / 2)) * 255);
  return encodeLabelPng({ width: 256, height: 256, data });
}

await initBackend();
const images = fashion(Number(args.images));
console.log(`backend ${tf.getBackend()}, ${images.length} images, ngf ${ngf}, batch ${args.batch}, ${steps} steps per loss`);
for (const loss of losses) {
  const t = new DcganTrainer({ config, images, options: { steps, batch_size: Number(args.batch), learning_rate: 2e-4, seed: 0, options: { loss, ndf: ngf } } });
  const curve: Record<string, number[]> = {};
  const start = performance.now();
  for (let i = 0; i < steps; i++) {
    const { losses: l } = await t.trainStep();
    for (const [k, v] of Object.entries(l)) {
      curve[k] ??= [];
      curve[k].push(v);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const summary = Object.entries(curve).map(([k, vs]) => {
    const finite = vs.every(Number.isFinite);
    return `${k} ${vs[0].toFixed(3)}→${vs.at(-1)!.toFixed(3)} [${Math.min(...vs).toFixed(3)}, ${Math.max(...vs).toFixed(3)}]${finite ? "" : " NOT FINITE"}`;
  });
  console.log(`${loss}: ${summary.join("; ")}; ${(seconds / steps).toFixed(3)} s/step`);
  if (args.out) {
    fs.mkdirSync(args.out, { recursive: true });
    fs.writeFileSync(path.join(args.out, `${loss}.json`), JSON.stringify(curve));
    fs.writeFileSync(path.join(args.out, `${loss}.png`), await grid(t));
  }
  t.dispose();
}
