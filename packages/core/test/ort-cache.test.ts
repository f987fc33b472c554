import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSafetensors } from "../src/checkpoints/safetensors.ts";
import { initBackend } from "../src/engine/backend.ts";
import { servingEngines } from "../src/inference/engines/index.ts";
import { type OnnxCycleGANEngine, onnxEngines } from "../src/inference/engines/onnx.ts";
import { codeFingerprint, OrtModelCache } from "../src/inference/engines/ort-cache.ts";
import type { ModelJson } from "../src/models/model-json.ts";
import { modelKeys } from "../src/storage/keys.ts";
import { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";
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
    const file = (id: Parameters<OrtModelCache["entry"]>[0]) => c.entry(id)?.file;
    const a = file({ weightsSha256: shaA, graph: "AtoB", config });
    expect(a).toMatch(/[0-9a-f]{64}\.onnx$/);
    expect(file({ weightsSha256: shaA, graph: "BtoA", config })).not.toBe(a);
    expect(file({ weightsSha256: shaA, graph: "AtoB", config: { ...config, ngf: 16 } })).not.toBe(a);
    expect(file({ weightsSha256: shaA, graph: "AtoB", config })).toBe(a);
  });
});

describe("ORT optimised-model cache, shared through the model store", () => {
  let store: EmbeddedStore;
  beforeAll(async () => {
    store = await startEmbeddedStore({ name: "ort-shared", bucket: "models" });
  });
  afterAll(() => store.close());

  /** One container's start: its own (empty unless reused) directory, the shared store; waits for its copies. */
  async function start(cacheDir: string, weights: Uint8Array, sha256: string, storage: Storage = store.storage, errors: string[] = []): Promise<Float32Array> {
    // The serving factory, as a process builds it: its flush() is what a stopping process waits for.
    const engines = servingEngines("onnx", "cpu", { threads: 1, cacheDir, shared: { store: storage, onError: (_e, what) => errors.push(what) } });
    const e = (await engines.load(record(sha256), weights)) as unknown as OnnxCycleGANEngine;
    try {
      return await e.forward("AtoB", x, 1, size, size);
    } finally {
      e.dispose();
      await engines.flush?.();
    }
  }
  const stored = async () => (await store.storage.list(modelKeys.version("cached", "v1"))).map((o) => o.key);

  it("copies what a start built to the version's folder, and a new container with an empty disk starts from it", async () => {
    const built = await start(path.join(dir, "task-1"), weightsA, shaA);
    const keys = await stored();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^models\/cached\/v1\/compiled\/[0-9a-f]{64}\.onnx$/);
    const [local] = entries(path.join(dir, "task-1"));
    expect(keys[0].endsWith(local)).toBe(true);
    expect(Buffer.from((await store.storage.get(keys[0]))!)).toEqual(fs.readFileSync(path.join(dir, "task-1", local)));

    // B's optimised graph under A's key in the store: a second task that computes B's image from A's weights
    // read its graph from the store instead of building one.
    const fromB = await start(path.join(dir, "other-b"), weightsB, shaB);
    const [bFile] = entries(path.join(dir, "other-b"));
    await store.storage.put(keys[0], fs.readFileSync(path.join(dir, "other-b", bFile)));
    const second = await start(path.join(dir, "task-2"), weightsA, shaA);
    expect(Array.from(second)).toEqual(Array.from(fromB));
    expect(Array.from(second)).not.toEqual(Array.from(built));
    expect(entries(path.join(dir, "task-2"))).toEqual([local]);
  });

  it("serves when the model store cannot be reached, and says so", async () => {
    const expected = await forward(path.join(dir, "plain"), weightsA, shaA);
    const down = new Storage({ ...store.storage.options, endpoint: "http://127.0.0.1:9", maxAttempts: 1 });
    const errors: string[] = [];
    const y = await start(path.join(dir, "offline"), weightsA, shaA, down, errors);
    expect(Array.from(y)).toEqual(Array.from(expected));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^reading the compiled graph [0-9a-f]{64} of cached\/v1/);
    expect(errors[1]).toMatch(/^copying the compiled graph [0-9a-f]{64} of cached\/v1 to the model store$/);
    expect(entries(path.join(dir, "offline"))).toHaveLength(1);
  });
});
