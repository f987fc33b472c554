/**
 * The demo models shipped in models/ load, produce non-degenerate output (finite, not constant, varied
 * across seeds or inputs), and a fresh stack registers all three so the playground opens on them.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_RECIPES } from "@ganserve/core/demo/recipes";
import { loadModelFolder } from "@ganserve/core/eval/load";
import type { CycleGANEngine, Engine, SpadeEngine, StyleGAN2Engine } from "@ganserve/core/inference/engine";
import { tfjsEngines } from "@ganserve/core/inference/engines/tfjs";
import { seedToZ } from "@ganserve/core/random/randomstate";
import { torchSeedToZ } from "@ganserve/core/random/torch-randn";
import { auth, repoRoot, startStack, type Stack } from "./helpers/stack.ts";

const DEMOS = { "fashion-stylegan2": "stylegan2", "emoji-cyclegan": "cyclegan", "scenes-spade": "spade", "fashion-dcgan": "dcgan" } as const;

function stats(a: Float32Array) {
  let min = Infinity;
  let max = -Infinity;
  let finite = true;
  for (const v of a) {
    if (!Number.isFinite(v)) finite = false;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { finite, range: max - min };
}

const meanAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

async function outputs(engine: Engine): Promise<[Float32Array, Float32Array]> {
  switch (engine.family) {
    case "stylegan2": {
      const e = engine as StyleGAN2Engine;
      const run = async (seed: number) => {
        const c = e.cDim > 0 ? new Float32Array(e.cDim).map((_, i) => (i === seed % e.cDim ? 1 : 0)) : null;
        return e.synthesis(await e.mapping(seedToZ(seed, e.zDim), c, 1, { truncation_psi: 1 }), 1, { noise_mode: "const" });
      };
      return [await run(0), await run(7)];
    }
    case "cyclegan": {
      const e = engine as CycleGANEngine;
      const s = 32;
      const img = (phase: number) => new Float32Array(s * s * 3).map((_, i) => Math.sin(i * 0.37 + phase) * 0.8);
      return [await e.forward("AtoB", img(0), 1, s, s), await e.forward("AtoB", img(2), 1, s, s)];
    }
    case "spade": {
      const e = engine as SpadeEngine;
      const map = (shift: number) => new Int32Array(e.width * e.height).map((_, i) => ((i % e.width) + shift) % e.labelNc < e.labelNc / 2 ? 0 : Math.min(e.labelNc - 1, 1 + shift));
      return [await e.forward(map(0), e.useInstance ? map(0) : null, 1, { seed: 0 }), await e.forward(map(3), e.useInstance ? map(3) : null, 1, { seed: 0 })];
    }
    case "dcgan":
      return [await engine.forward(torchSeedToZ(0, engine.zDim), 1), await engine.forward(torchSeedToZ(7, engine.zDim), 1)];
  }
}

describe("shipped demo models", () => {
  for (const [name, family] of Object.entries(DEMOS)) {
    it(`${name} loads and produces non-degenerate output`, async () => {
      const dir = path.join(repoRoot, "models", name);
      expect(fs.existsSync(dir), `${dir} is missing`).toBe(true);
      const { record, weights } = loadModelFolder(dir);
      expect(record.family).toBe(family);
      const engine = await tfjsEngines().load(record, weights);
      try {
        const [a, b] = await outputs(engine);
        for (const out of [a, b]) {
          const s = stats(out);
          expect(s.finite).toBe(true);
          expect(s.range).toBeGreaterThan(0.1);
        }
        expect(meanAbsDiff(a, b)).toBeGreaterThan(0.01);
      } finally {
        engine.dispose();
      }
    });
  }

  it("were trained with the recipes `npm run train:demo` runs", () => {
    for (const recipe of Object.values(DEMO_RECIPES)) {
      const json = JSON.parse(fs.readFileSync(path.join(repoRoot, "models", recipe.name, "model.json"), "utf8"));
      const { steps, batch_size, learning_rate, options } = recipe.train;
      expect(json.config, recipe.name).toEqual(recipe.config);
      expect({ steps: json.training.steps, batch_size: json.training.batch_size, learning_rate: json.training.learning_rate }, recipe.name).toEqual({ steps, batch_size, learning_rate });
      expect(json.training.options, recipe.name).toEqual(options);
      // continued stages (fine-tunes of the previous stage's result), if the recipe has any
      const then = (json.training.then ?? []).map((st: { steps: number; learning_rate: number }) => ({ steps: st.steps, learning_rate: st.learning_rate }));
      expect(then, recipe.name).toEqual(recipe.then ?? []);
    }
  });

  it("keeps all demo models within 20 MB", () => {
    const bytes = Object.keys(DEMOS).reduce((n, name) => n + fs.statSync(path.join(repoRoot, "models", name, "weights.safetensors")).size, 0);
    expect(bytes).toBeLessThanOrEqual(20 * 1024 * 1024);
  });
});

describe("a fresh stack", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("registers the demo models, with samples, and serves each", async () => {
    const { models } = await (await fetch(`${stack.url}/v1/models`, { headers: auth(stack) })).json();
    expect(models.map((m: { name: string }) => m.name).sort()).toEqual(Object.keys(DEMOS).sort());
    const post = (route: string, body: unknown) =>
      fetch(`${stack.url}${route}`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/v1/generate", { model: "fashion-stylegan2", seeds: [0, 1], class_idx: 3 })).status).toBe(200);
    const png = (await (await post("/v1/generate", { model: "fashion-stylegan2", seeds: [2], class_idx: 1 })).json()).images[0].data;
    expect((await post("/v1/translate", { model: "emoji-cyclegan", image: png })).status).toBe(200);
    const scenes = models.find((m: { name: string }) => m.name === "scenes-spade");
    const w = scenes.input.width;
    const h = scenes.input.height;
    const { encodeLabelPng } = await import("@ganserve/core/images/label-png");
    const label = Buffer.from(await encodeLabelPng({ width: w, height: h, data: new Uint8Array(w * h).map((_, i) => (i < (w * h) / 2 ? 0 : 1)) })).toString("base64");
    expect((await post("/v1/translate", { model: "scenes-spade", label_map: label })).status).toBe(200);
    const dcgan = await post("/v1/generate", { model: "fashion-dcgan", seeds: [0, 1] });
    expect(dcgan.status).toBe(200);
    const gray = Buffer.from((await dcgan.json()).images[0].data, "base64");
    const { default: sharp } = await import("sharp");
    expect((await sharp(gray).metadata()).channels).toBe(1);
  });
});
