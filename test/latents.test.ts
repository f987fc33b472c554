/**
 * Latent space over HTTP (#27): w out and back in, ws, SeFa and uploaded directions, edits, and the 4xx answers
 * for latents and edits that do not fit the model. Against the real stack with a demo model and an imported
 * official checkpoint.
 */
import fs from "node:fs";
import path from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latentsDir } from "./fixtures/index.ts";
import { compareRgb, importFixtureModels, rgbOf } from "./helpers/models.ts";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

let stack: Stack;
const call = (method: string, route: string, body?: unknown) =>
  fetch(`${stack.url}${route}`, {
    method,
    headers: { ...auth(stack), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const post = (route: string, body: unknown) => call("POST", route, body);
const generate = async (body: Record<string, unknown>) => {
  const res = await post("/v1/generate", body);
  const json = await res.json();
  if (res.status !== 200) throw new Error(`generate ${res.status}: ${JSON.stringify(json)}`);
  return json;
};
const f32 = (b64: string) => {
  const b = Buffer.from(b64, "base64");
  return Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));
};

beforeAll(async () => {
  const dataDir = tempDataDir();
  importFixtureModels(dataDir);
  stack = await startStack({ dataDir, env: { GANSERVE_DEMO_MODELS: "true" } });
});
afterAll(async () => {
  await stack?.stop();
});

describe("w out, w in", () => {
  it("generate returns each image's w, and that w gives the same bytes", async () => {
    const first = await generate({ model: "fashion-stylegan2", seeds: [3, 7], truncation_psi: 0.7, return_latents: true });
    expect(first.images).toHaveLength(2);
    for (const img of first.images) expect(f32(img.w)).toHaveLength(64);
    expect(first.images[0].w).not.toBe(first.images[1].w);
    const again = await generate({ model: "fashion-stylegan2", w: first.images.map((i: { w: string }) => i.w) });
    expect(again.images.map((i: { data: string }) => i.data)).toEqual(first.images.map((i: { data: string }) => i.data));
    // The echo leaves out the latents given: they can be megabytes, and the caller has them.
    expect(again.params).not.toHaveProperty("w");
    expect(again.params.model).toBe("fashion-stylegan2");
    // JSON numbers are the same float32 values.
    const json = await generate({ model: "fashion-stylegan2", seeds: [3], truncation_psi: 0.7, return_latents: true, latent_format: "json" });
    expect(json.images[0].w).toEqual(f32(first.images[0].w));
    const fromJson = await generate({ model: "fashion-stylegan2", w: [json.images[0].w] });
    expect(fromJson.images[0].data).toBe(first.images[0].data);
  });

  it("return_latents gives ws when layers differ, and ws round-trips too", async () => {
    const req = { model: "sg-fixture", seeds: [5], truncation_psi: 0.5, truncation_cutoff: 3 };
    const first = await generate({ ...req, return_latents: true });
    expect(first.images[0].w).toBeUndefined();
    expect(f32(first.images[0].ws)).toHaveLength(8 * 32);
    const plain = await generate(req);
    expect(first.images[0].data).toBe(plain.images[0].data);
    const back = await generate({ model: "sg-fixture", ws: [first.images[0].ws] });
    expect(back.images[0].data).toBe(plain.images[0].data);
    expect(back.params).not.toHaveProperty("ws");
    const nested = await generate({ ...req, return_latents: "ws", latent_format: "json" });
    expect(nested.images[0].ws).toHaveLength(8);
    expect((await generate({ model: "sg-fixture", ws: [nested.images[0].ws] })).images[0].data).toBe(plain.images[0].data);
  });

  it("refuses a w of the wrong shape, non-finite values and two inputs, naming the expected shape", async () => {
    const short = await post("/v1/generate", { model: "sg-fixture", w: [[1, 2, 3]] });
    expect(short.status).toBe(422);
    const body = await short.json();
    expect(body.error.code).toBe("unprocessable");
    expect(body.error.details.expected_shape).toEqual([32]);
    expect(body.error.message).toContain("[32]");
    const nan = Buffer.alloc(32 * 4);
    nan.writeFloatLE(Number.NaN, 8);
    const bad = await post("/v1/generate", { model: "sg-fixture", w: [nan.toString("base64")] });
    expect(bad.status).toBe(422);
    expect((await bad.json()).error.message).toMatch(/not finite/);
    const rows = await post("/v1/generate", { model: "sg-fixture", ws: [[Array(32).fill(0)]] });
    expect(rows.status).toBe(422);
    expect((await rows.json()).error.details.expected_shape).toEqual([8, 32]);
    const both = await post("/v1/generate", { model: "sg-fixture", seeds: [1], w: [Array(32).fill(0)] });
    expect(both.status).toBe(400);
    const none = await post("/v1/generate", { model: "sg-fixture" });
    expect(none.status).toBe(400);
  });
});

describe("directions and edits", () => {
  it("lists SeFa directions for the shipped and the imported StyleGAN2 versions", async () => {
    for (const [model, wDim] of [
      ["fashion-stylegan2", 64],
      ["sg-fixture", 32],
    ] as const) {
      const res = await call("GET", `/v1/models/${model}/versions/latest/directions`);
      expect(res.status).toBe(200);
      const list = await res.json();
      expect(list).toMatchObject({ model, version: "v1", w_dim: wDim });
      const sefa = list.directions.filter((d: { kind: string }) => d.kind === "sefa");
      expect(sefa.length).toBe(Math.min(32, wDim));
      for (let k = 1; k < sefa.length; k++) expect(sefa[k].eigenvalue).toBeLessThanOrEqual(sefa[k - 1].eigenvalue);
      const one = await (await call("GET", `/v1/models/${model}/versions/v1/directions/sefa-0`)).json();
      expect(Math.hypot(...one.vector)).toBeCloseTo(1, 5);
    }
    const cg = await call("GET", "/v1/models/cg-fixture/versions/v1/directions");
    expect(cg.status).toBe(422);
  });

  it("a strength-0 edit is the identity byte for byte; a real one changes the image by the direction", async () => {
    const req = { model: "fashion-stylegan2", seeds: [11], truncation_psi: 0.7 };
    const plain = await generate({ ...req, return_latents: true });
    const zero = await generate({ ...req, edits: [{ direction: "sefa-0", strength: 0 }] });
    expect(zero.images[0].data).toBe(plain.images[0].data);
    const moved = await generate({ ...req, edits: [{ direction: "sefa-0", strength: 5 }], return_latents: true });
    expect(moved.images[0].data).not.toBe(plain.images[0].data);
    const dir = (await (await call("GET", "/v1/models/fashion-stylegan2/versions/v1/directions/sefa-0")).json()).vector as number[];
    const w0 = f32(plain.images[0].w);
    const w1 = f32(moved.images[0].w);
    for (let j = 0; j < 64; j++) expect(w1[j]).toBeCloseTo(w0[j] + 5 * dir[j], 5);
    // Only on layers 0-1: ws then differ per layer, and feeding them back gives the edited image.
    const layered = await generate({ ...req, edits: [{ direction: "sefa-0", strength: 5, layers: "0-1" }], return_latents: true });
    expect(layered.images[0].ws).toBeDefined();
    expect((await generate({ model: "fashion-stylegan2", ws: [layered.images[0].ws] })).images[0].data).toBe(layered.images[0].data);
  });

  it("uploaded directions: stored unit length, listed, used; another model's name is 404; out-of-range strength 422", async () => {
    const vec = Array.from({ length: 32 }, (_, j) => (j === 3 ? 2 : 0));
    const put = await post("/v1/directions", { model: "sg-fixture", name: "my-dir", vector: vec, description: "axis 3" });
    expect(put.status).toBe(200);
    expect((await put.json()).vector[3]).toBe(1);
    const list = await (await call("GET", "/v1/models/sg-fixture/versions/v1/directions")).json();
    expect(list.directions).toContainEqual({ name: "my-dir", kind: "uploaded", description: "axis 3" });
    const a = await generate({ model: "sg-fixture", seeds: [1], return_latents: "w", latent_format: "json" });
    const b = await generate({ model: "sg-fixture", seeds: [1], edits: [{ direction: "my-dir", strength: -1.5 }], return_latents: "w", latent_format: "json" });
    expect(b.images[0].w[3]).toBeCloseTo(a.images[0].w[3] - 1.5, 5);
    const other = await post("/v1/generate", { model: "fashion-stylegan2", seeds: [1], edits: [{ direction: "my-dir", strength: 1 }] });
    expect(other.status).toBe(404);
    expect((await other.json()).error.details.reason).toBe("direction_not_found");
    const range = await post("/v1/generate", { model: "sg-fixture", seeds: [1], edits: [{ direction: "sefa-0", strength: 1000 }] });
    expect(range.status).toBe(422);
    expect((await range.json()).error.details).toMatchObject({ reason: "strength_out_of_range", max: 100 });
    const wrong = await post("/v1/directions", { model: "sg-fixture", name: "short", vector: [1, 2] });
    expect(wrong.status).toBe(422);
    expect((await post("/v1/directions", { model: "sg-fixture", name: "sefa-3", vector: vec })).status).toBe(400);
    expect((await call("DELETE", "/v1/models/sg-fixture/versions/v1/directions/my-dir")).status).toBe(204);
    expect((await call("GET", "/v1/models/sg-fixture/versions/v1/directions/my-dir")).status).toBe(404);
  });
});

describe("projected_w: NVlabs' .npz → the images generate.py --projected-w made (scripts/projected_w_fixture.py)", () => {
  const dir = path.join(latentsDir, "projected_w");
  const cases = JSON.parse(fs.readFileSync(path.join(dir, "cases.json"), "utf8")).cases as { npz: string; images: string[] }[];
  for (const c of cases)
    it(`${c.npz}: every image within 1/255 of the official one`, async () => {
      const body = await generate({ model: "sg-fixture", projected_w: fs.readFileSync(path.join(dir, c.npz)).toString("base64"), noise_mode: "const" });
      expect(body.images).toHaveLength(c.images.length);
      expect(body.params).not.toHaveProperty("projected_w");
      for (const [i, file] of c.images.entries()) {
        const ours = await rgbOf(Buffer.from(body.images[i].data, "base64"));
        const theirs = await rgbOf(fs.readFileSync(path.join(dir, file)));
        const diff = compareRgb(ours.data, theirs.data);
        expect(diff.maxDiff).toBeLessThanOrEqual(1);
      }
    });

  it("refuses an .npz of another model's shape with 422 naming the expected shape", async () => {
    const npz = fs.readFileSync(path.join(dir, "projected_w.npz")).toString("base64");
    const res = await post("/v1/generate", { model: "fashion-stylegan2", projected_w: npz });
    expect(res.status).toBe(422);
    const err = (await res.json()).error;
    expect(err.details).toMatchObject({ expected_shape: ["n", 8, 64], shape: [1, 8, 32] });
    const junk = await post("/v1/generate", { model: "sg-fixture", projected_w: Buffer.from("not an npz").toString("base64") });
    expect(junk.status).toBe(422);
  });
});

describe("keyframe videos", () => {
  it("3 seeds × 30 frames loop as an animated WebP whose every frame is the single generate of its w", async () => {
    const req = { model: "fashion-stylegan2", truncation_psi: 0.7 };
    const res = await post("/v1/generate/video", { ...req, keyframes: { seeds: [4, 8, 15] }, frames_per_transition: 30 });
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.video).toMatchObject({ content_type: "image/webp", frames: 90, width: 32, height: 32 });
    const webp = Buffer.from(body.video.data, "base64");
    const { data, info } = await sharp(webp, { pages: -1 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect(info.pages).toBe(90);
    const per = 32 * 32 * 3;
    // The keyframes' w's, then every frame's w by the documented formula (linear in w, t = f / 30).
    const keys = (await generate({ ...req, seeds: [4, 8, 15], return_latents: true, latent_format: "json" })).images.map((i: { w: number[] }) => i.w);
    const ws = Array.from({ length: 90 }, (_, f) => {
      const [a, b, t] = [Math.floor(f / 30), (Math.floor(f / 30) + 1) % 3, (f % 30) / 30];
      return keys[a].map((x: number, j: number) => Math.fround(x + (keys[b][j] - x) * t));
    });
    let worst = 0;
    let differing = 0;
    for (let start = 0; start < 90; start += 45) {
      const single = await generate({ model: "fashion-stylegan2", w: ws.slice(start, start + 45) });
      for (const [k, img] of single.images.entries()) {
        const f = start + k;
        const want = await rgbOf(Buffer.from(img.data, "base64"));
        const diff = compareRgb(new Uint8Array(data.subarray(f * per, (f + 1) * per)), want.data);
        worst = Math.max(worst, diff.maxDiff);
        differing += diff.differing;
      }
    }
    expect(worst).toBe(0);
    expect(differing).toBe(0);
  });

  it("GIF, slerp, grids, and the frame budget refused with 422 before any work", async () => {
    const gif = await post("/v1/generate/video", {
      model: "sg-fixture",
      keyframes: { seeds: [1, 2, 3, 4] },
      grid: { cols: 2, rows: 1 },
      interpolation: "slerp",
      loop: false,
      frames_per_transition: 3,
      format: "gif",
    });
    expect(gif.status).toBe(200);
    const g = await gif.json();
    expect(g.video).toMatchObject({ content_type: "image/gif", frames: 4, width: 64, height: 32 });
    const meta = await sharp(Buffer.from(g.video.data, "base64"), { pages: -1 }).metadata();
    expect(meta.pages).toBe(4);
    const big = await post("/v1/generate/video", { model: "sg-fixture", keyframes: { seeds: [1, 2, 3] }, frames_per_transition: 1000 });
    expect(big.status).toBe(422);
    expect((await big.json()).error.details).toMatchObject({ reason: "frame_budget", frames: 3000, max: 1800 });
    const uneven = await post("/v1/generate/video", { model: "sg-fixture", keyframes: { seeds: [1, 2, 3] }, grid: { cols: 2, rows: 1 } });
    expect(uneven.status).toBe(400);
    const slerpW = await post("/v1/generate/video", { model: "sg-fixture", keyframes: { w: [Array(32).fill(0)] }, interpolation: "slerp" });
    expect(slerpW.status).toBe(422);
  });
});

describe("projection over HTTP", () => {
  it("projects a generated image and returns w, image, PSNR and the loss curve; refuses another size unless resize", async () => {
    const target = (await generate({ model: "sg-fixture", seeds: [9] })).images[0].data;
    const res = await post("/v1/generate/project", { model: "sg-fixture", image: target, steps: 12, w_avg_samples: 500, latent_format: "json", progress_video: true });
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.w).toHaveLength(32);
    expect(body.loss).toHaveLength(12);
    expect(body.image).toMatchObject({ content_type: "image/png", width: 32, height: 32 });
    expect(Number.isFinite(body.psnr)).toBe(true);
    // One frame per step at 12 steps (a snapshot every steps/50 steps, at least every step).
    expect(body.progress_video).toMatchObject({ content_type: "image/webp", width: 32, height: 32 });
    expect((await sharp(Buffer.from(body.progress_video.data, "base64"), { pages: -1 }).metadata()).pages).toBe(12);
    const big = await sharp(Buffer.from(target, "base64")).resize(48, 48).png().toBuffer();
    const wrong = await post("/v1/generate/project", { model: "sg-fixture", image: big.toString("base64"), steps: 1 });
    expect(wrong.status).toBe(422);
    expect((await wrong.json()).error.details).toMatchObject({ reason: "wrong_size", resolution: 32 });
    const resized = await post("/v1/generate/project", { model: "sg-fixture", image: big.toString("base64"), steps: 2, w_avg_samples: 100, resize: true });
    expect(resized.status).toBe(200);
  });
});

describe("as predictions", () => {
  it("a video runs as task 'video' with progress counted in frames; a projection as 'project'", async () => {
    const res = await fetch(`${stack.url}/v1/predictions`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json", Prefer: "wait=60" },
      body: JSON.stringify({ model: "sg-fixture", task: "video", input: { keyframes: { seeds: [1, 2] }, frames_per_transition: 5 } }),
    });
    const rec = await res.json();
    expect(res.status).toBe(201);
    expect(rec).toMatchObject({ status: "succeeded", progress: { completed: 10, total: 10 } });
    expect(rec.output[0]).toMatchObject({ content_type: "image/webp", width: 32, height: 32 });
    const frames = await sharp(Buffer.from(await (await fetch(rec.output[0].url)).arrayBuffer()), { pages: -1 }).metadata();
    expect(frames.pages).toBe(10);
    const over = await post("/v1/predictions", { model: "sg-fixture", task: "video", input: { keyframes: { seeds: [1, 2] }, frames_per_transition: 1000 } });
    expect(over.status).toBe(422);
    const proj = await fetch(`${stack.url}/v1/predictions`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json", Prefer: "wait=60" },
      body: JSON.stringify({ model: "sg-fixture", task: "project", input: { image: (await generate({ model: "sg-fixture", seeds: [2] })).images[0].data, steps: 3, w_avg_samples: 100 } }),
    });
    const p = await proj.json();
    expect(p).toMatchObject({ status: "succeeded", progress: { completed: 3, total: 3 } });
    expect(typeof p.output[0].w).toBe("string");
  });
});

