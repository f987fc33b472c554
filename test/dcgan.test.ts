/**
 * DCGAN through the HTTP API (issue #26's parity acceptance): each fixture of test/fixtures/dcgan (torch 2.13,
 * random weights and randomised BatchNorm running statistics, made by scripts/dcgan-fixture.py) is imported
 * with the real `ganserve import`, as a user would import their `generator.pth`, and `/v1/generate` with seeds
 * must give back torch's `torch.manual_seed(seed); G(torch.randn(1, *z_shape))` in eval mode within 1/255 per
 * pixel, on the ONNX engine (the default) and on TF.js. Grayscale models come back as one-channel PNGs.
 */
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensors, writeSafetensors } from "@ganserve/core/checkpoints/safetensors";
import { toFloat32 } from "@ganserve/core/checkpoints/tensor";
import { seedToZ } from "@ganserve/core/random/randomstate";
import { dcganDir } from "./fixtures/index.ts";
import { ganserve, importModel } from "./helpers/models.ts";
import { auth, startStack, type Stack, tempDataDir } from "./helpers/stack.ts";

/** Each fixture, the file a user has (a zip .pth state_dict, or the whole module saved with torch.save(G)), and what its weights cannot say. */
const MODELS: { fixture: string; file: string; set?: string[] }[] = [
  { fixture: "fc_deconv_nz100_rgb64", file: "weights.pth" },
  { fixture: "main_nz100_rgb64", file: "weights.pth" },
  { fixture: "main_nz100_gray32", file: "weights.pth" },
  { fixture: "mlp_nz100_gray28", file: "weights.pth", set: ["hidden_act=relu"] },
  { fixture: "mlp_bn_lrelu_gray28", file: "weights.pth", set: ["hidden_act=leaky_relu", "leaky_slope=0.2", "bn_eps=0.8"] },
  { fixture: "sequential_mlp_gray28", file: "module.pth", set: ["hidden_act=relu"] },
];
const SEEDS = [0, 1, 42];
const nameOf = (fixture: string) => fixture.replaceAll("_", "-");

let stack: Stack;
let dataDir: string;
const post = (s: Stack, route: string, body: unknown) =>
  fetch(`${s.url}${route}`, { method: "POST", headers: { ...auth(s), "content-type": "application/json" }, body: JSON.stringify(body) });

/** The fixture's inputs and torch's outputs by name (z_<seed> as drawn by torch, img_<seed> NCHW in [-1, 1]). */
const io = (fixture: string) => readSafetensors(new Uint8Array(fs.readFileSync(path.join(dcganDir, fixture, "io.safetensors"))), "io.safetensors").tensors;

/** The PNG's own channel count, and its pixels as sharp decodes them (RGB, gray repeated). */
async function pixels(b64: string) {
  const bytes = Buffer.from(b64, "base64");
  const { channels } = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels, stride: info.channels };
}

/** Largest |PNG value − torch's image mapped to [0, 255]| over every pixel and channel, in 1/255 units. */
function maxDiffFromTorch(png: { data: Uint8Array; width: number; channels: number; stride: number }, img: Float32Array, shape: number[]) {
  const [, c, h, w] = shape;
  expect(png.channels).toBe(c);
  expect(png.width).toBe(w);
  let max = 0;
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const want = ((img[(k * h + y) * w + x] + 1) / 2) * 255;
        max = Math.max(max, Math.abs(png.data[(y * w + x) * png.stride + k] - Math.min(255, Math.max(0, want))));
      }
  return max;
}

async function expectTorchPixels(s: Stack, fixture: string) {
  const res = await post(s, "/v1/generate", { model: nameOf(fixture), seeds: SEEDS });
  expect(res.status, `${fixture}: ${await res.clone().text()}\n${res.status === 200 ? "" : s.output().slice(-3000)}`).toBe(200);
  const body = await res.json();
  expect(body.images.map((i: { seed: number }) => i.seed)).toEqual(SEEDS);
  const tensors = io(fixture);
  for (const [i, seed] of SEEDS.entries()) {
    expect(body.images[i].content_type).toBe("image/png");
    const want = tensors.get(`img_${seed}`)!;
    const diff = maxDiffFromTorch(await pixels(body.images[i].data), toFloat32(want), want.shape);
    expect(diff, `${fixture} seed ${seed}`).toBeLessThanOrEqual(1);
  }
}

beforeAll(async () => {
  dataDir = tempDataDir();
  for (const m of MODELS) importModel(path.join(dcganDir, m.fixture, m.file), nameOf(m.fixture), dataDir, (m.set ?? []).flatMap((x) => ["--set", x]));
  stack = await startStack({ dataDir });
}, 600_000);
afterAll(async () => {
  await stack?.stop();
});

