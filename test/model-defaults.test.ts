/**
 * Over HTTP, on the shipped demo models: a field left out of a request takes the default that /v1/models lists
 * for the model (never "listed, then refused"), and a seed that a model has no use for is refused with a
 * machine-readable code instead of being ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeLabelPng } from "@ganserve/core/images/label-png";
import { auth, startStack, type Stack } from "./helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
});
afterAll(async () => {
  await stack?.stop();
});

const post = async (route: string, body: unknown) => {
  const res = await fetch(`${stack.url}${route}`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};
const model = async (name: string) => (await fetch(`${stack.url}/v1/models/${name}`, { headers: auth(stack) })).json();
const labelMap = async () => {
  const [w, h] = [64, 64];
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) data.fill(y < h / 2 ? 0 : 3, y * w, (y + 1) * w); // sky over grass
  return Buffer.from(await encodeLabelPng({ width: w, height: h, data })).toString("base64");
};

describe("defaults listed by /v1/models are applied", () => {
  it("generate and interpolate on the class-conditional fashion-stylegan2 without class_idx use its default class", async () => {
    const info = await model("fashion-stylegan2");
    expect(info.defaults.class_idx).toBe(0);
    const omitted = await post("/v1/generate", { model: "fashion-stylegan2", seeds: "0-3", truncation_psi: 0.7 });
    expect(omitted.status, JSON.stringify(omitted.body)).toBe(200);
    expect(omitted.body.params.class_idx).toBe(0);
    const explicit = await post("/v1/generate", { model: "fashion-stylegan2", seeds: "0-3", truncation_psi: 0.7, class_idx: info.defaults.class_idx });
    expect(omitted.body.images.map((i: { data: string }) => i.data)).toEqual(explicit.body.images.map((i: { data: string }) => i.data));
    const other = await post("/v1/generate", { model: "fashion-stylegan2", seeds: "0-3", truncation_psi: 0.7, class_idx: 5 });
    expect(other.body.images[0].data).not.toBe(omitted.body.images[0].data);

    const frames = await post("/v1/generate/interpolate", { model: "fashion-stylegan2", seed_a: 0, seed_b: 1, frames: 3 });
    expect(frames.status, JSON.stringify(frames.body)).toBe(200);
    expect(frames.body.params.class_idx).toBe(0);
  });

  it("every demo model answers a request that gives only what it has no default for, and echoes its defaults", async () => {
    const png = await labelMap();
    const emoji = Buffer.from(await encodeLabelPng({ width: 8, height: 8, data: new Uint8Array(64) })).toString("base64"); // any decodable PNG
    const minimal: Record<string, [string, Record<string, unknown>]> = {
      "fashion-stylegan2": ["/v1/generate", { seeds: [1] }],
      "emoji-cyclegan": ["/v1/translate", { image: emoji }],
      "scenes-spade": ["/v1/translate", { label_map: png }],
      "fashion-dcgan": ["/v1/generate", { seeds: [1] }],
    };
    for (const [name, [route, body]] of Object.entries(minimal)) {
      const { defaults } = await model(name);
      const res = await post(route, { model: name, ...body });
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(200);
      for (const [field, value] of Object.entries(defaults)) expect(res.body.params[field], `${name} ${field}`).toEqual(value);
    }
  });
});

describe("seed on translate", () => {
  it("scenes-spade (no VAE, no z input) lists no seed, and refuses one with 422 unsupported_parameter, JSON and multipart", async () => {
    const info = await model("scenes-spade");
    expect(info.input).toMatchObject({ style_image: false, seed: false });
    expect(info.defaults).not.toHaveProperty("seed");
    const png = await labelMap();

    const without = await post("/v1/translate", { model: "scenes-spade", label_map: png });
    expect(without.status).toBe(200);
    expect(without.body.params).not.toHaveProperty("seed");

    for (const seed of [0, 7]) {
      const res = await post("/v1/translate", { model: "scenes-spade", label_map: png, seed });
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: "unsupported_parameter", details: { field: "seed", reason: "no_z_input" } });
      expect(res.body.error.message).toMatch(/^seed: .*use_vae is off/);
    }

    const form = new FormData();
    form.set("model", "scenes-spade");
    form.set("seed", "7");
    form.set("label_map", new Blob([Buffer.from(png, "base64")], { type: "image/png" }), "labels.png");
    const multipart = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: auth(stack), body: form });
    expect(multipart.status).toBe(422);
    expect((await multipart.json()).error.code).toBe("unsupported_parameter");
  });

  it("a CycleGAN refuses a seed too", async () => {
    const image = Buffer.from(await encodeLabelPng({ width: 8, height: 8, data: new Uint8Array(64) })).toString("base64");
    const res = await post("/v1/translate", { model: "emoji-cyclegan", image, seed: 1 });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("unsupported_parameter");
  });
});
