import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSafetensors } from "../src/checkpoints/safetensors.ts";
import { initBackend } from "../src/engine/backend.ts";
import { type OnnxCycleGANEngine, onnxEngines } from "../src/inference/engines/onnx.ts";
import { codeFingerprint, OrtModelCache } from "../src/inference/engines/ort-cache.ts";
import type { ModelJson } from "../src/models/model-json.ts";
import { CycleGANGenerator } from "../src/networks/cyclegan/generator.ts";

// A small CycleGAN: the cache does not care about the family, and this one exports and runs in well under a second.
const config = { netG: "resnet_6blocks", ngf: 8, norm: "instance", input_nc: 3, output_nc: 3, crop_size: 32 };
const record = (sha256: string) => ({ schema_version: 1, name: "cached", version: "v1", family: "cyclegan", config, weights: { sha256 } }) as unknown as ModelJson;
const size = 32;
const x = Float32Array.from({ length: size * size * 3 }, (_, i) => Math.sin(i * 0.37));

let dir: string;
let weightsA: Uint8Array;
let weightsB: Uint8Array;
const shaA = "a".repeat(64);
const shaB = "b".repeat(64);

async function forward(cacheDir: string, weights: Uint8Array, sha256: string): Promise<Float32Array> {
  const e = (await onnxEngines({ threads: 1, cacheDir }).load(record(sha256), weights)) as OnnxCycleGANEngine;
  try {
    return await e.forward("AtoB", x, 1, size, size);
  } finally {
    e.dispose();
  }
}

const entries = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

beforeAll(async () => {
  await initBackend("cpu");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-ort-cache-"));
  const weightsOf = (seed: number) => {
    const g = CycleGANGenerator.randomInit(config, seed);
    const bytes = writeSafetensors(g.stateDict());
    g.dispose();
    return bytes;
  };
  weightsA = weightsOf(1);
  weightsB = weightsOf(2);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("ORT optimised-model cache", () => {
  it("has a code fingerprint here (the sources are on disk), so the cache is on", () => {
    expect(codeFingerprint()).toMatch(/^[0-9a-f]{64}$/);
  });

  it("writes one entry on the first load and serves the second load from it", async () => {
    const cacheDir = path.join(dir, "serve");
    const cold = await forward(cacheDir, weightsA, shaA);
    const files = entries(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^[0-9a-f]{64}\.onnx$/);
    // The other weights' optimised graph, put under A's key: if the second load read the cache, it computes
    // B's image from A's weights file, which proves the export was skipped.
    const other = path.join(dir, "other");
    const fromB = await forward(other, weightsB, shaB);
    fs.copyFileSync(path.join(other, entries(other)[0]), path.join(cacheDir, files[0]));
    const warm = await forward(cacheDir, weightsA, shaA);
    expect(Array.from(warm)).toEqual(Array.from(fromB));
    expect(Array.from(warm)).not.toEqual(Array.from(cold));
  });

  it("gives the cached graph's image exactly as the freshly built one", async () => {
    const cacheDir = path.join(dir, "same");
    const built = await forward(cacheDir, weightsA, shaA);
    const cached = await forward(cacheDir, weightsA, shaA);
    expect(entries(cacheDir)).toHaveLength(1);
    expect(Array.from(cached)).toEqual(Array.from(built));
  });

  it("keys on the weights: another sha256 is another entry", async () => {
    const cacheDir = path.join(dir, "keys");
    await forward(cacheDir, weightsA, shaA);
    await forward(cacheDir, weightsA, "c".repeat(64));
    expect(entries(cacheDir)).toHaveLength(2);
  });

  it("rebuilds an entry ORT cannot open and leaves no temporary file", async () => {
    const cacheDir = path.join(dir, "corrupt");
    const good = await forward(cacheDir, weightsA, shaA);
    const [file] = entries(cacheDir);
    const size0 = fs.statSync(path.join(cacheDir, file)).size;
    fs.writeFileSync(path.join(cacheDir, file), "not an onnx model");
    const again = await forward(cacheDir, weightsA, shaA);
    expect(Array.from(again)).toEqual(Array.from(good));
    expect(entries(cacheDir)).toEqual([file]);
    expect(fs.statSync(path.join(cacheDir, file)).size).toBe(size0);
  });

  it("serves when the cache directory cannot be made, and writes nothing", async () => {
    const blocker = path.join(dir, "a-file");
    fs.writeFileSync(blocker, "in the way");
    const expected = await forward(path.join(dir, "fresh"), weightsA, shaA);
    // mkdir under a regular file fails (ENOTDIR) even for root
    const y = await forward(path.join(blocker, "cache"), weightsA, shaA);
    expect(Array.from(y)).toEqual(Array.from(expected));
    expect(fs.readFileSync(blocker, "utf8")).toBe("in the way");
  });

  it("names different files for different graphs and configs of the same weights", () => {
    const c = new OrtModelCache(dir);
    const a = c.fileFor({ weightsSha256: shaA, graph: "AtoB", config });
    expect(a).not.toBeNull();
    expect(c.fileFor({ weightsSha256: shaA, graph: "BtoA", config })).not.toBe(a);
    expect(c.fileFor({ weightsSha256: shaA, graph: "AtoB", config: { ...config, ngf: 16 } })).not.toBe(a);
    expect(c.fileFor({ weightsSha256: shaA, graph: "AtoB", config })).toBe(a);
  });
});
