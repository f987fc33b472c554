/**
 * The inference API against the real local stack, with models imported from the official fixtures by the
 * real CLI: pixels must match what the official generate.py / test.py wrote.
 */
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";
import { official } from "./fixtures/index.ts";
import { compareRgb, importFixtureModels, importModel, rgbOf } from "./helpers/models.ts";

const SG = official("stylegan2/z32_w32_res32_skip");
const CG = official("cyclegan/resnet_9blocks_instance_ngf8");
const CGU = official("cyclegan/unet_128_batch_ngf2");
const SP = official("spade/label6_dontcare_instance_ngf1");

let stack: Stack;
const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${stack.url}${route}`, {
    method: "POST",
    headers: { ...auth(stack), "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const b64 = (file: string) => fs.readFileSync(file).toString("base64");

beforeAll(async () => {
  const dataDir = tempDataDir();
  importFixtureModels(dataDir);
  importModel(path.join(CGU, "weights_legacy.pth"), "cgu-fixture", dataDir);
  stack = await startStack({ dataDir, env: { GANSERVE_MAX_QUEUE: "128" } });
});
afterAll(async () => {
  await stack?.stop();
});

describe("models", () => {
  it("lists the imported models with family, versions and input spec", async () => {
    const res = await fetch(`${stack.url}/v1/models`, { headers: auth(stack) });
    expect(res.status).toBe(200);
    const { models } = await res.json();
    const byName = Object.fromEntries(models.map((m: { name: string }) => [m.name, m]));
    expect(byName["sg-fixture"]).toMatchObject({ family: "stylegan2", versions: ["v1"], latest: "v1", input: { resolution: 32, z_dim: 32 } });
    expect(byName["cg-fixture"].family).toBe("cyclegan");
    expect(byName["spade-fixture"]).toMatchObject({ family: "spade", input: { label_nc: 6, contain_dontcare_label: true } });
    const one = await fetch(`${stack.url}/v1/models/sg-fixture/versions/latest`, { headers: auth(stack) });
    expect((await one.json()).weights.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("generate", () => {
  const cases = JSON.parse(fs.readFileSync(path.join(SG, "generate_py/cases.json"), "utf8"));

  it("reproduces the official generate.py pixels for each seed", async () => {
    const res = await post("/v1/generate", {
      model: "sg-fixture",
      seeds: cases.cases.map((c: { seed: number }) => c.seed),
      truncation_psi: cases.truncation_psi,
      noise_mode: cases.noise_mode,
      ...(cases.class_idx === null ? {} : { class_idx: cases.class_idx }),
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.images).toHaveLength(cases.cases.length);
    for (const [i, c] of cases.cases.entries()) {
      const ours = await rgbOf(Buffer.from(body.images[i].data, "base64"));
      const official = await rgbOf(fs.readFileSync(path.join(SG, "generate_py", c.file)));
      expect([ours.width, ours.height]).toEqual([official.width, official.height]);
      const diff = compareRgb(ours.data, official.data);
      expect(diff.maxDiff, `seed ${c.seed}`).toBeLessThanOrEqual(1);
      expect(diff.fraction, `seed ${c.seed}`).toBeLessThanOrEqual(0.001);
    }
  });

  it("gives identical bytes for the same request, alone or batched with others", async () => {
    const req = { model: "sg-fixture", seeds: [7, 8], truncation_psi: 0.5, format: "png" };
    const first = await (await post("/v1/generate", req)).json();
    const concurrent = await Promise.all([post("/v1/generate", req), post("/v1/generate", { ...req, seeds: [1, 2, 3] }), post("/v1/generate", req)]);
    const [again, , third] = await Promise.all(concurrent.map((r) => r.json()));
    expect(again.images.map((i: { data: string }) => i.data)).toEqual(first.images.map((i: { data: string }) => i.data));
    expect(third.images.map((i: { data: string }) => i.data)).toEqual(first.images.map((i: { data: string }) => i.data));
  });

  it("expands seed ranges, echoes params and reports timings", async () => {
    const body = await (await post("/v1/generate", { model: "sg-fixture", seeds: "3-6", format: "jpeg", quality: 80 })).json();
    expect(body.images.map((i: { seed: number }) => i.seed)).toEqual([3, 4, 5, 6]);
    expect(body.images[0].content_type).toBe("image/jpeg");
    expect(body.params).toMatchObject({ truncation_psi: 1, noise_mode: "const", seeds: [3, 4, 5, 6] });
    expect(body.timings.total_ms).toBeGreaterThan(0);
  });

  it("returns a presigned URL when asked for output=url", async () => {
    const body = await (await post("/v1/generate", { model: "sg-fixture", seeds: [1], output: "url" })).json();
    expect(body.images[0].url).toMatch(/^http/);
    const img = await fetch(body.images[0].url);
    expect(img.status).toBe(200);
    expect((await rgbOf(new Uint8Array(await img.arrayBuffer()))).width).toBe(32);
  });

  it("style-mixes, interpolates and uses random noise deterministically", async () => {
    const mixed = await (await post("/v1/generate", { model: "sg-fixture", seeds: [0], style_mix: { seeds: [5], layers: "4-7" } })).json();
    const plain = await (await post("/v1/generate", { model: "sg-fixture", seeds: [0] })).json();
    expect(mixed.images[0].data).not.toEqual(plain.images[0].data);
    // Mixed and plain requests that share a pass (and its one mapping run) give the bytes they give alone.
    const pair = { model: "sg-fixture", seeds: [1, 0], style_mix: { seeds: [5], layers: "4-7" } };
    const together = await Promise.all([pair, { model: "sg-fixture", seeds: [0] }, { model: "sg-fixture", seeds: [0], style_mix: { seeds: [5], layers: "4-7" } }].map(async (b) => (await post("/v1/generate", b)).json()));
    expect(together[0].images[1].data).toEqual(mixed.images[0].data);
    expect(together[1].images[0].data).toEqual(plain.images[0].data);
    expect(together[2].images[0].data).toEqual(mixed.images[0].data);
    const frames = await (await post("/v1/generate/interpolate", { model: "sg-fixture", seed_a: 0, seed_b: 1, frames: 4 })).json();
    expect(frames.images).toHaveLength(4);
    expect(frames.images[0].data).toEqual(plain.images[0].data);
    const r1 = await (await post("/v1/generate", { model: "sg-fixture", seeds: [3], noise_mode: "random" })).json();
    const r2 = await (await post("/v1/generate", { model: "sg-fixture", seeds: [3], noise_mode: "random" })).json();
    expect(r1.images[0].data).toEqual(r2.images[0].data);
  });

  it("batches 16 concurrent requests into fewer than 16 forward passes", async () => {
    const passes = async () => {
      const text = await (await fetch(`${stack.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith('ganserve_forward_passes_total{model="sg-fixture"}'));
      return line ? Number(line.split(" ").pop()) : 0;
    };
    const before = await passes();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => post("/v1/generate", { model: "sg-fixture", seeds: [100 + i] })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const used = (await passes()) - before;
    console.log(JSON.stringify({ test: "batching", concurrent_requests: 16, forward_passes: used }));
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(16);
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    for (const name of ["ganserve_http_requests_total", "ganserve_http_request_duration_seconds", "ganserve_batch_size", "ganserve_queue_depth", "ganserve_model_load_duration_seconds", "ganserve_model_cache_bytes", "ganserve_process_resident_memory_bytes"])
      expect(metrics).toContain(name);
  });
});