describe("DCGAN imports served by /v1/generate", () => {
  it("lists each as a dcgan model whose seeds are torch's", async () => {
    const { models } = await (await fetch(`${stack.url}/v1/models`, { headers: auth(stack) })).json();
    const byName = Object.fromEntries(models.map((m: { name: string }) => [m.name, m]));
    expect(byName["main-nz100-gray32"]).toMatchObject({ family: "dcgan", input: { kind: "seeds", layout: "main", z_dim: 100, z_shape: [100, 1, 1], channels: 1, resolution: 32 }, defaults: { seed_rng: "torch" } });
    expect(byName["fc-deconv-nz100-rgb64"]).toMatchObject({ family: "dcgan", input: { layout: "fc_deconv", channels: 3, resolution: 64 } });
    expect(byName["sequential-mlp-gray28"]).toMatchObject({ family: "dcgan", input: { layout: "mlp", channels: 1, resolution: 28 } });
  });

  for (const m of MODELS) it(`${m.fixture}: seeds reproduce torch within 1/255 per pixel (ONNX engine)`, () => expectTorchPixels(stack, m.fixture));

  it("z given directly is the same image as the seed that drew it; a wrong length is 422 naming the shape", async () => {
    const f = "main_nz100_gray32";
    const z0 = Array.from(toFloat32(io(f).get("z_0")!));
    const [bySeed, byZ] = await Promise.all([post(stack, "/v1/generate", { model: nameOf(f), seeds: [0] }), post(stack, "/v1/generate", { model: nameOf(f), z: [z0] })]);
    expect(byZ.status).toBe(200);
    const zBody = await byZ.json();
    expect(zBody.images[0].data).toBe((await bySeed.json()).images[0].data);
    // The echo leaves the z given out (the caller has it) but keeps the rest of the request.
    expect(zBody.params).not.toHaveProperty("z");
    expect(zBody.params).toMatchObject({ model: nameOf(f), version: zBody.version });
    const bad = await post(stack, "/v1/generate", { model: nameOf(f), z: [z0.slice(0, 99)] });
    expect(bad.status).toBe(422);
    expect((await bad.json()).error).toMatchObject({ code: "unprocessable", details: { field: "z[0]", expected_shape: [100, 1, 1], shape: [99] } });
  });

  it("seed_rng numpy draws z with RandomState instead, as the request asks", async () => {
    const f = "fc_deconv_nz100_rgb64";
    const [numpy, viaZ, torch] = await Promise.all([
      post(stack, "/v1/generate", { model: nameOf(f), seeds: [5], seed_rng: "numpy" }),
      post(stack, "/v1/generate", { model: nameOf(f), z: [Array.from(seedToZ(5, 100))] }),
      post(stack, "/v1/generate", { model: nameOf(f), seeds: [5] }),
    ]);
    const [a, b, c] = await Promise.all([numpy.json(), viaZ.json(), torch.json()]);
    expect(a.images[0].data).toBe(b.images[0].data);
    expect(a.images[0].data).not.toBe(c.images[0].data);
    expect(a.params.seed_rng).toBe("numpy");
  });

  it("a batch of seeds, alone or beside other requests, gives the same bytes", async () => {
    const req = { model: "main-nz100-rgb64", seeds: "0-5" };
    const alone = await (await post(stack, "/v1/generate", req)).json();
    expect(alone.images).toHaveLength(6);
    const together = await Promise.all([post(stack, "/v1/generate", req), post(stack, "/v1/generate", { model: "main-nz100-rgb64", seeds: [9, 10] })]);
    const again = await together[0].json();
    expect(again.images.map((i: { data: string }) => i.data)).toEqual(alone.images.map((i: { data: string }) => i.data));
  });

  it("refuses StyleGAN2-only parameters on a DCGAN rather than ignoring them", async () => {
    const res = await post(stack, "/v1/generate", { model: "main-nz100-rgb64", seeds: [0], truncation_psi: 0.7 });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatchObject({ code: "unsupported_parameter", details: { field: "truncation_psi" } });
  });

  it("predictions run a DCGAN generate too", async () => {
    const res = await fetch(`${stack.url}/v1/predictions`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json", prefer: "wait=20" },
      body: JSON.stringify({ model: "main-nz100-gray32", input: { seeds: [0], output: "base64" } }),
    });
    expect([200, 201, 202]).toContain(res.status);
    let p = await res.json();
    // Polled until it ends (bounded by the test timeout, not by a time assertion).
    while (!["succeeded", "failed", "canceled"].includes(p.status)) {
      await new Promise((r) => setTimeout(r, 200));
      p = await (await fetch(`${stack.url}/v1/predictions/${p.id}`, { headers: auth(stack) })).json();
    }
    expect(p.status, JSON.stringify(p.error)).toBe("succeeded");
    const want = io("main_nz100_gray32").get("img_0")!;
    expect(maxDiffFromTorch(await pixels(p.output[0].data), toFloat32(want), want.shape)).toBeLessThanOrEqual(1);
  });

  it("the TF.js engine reproduces torch too", async () => {
    const tfjs = await startStack({ dataDir, env: { GANSERVE_ENGINE: "tfjs" } });
    try {
      for (const m of MODELS) await expectTorchPixels(tfjs, m.fixture);
    } finally {
      await tfjs.stop();
    }
  }, 300_000);
});

describe("DCGAN imports that cannot be served", () => {
  it("BatchNorm without running statistics is a clear import error, and nothing is published", () => {
    const f = "main_nz100_gray32";
    const { tensors } = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dcganDir, f, "weights.safetensors"))), "weights.safetensors");
    for (const k of [...tensors.keys()]) if (/running_(mean|var)$/.test(k)) tensors.delete(k);
    const file = path.join(dataDir, "no-stats.safetensors");
    fs.writeFileSync(file, writeSafetensors(tensors));
    const r = ganserve(["import", file, "--name", "no-stats"], dataDir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/BatchNorm main\.1 has no running statistics/);
  });

  it("a state_dict no layout explains names its first unexpected tensor and the layouts tried", () => {
    const f = "main_nz100_gray32";
    const { tensors } = readSafetensors(new Uint8Array(fs.readFileSync(path.join(dcganDir, f, "weights.safetensors"))), "weights.safetensors");
    tensors.set("main.3.conv.weight", tensors.get("main.3.weight")!);
    const file = path.join(dataDir, "odd.safetensors");
    fs.writeFileSync(file, writeSafetensors(tensors));
    const r = ganserve(["import", file, "--name", "odd", "--family", "dcgan"], dataDir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/first unexpected tensor main\.3\.conv\.weight/);
    expect(r.stderr).toMatch(/DCGAN layouts tried: .*main/);
  });
});
