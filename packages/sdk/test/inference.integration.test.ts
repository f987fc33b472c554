/**
 * The SDK against the real local stack, with fixture models imported by the real CLI: what it returns must
 * be byte-for-byte what a plain fetch of the same request returns.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ganserve, GanserveError, imageBytes, toBlob } from "../src/node.ts";
import { Ganserve as BrowserGanserve } from "../src/index.ts";
import { importFixtureModels, rgbOf } from "../../../test/helpers/models.ts";
import { auth, startStack, tempDataDir, type Stack } from "../../../test/helpers/stack.ts";
import { official } from "../../../test/fixtures/index.ts";

const CG = official("cyclegan/resnet_9blocks_instance_ngf8");
const SP = official("spade/label6_dontcare_instance_ngf1");

let stack: Stack;
let sdk: Ganserve;
const direct = async (route: string, body: unknown) => {
  const res = await fetch(`${stack.url}${route}`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
};

beforeAll(async () => {
  const dataDir = tempDataDir();
  importFixtureModels(dataDir);
  stack = await startStack({ dataDir });
  sdk = new Ganserve({ baseUrl: stack.url, apiKey: stack.apiKey });
}, 240_000);
afterAll(async () => {
  await stack?.stop();
});

describe("models", () => {
  it("lists, gets and resolves versions", async () => {
    const { models } = await sdk.models.list();
    expect(models.map((m) => m.name).sort()).toEqual(["cg-fixture", "sg-fixture", "spade-fixture"]);
    const sg = await sdk.models.get("sg-fixture");
    expect(sg).toMatchObject({ family: "stylegan2", latest: "v1", input: { resolution: 32 } });
    const version = await sdk.models.version("sg-fixture");
    expect(version).toMatchObject({ name: "sg-fixture", version: "v1", family: "stylegan2" });
    expect(version.weights.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("throws a typed error for an unknown model", async () => {
    const err = await sdk.models.get("no-such-model").catch((e) => e);
    expect(err).toBeInstanceOf(GanserveError);
    expect(err).toMatchObject({ status: 404, code: "model_not_found" });
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const viaGenerate = await sdk.generate({ model: "no-such-model", seeds: [0] }).catch((e) => e);
    expect(viaGenerate).toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("reports a bad key as unauthorized", async () => {
    const bad = new Ganserve({ baseUrl: stack.url, apiKey: "wrong" });
    expect(await bad.models.list().catch((e) => e)).toMatchObject({ status: 401, code: "unauthorized" });
  });
});

describe("generate", () => {
  it("returns exactly the bytes of a direct request", async () => {
    const req = { model: "sg-fixture", seeds: [0, 1, 7], truncation_psi: 0.7, format: "png" as const };
    const ours = await sdk.generate(req);
    const theirs = await direct("/v1/generate", req);
    expect(ours.images).toHaveLength(3);
    for (const [i, image] of ours.images.entries()) {
      expect(imageBytes(image)).toEqual(new Uint8Array(Buffer.from(theirs.images[i].data, "base64")));
      expect(image.seed).toBe(req.seeds[i]);
    }
    const blob = toBlob(ours.images[0]);
    expect(blob.type).toBe("image/png");
    expect((await rgbOf(new Uint8Array(await blob.arrayBuffer()))).width).toBe(32);
  });

  it("interpolates, both spellings", async () => {
    const req = { model: "sg-fixture", seed_a: 0, seed_b: 1, frames: 3 };
    const a = await sdk.generate.interpolate(req);
    const b = await sdk.interpolate(req);
    expect(a.images).toHaveLength(3);
    expect(a.images.map((i) => i.data)).toEqual(b.images.map((i) => i.data));
    expect(a.images.map((i) => i.data)).toEqual((await direct("/v1/generate/interpolate", req)).images.map((i: { data: string }) => i.data));
  });

  it("downloads URL outputs", async () => {
    const { images } = await sdk.generate({ model: "sg-fixture", seeds: [1], output: "url" });
    const bytes = await sdk.download(images[0]);
    const inline = await sdk.generate({ model: "sg-fixture", seeds: [1] });
    expect(bytes).toEqual(imageBytes(inline.images[0]));
  });

  it("turns server validation into validation_failed with details", async () => {
    const err = await sdk.generate({ model: "sg-fixture", seeds: [] }).catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: "validation_failed" });
    expect((err.details as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
  });
});

describe("translate", () => {
  const input = () => fs.readFileSync(path.join(CG, "test_py/input1.png"));

  it("sends a Uint8Array, a Blob, a stream and a path, and gets the JSON route's bytes", async () => {
    const bytes = new Uint8Array(input());
    const expected = (await direct("/v1/translate", { model: "cg-fixture", image: input().toString("base64"), preprocess: "none" })).image.data;
    const browser = new BrowserGanserve({ baseUrl: stack.url, apiKey: stack.apiKey });
    const results = [
      await sdk.translate({ model: "cg-fixture", image: bytes, preprocess: "none" }),
      await browser.translate({ model: "cg-fixture", image: new Blob([bytes], { type: "image/png" }), preprocess: "none" }),
      await sdk.translate({ model: "cg-fixture", image: new Blob([bytes]).stream(), preprocess: "none" }),
      await sdk.translate({ model: "cg-fixture", image: path.join(CG, "test_py/input1.png"), preprocess: "none" }),
    ];
    for (const r of results) {
      expect(r.model).toBe("cg-fixture");
      expect(r.image.data).toBe(expected);
    }
  });

  it("runs SPADE from label and instance maps", async () => {
    const cases = JSON.parse(fs.readFileSync(path.join(SP, "test_py/cases.json"), "utf8"));
    const c = cases.cases[0];
    const file = (f: string) => path.join(SP, "test_py", f);
    const ours = await sdk.translate({ model: "spade-fixture", label_map: file(c.label), instance_map: fs.readFileSync(file(c.instance)) });
    const theirs = await direct("/v1/translate", { model: "spade-fixture", label_map: fs.readFileSync(file(c.label)).toString("base64"), instance_map: fs.readFileSync(file(c.instance)).toString("base64") });
    expect(ours.image.data).toBe(theirs.image.data);
  });

  it("reports a family mismatch and bytes that are no image with the server's codes", async () => {
    expect(await sdk.translate({ model: "sg-fixture", image: input() }).catch((e) => e)).toMatchObject({ status: 422, code: "wrong_model_family" });
    expect(await sdk.translate({ model: "cg-fixture", image: new Uint8Array([1, 2, 3]) }).catch((e) => e)).toMatchObject({ status: 415, code: "unsupported_media_type" });
  });
});