describe("hostile latent inputs", () => {
  const nasty = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom("", "AAAA", "AAA", "////", "UEsDBAAA", "k05VTVBZ", "a".repeat(5000), "NaN", "sefa-99", "sefa-01", "SEFA-0", "../x"),
    fc.array(fc.double(), { maxLength: 40 }),
    fc.array(fc.array(fc.double({ noNaN: true }), { maxLength: 40 }), { maxLength: 10 }),
    fc.array(fc.record({ direction: fc.string({ maxLength: 8 }), strength: fc.double(), layers: fc.oneof(fc.string({ maxLength: 5 }), fc.array(fc.integer({ min: -2, max: 70 }))) }), { maxLength: 3 }),
  );
  const routes = [
    ["/v1/generate", ["seeds", "w", "ws", "projected_w", "edits", "return_latents", "latent_format", "style_mix", "truncation_cutoff"]],
    ["/v1/generate/video", ["keyframes", "frames_per_transition", "interpolation", "loop", "grid", "format", "fps", "quality"]],
    ["/v1/generate/project", ["image", "resize", "steps", "w_avg_samples", "learning_rate", "class_idx"]],
    ["/v1/directions", ["name", "vector", "description", "version"]],
  ] as const;
  for (const [route, keys] of routes)
    it(`${route}: random bodies are answered with a coded 4xx, never a 5xx`, async () => {
      const body = fc.record({ model: fc.constantFrom("sg-fixture", "fashion-stylegan2", "cg-fixture") }).chain((base) =>
        fc.dictionary(fc.constantFrom(...keys), nasty, { maxKeys: 4 }).map((d) => ({ ...base, ...d, ...(route.endsWith("project") ? { steps: 1, w_avg_samples: 100 } : {}) })),
      );
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const res = await post(route, b);
          const text = await res.text();
          expect(res.status, `${route} ${JSON.stringify(b).slice(0, 300)} → ${text.slice(0, 300)}`).toBeLessThan(500);
          if (res.status >= 400) expect(JSON.parse(text).error.code).toMatch(/^[a-z_]+$/);
        }),
        { numRuns: 25, seed: 27 },
      );
    });
});