describe("translate", () => {
  it("reproduces the official CycleGAN test.py output (preprocess none, JSON and multipart)", async () => {
    const cases = JSON.parse(fs.readFileSync(path.join(CG, "test_py/cases.json"), "utf8"));
    for (const c of cases.cases) {
      const official = await rgbOf(fs.readFileSync(path.join(CG, "test_py", c.output)));
      const res = await post("/v1/translate", { model: "cg-fixture", image: b64(path.join(CG, "test_py", c.input)), preprocess: "none", direction: "AtoB" });
      expect(res.status).toBe(200);
      const ours = await rgbOf(Buffer.from((await res.json()).image.data, "base64"));
      expect(compareRgb(ours.data, official.data).maxDiff).toBeLessThanOrEqual(1);

      const form = new FormData();
      form.set("model", "cg-fixture");
      form.set("preprocess", "none");
      form.set("image", new Blob([fs.readFileSync(path.join(CG, "test_py", c.input))], { type: "image/png" }), c.input);
      const multi = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: auth(stack), body: form });
      expect(multi.status).toBe(200);
      const viaForm = await rgbOf(Buffer.from((await multi.json()).image.data, "base64"));
      expect(compareRgb(viaForm.data, official.data).maxDiff).toBeLessThanOrEqual(1);
    }
  });

  it("reproduces the official SPADE test.py output from a label-map PNG", async () => {
    const cases = JSON.parse(fs.readFileSync(path.join(SP, "test_py/cases.json"), "utf8"));
    for (const c of cases.cases) {
      const official = await rgbOf(fs.readFileSync(path.join(SP, "test_py", c.output)));
      const res = await post("/v1/translate", {
        model: "spade-fixture",
        label_map: b64(path.join(SP, "test_py", c.label)),
        instance_map: b64(path.join(SP, "test_py", c.instance)),
      });
      expect(res.status).toBe(200);
      const ours = await rgbOf(Buffer.from((await res.json()).image.data, "base64"));
      expect(compareRgb(ours.data, official.data).maxDiff).toBeLessThanOrEqual(1);
    }
  });

  it("round-trips odd-sized PNG and JPEG inputs back to their own size, deterministically", async () => {
    const base = sharp({ create: { width: 97, height: 61, channels: 3, background: { r: 200, g: 80, b: 30 } } });
    for (const format of ["png", "jpeg"] as const) {
      const input = await base.clone()[format]().toBuffer();
      const req = { model: "cg-fixture", image: input.toString("base64"), direction: "AtoB" };
      const a = await (await post("/v1/translate", req)).json();
      const b = await (await post("/v1/translate", req)).json();
      expect([a.image.width, a.image.height]).toEqual([97, 61]);
      const decoded = await rgbOf(Buffer.from(a.image.data, "base64"));
      expect([decoded.width, decoded.height]).toEqual([97, 61]);
      expect(a.image.data).toBe(b.image.data);
    }
    const unet = await (await post("/v1/translate", { model: "cgu-fixture", image: (await base.clone().png().toBuffer()).toString("base64") })).json();
    expect([unet.image.width, unet.image.height]).toEqual([97, 61]);
  });
});

