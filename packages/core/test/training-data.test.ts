/**
 * The fine-tune loader decodes each training image at the size its trainer uses, so memory is count ×
 * training size however large the sources are (issue 21: a 3.4 MB zip of 60 flat 4096² PNGs took the worker
 * to 4.3 GB when every image was kept at full size).
 */
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeLabelPng } from "../src/images/label-png.ts";
import { loadTrainingData, type TrainingDataDeps } from "../src/jobs/training-data.ts";
import { trainingImageSize } from "../src/training/index.ts";
import { resizeLabelsNearest } from "../src/training/spade/data.ts";

const flat = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 90 } } })
    .png()
    .toBuffer()
    .then((b) => new Uint8Array(b));

/** A greyscale label map of horizontal bands (class = row band), so a wrong resize shows. */
const bands = async (width: number, height: number, classes: number) => {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) data.fill(Math.floor((y * classes) / height), y * width, (y + 1) * width);
  return new Uint8Array(await sharp(data, { raw: { width, height, channels: 1 } }).toColourspace("b-w").png().toBuffer());
};

function fakeDataset(entries: { path: string; role: string; bytes: Uint8Array }[]): TrainingDataDeps {
  const files = new Map(entries.map((e) => [e.path, e.bytes]));
  return {
    datasets: {
      index: async () => ({ entries: entries.map((e) => ({ key: e.path, path: e.path, role: e.role })) }) as never,
      fileKey: (_id: string, key: string) => key,
    },
    storage: { get: async (key: string) => files.get(key) },
  };
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

describe("loadTrainingData decodes at the training size", () => {
  it("keeps 24 flat 4096² PNGs as 32² images (StyleGAN2), not 24 × 48 MB", async () => {
    const big = await flat(4096, 4096);
    const deps = fakeDataset(Array.from({ length: 24 }, (_, i) => ({ path: `images/${i}.png`, role: "images", bytes: big })));
    const size = trainingImageSize("stylegan2", { config: { z_dim: 8, w_dim: 8, c_dim: 0, img_resolution: 32, img_channels: 3 }, options: { steps: 1, batch_size: 1, learning_rate: 0.002, seed: 0, options: {} } });
    expect(size).toEqual({ width: 32, height: 32 });
    const before = rssMb();
    const data = await loadTrainingData("stylegan2", "d", deps, size);
    if (data.family !== "stylegan2") throw new Error("family");
    expect(data.images).toHaveLength(24);
    for (const img of data.images) {
      expect([img.width, img.height]).toEqual([32, 32]);
      expect(img.data.length).toBe(32 * 32 * 3);
      expect([...img.data.subarray(0, 3)]).toEqual([200, 40, 90]);
    }
    // At full size these would hold 24 × 4096² × 3 = 1.1 GB; decoded at 32² they hold 74 KB.
    expect(rssMb() - before).toBeLessThan(300);
  }, 120_000);

  it("covers CycleGAN's load size with the aspect kept, and leaves smaller images alone", async () => {
    const deps = fakeDataset([
      { path: "trainA/wide.png", role: "trainA", bytes: await flat(4096, 2048) },
      { path: "trainB/small.png", role: "trainB", bytes: await flat(20, 24) },
    ]);
    const size = trainingImageSize("cyclegan", { config: { netG: "resnet_6blocks", ngf: 8, crop_size: 32 }, options: { steps: 1, batch_size: 1, learning_rate: 0.0002, seed: 0, options: { load_size: 36 } } });
    expect(size).toEqual({ width: 36, height: 36 });
    const data = await loadTrainingData("cyclegan", "d", deps, size);
    if (data.family !== "cyclegan") throw new Error("family");
    expect([data.A[0].width, data.A[0].height]).toEqual([72, 36]);
    expect([data.B[0].width, data.B[0].height]).toEqual([20, 24]);
  }, 60_000);

  it("brings a 4096² SPADE pair to the generator's size, the label map by the trainer's own nearest rule", async () => {
    const labelBytes = await bands(4096, 4096, 5);
    const deps = fakeDataset([
      { path: "images/a.png", role: "images", bytes: await flat(4096, 4096) },
      { path: "labels/a.png", role: "labels", bytes: labelBytes },
      // sizes that differ stay as they are, for the trainer to report
      { path: "images/b.png", role: "images", bytes: await flat(128, 128) },
      { path: "labels/b.png", role: "labels", bytes: await bands(96, 96, 5) },
    ]);
    const config = { label_nc: 5, no_instance: true, ngf: 8, crop_size: 64, aspect_ratio: 1 };
    const size = trainingImageSize("spade", { config, options: { steps: 1, batch_size: 1, learning_rate: 0.0002, seed: 0, options: {} } });
    expect(size).toEqual({ width: 64, height: 64 });
    const data = await loadTrainingData("spade", "d", deps, size);
    if (data.family !== "spade") throw new Error("family");
    expect([data.images[0].width, data.images[0].height]).toEqual([64, 64]);
    const full = decodeLabelPng(labelBytes, { maxPixels: 4096 * 4096 });
    expect(data.labels[0]).toEqual(resizeLabelsNearest(full.data, 4096, 4096, 64, 64));
    expect([data.images[1].width, data.labels[1].length]).toEqual([128, 96 * 96]);
  }, 60_000);

  it("refuses an image whose header is over the pixel limit before decoding it", async () => {
    const deps = fakeDataset([{ path: "images/huge.png", role: "images", bytes: await flat(5000, 4000) }]);
    await expect(loadTrainingData("stylegan2", "d", deps, { width: 32, height: 32 })).rejects.toMatchObject({ code: "image_too_large" });
  }, 60_000);
});
