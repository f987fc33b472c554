/**
 * The ONNX exporter + ONNX Runtime engine against every official fixture case (every weights format a manifest
 * lists), with the manifests' tolerances; plus the engine-level behaviour the fixtures do not cover.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCheckpoint } from "../src/checkpoints/index.ts";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { createSession, cycleGan, noiseFor, onnxEngines, styleGan2, truncateWs } from "../src/inference/engines/onnx.ts";
import { writeSafetensors } from "../src/checkpoints/safetensors.ts";
import { polyphaseKernel } from "../src/onnx/graph.ts";
import { encodeModel } from "../src/onnx/proto.ts";
import { runOnnxParity } from "../src/parity/onnx.ts";
import { exportOnnx } from "../src/networks/export.ts";
import { officialDir } from "../../../test/fixtures/index.ts";

const OFFICIAL = officialDir;
const load = async (model: string, file = "weights.safetensors"): Promise<StateDict> =>
  (await loadCheckpoint(new Uint8Array(fs.readFileSync(path.join(OFFICIAL, model, file))), file)).stateDict;
const manifest = (model: string) => JSON.parse(fs.readFileSync(path.join(OFFICIAL, model, "manifest.json"), "utf8")) as { config: Record<string, unknown> };

describe("ONNX parity with the official fixtures", () => {
  it("passes every case within the manifest tolerances", async () => {
    const lines = await runOnnxParity(OFFICIAL);
    const failed = lines.filter((l) => !l.ok).map((l) => l.line);
    expect(failed).toEqual([]);
    // All three families, every format: 37 cases as the wasm parity run counts them.
    expect(lines.length).toBeGreaterThanOrEqual(37);
    for (const family of ["stylegan2/", "cyclegan/", "spade/"]) expect(lines.some((l) => l.label.startsWith(family))).toBe(true);
  });

  it("StyleGAN2 random noise is deterministic per seed and differs from const", async () => {
    const model = "stylegan2/z32_w32_res32_skip";
    const e = await styleGan2(manifest(model), await load(model), 1);
    try {
      const n = 2;
      const z = Float32Array.from({ length: n * e.zDim }, (_, i) => Math.sin(i));
      const ws = await e.mapping(z, null, n, { truncation_psi: 1 });
      const a = await e.synthesis(ws, n, { noise_mode: "random", noiseSeed: 7 });
      const b = await e.synthesis(ws, n, { noise_mode: "random", noiseSeed: 7 });
      const c = await e.synthesis(ws, n, { noise_mode: "random", noiseSeed: 8 });
      const k = await e.synthesis(ws, n, { noise_mode: "const" });
      expect(a).toEqual(b);
      expect(a).not.toEqual(c);
      expect(a).not.toEqual(k);
      expect(a.length).toBe(n * 32 * 32 * 3);
    } finally {
      e.dispose();
    }
  });

  it("CycleGAN runs at other sizes and batch sizes with one session, and rejects bad sizes", async () => {
    const model = "cyclegan/resnet_9blocks_instance_ngf8";
    const e = await cycleGan(manifest(model), await load(model), 1);
    try {
      const y = await e.forward("AtoB", new Float32Array(3 * 32 * 48 * 3).fill(0.1), 3, 32, 48);
      expect(y.length).toBe(3 * 32 * 48 * 3);
      expect(y.every((v) => Math.abs(v) <= 1)).toBe(true);
      await expect(e.forward("AtoB", new Float32Array(30 * 32 * 3), 1, 30, 32)).rejects.toThrow(/multiples of 4/);
      await expect(e.forward("BtoA", new Float32Array(32 * 32 * 3), 1, 32, 32)).rejects.toThrow(/no BtoA/);
    } finally {
      e.dispose();
    }
  });

  it("exportOnnx emits every StyleGAN2 graph variant, each loadable by ONNX Runtime", async () => {
    const model = "stylegan2/z32_w32_res32_skip";
    const graphs = exportOnnx("stylegan2", manifest(model).config, await load(model));
    expect(Object.keys(graphs).sort()).toEqual(["mapping", "synthesis_const", "synthesis_none", "synthesis_random"]);
    for (const bytes of Object.values(graphs)) await (await createSession(bytes, 1)).release();
  });

  it("loads through the factory from a version record and safetensors bytes", async () => {
    const model = "spade/label6_dontcare_instance_ngf1";
    const bytes = writeSafetensors(await load(model));
    const record = { schema_version: 1, name: "s", version: "v1", family: "spade", config: manifest(model).config } as never;
    const e = await onnxEngines({ threads: 1 }).load(record, bytes);
    expect(e.family).toBe("spade");
    if (e.family !== "spade") return;
    const label = new Int32Array(64 * 64).fill(2);
    const y = await e.forward(label, label, 1, { seed: 0 });
    expect(y.length).toBe(64 * 64 * 3);
    await expect(e.forward(new Int32Array(64 * 64).fill(99), label, 1, { seed: 0 })).rejects.toThrow();
    e.dispose();
  });
});

describe("ONNX helpers", () => {
  it("truncation follows torch.lerp in float32 and honours the cutoff", () => {
    const w = Float32Array.of(1, 2);
    const avg = Float32Array.of(0, 4);
    const ws = truncateWs(w, 1, 3, avg, 0.5, 2);
    expect([...ws]).toEqual([0.5, 3, 0.5, 3, 1, 2]);
  });

  it("random noise comes from a seeded generator", () => {
    expect(noiseFor(3, 1, 1, 4)).toEqual(noiseFor(3, 1, 1, 4));
    expect(noiseFor(3, 1, 1, 4)).not.toEqual(noiseFor(3, 2, 1, 4));
  });

  it("the polyphase kernel of a 1-tap kernel with up 2 is a pure interleave", () => {
    const { kernel, pads } = polyphaseKernel(Float32Array.of(1), 1, 1, 1, 1, 2, 0, 0);
    expect(kernel.dims).toEqual([4, 1, 1, 1]);
    expect([...kernel.data]).toEqual([1, 0, 0, 0]);
    expect(pads).toEqual([0, 0, 0, 0]);
  });

  it("encodes negative int64 attributes as 10-byte varints", () => {
    const bytes = encodeModel({ graphName: "g", nodes: [{ opType: "Identity", inputs: ["x"], outputs: ["y"], attrs: { a: { kind: "int", v: -1 } } }], initializers: [], inputs: [], outputs: [], opset: 17, irVersion: 8, producer: "t" });
    const hex = Buffer.from(bytes).toString("hex");
    expect(hex).toContain("18ffffffffffffffffff01");
  });
});