describe("the TF.js engine (GANSERVE_ENGINE=tfjs)", () => {
  it("serves the same official generate.py pixels as the default ONNX engine", async () => {
    const tfjsStack = await startStack({ dataDir: stack.dataDir, s3Port: undefined, env: { GANSERVE_ENGINE: "tfjs" } });
    try {
      const cases = JSON.parse(fs.readFileSync(path.join(SG, "generate_py/cases.json"), "utf8"));
      const res = await fetch(`${tfjsStack.url}/v1/generate`, {
        method: "POST",
        headers: { ...auth(tfjsStack), "content-type": "application/json" },
        body: JSON.stringify({ model: "sg-fixture", seeds: cases.cases.map((c: { seed: number }) => c.seed), truncation_psi: cases.truncation_psi, noise_mode: cases.noise_mode }),
      });
      expect(res.status).toBe(200);
      const body = await res.json();
      for (const [i, c] of cases.cases.entries()) {
        const ours = await rgbOf(Buffer.from(body.images[i].data, "base64"));
        const official = await rgbOf(fs.readFileSync(path.join(SG, "generate_py", c.file)));
        const diff = compareRgb(ours.data, official.data);
        expect(diff.maxDiff, `seed ${c.seed}`).toBeLessThanOrEqual(1);
        expect(diff.fraction, `seed ${c.seed}`).toBeLessThanOrEqual(0.001);
      }
    } finally {
      await tfjsStack.stop();
    }
  });
});
