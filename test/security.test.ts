/**
 * Tenant isolation across every /v1 route, on the real stack with two tenants (alpha, beta). For each route
 * alpha's own resource is usable by alpha, and for beta it must be indistinguishable from one that does not
 * exist: same status, same code, same message and details once the id is masked. A 403, a different code
 * or extra details (a version list, say) would tell beta the resource exists. Shared base models (no
 * tenant) stay readable by everyone. Missing and bad keys are 401 everywhere.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { EMBEDDED_CREDENTIALS, Storage } from "@ganserve/core/storage/index";
import { predictionKeys } from "@ganserve/core/storage/keys";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import { repoRoot, startStack, type Stack } from "./helpers/stack.ts";
import { postUpload } from "./helpers/upload.ts";

// The shipped demo models are the shared (tenant-less) ones; BASE is class-conditional, so generate names a class.
const BASE = "fashion-stylegan2";
// Every bundled model folder (models/<name>/model.json) is a shared model the stack registers.
const DEMOS = fs
  .readdirSync(path.join(repoRoot, "models"))
  .filter((d) => fs.existsSync(path.join(repoRoot, "models", d, "model.json")))
  .sort();
const KA = `gs_alpha_${randomBytes(18).toString("base64url")}`;
const KB = `gs_beta_${randomBytes(18).toString("base64url")}`;
const GHOST = { model: "zz-no-such-model", dataset: "ds_zzzzzzzzzzzzzzzzzzzz", job: "ft_zzzzzzzzzzzzzzzzzzzz" };

let stack: Stack;
let storage: Storage;
let image: string;
const alpha = { model: "alpha-model", dataset: "", job: "" };
let betaDataset = "";

type Call = (key: string | undefined, id: string) => Promise<Response>;

const H = (key?: string, json = false): Record<string, string> => ({
  ...(key ? { authorization: `Bearer ${key}` } : {}),
  ...(json ? { "content-type": "application/json" } : {}),
});
const get = (p: string): Call => (key, id) => fetch(`${stack.url}${p.replace("{}", id)}`, { headers: H(key) });
const post = (p: string, body?: (id: string) => unknown): Call => (key, id) =>
  fetch(`${stack.url}${p.replace("{}", id)}`, { method: "POST", headers: H(key, body !== undefined), body: body ? JSON.stringify(body(id)) : undefined });

async function zipOf(n: number) {
  const files = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({
      path: `images/i${i}.png`,
      bytes: new Uint8Array(await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 40 * i, g: 90, b: 200 - 30 * i } } }).png().toBuffer()),
    })),
  );
  return buildDatasetZip(files);
}

async function uploadDataset(key: string, n: number): Promise<string> {
  const created = await (await fetch(`${stack.url}/v1/datasets`, { method: "POST", headers: H(key, true), body: JSON.stringify({ layout: "stylegan2" }) })).json();
  const put = await postUpload(created.upload, await zipOf(n));
  expect(put.ok).toBe(true);
  const fin = await fetch(`${stack.url}/v1/datasets/${created.id}/finalize`, { method: "POST", headers: H(key) });
  expect(fin.status).toBe(200);
  return created.id;
}

/** The error as a client sees it, with the resource's own id masked and the per-request id dropped. */
async function shape(res: Response, id: string) {
  const text = await res.text();
  let body: { error?: { requestId?: string } } = {};
  try {
    body = JSON.parse(text.split(id).join("<id>"));
  } catch {
    return { status: res.status, contentType: res.headers.get("content-type"), text: text.slice(0, 200) };
  }
  if (body.error) delete body.error.requestId;
  return { status: res.status, body };
}

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: `alpha:${KA},beta:${KB}` } });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${stack.s3Port}`, credentials: EMBEDDED_CREDENTIALS });
  // A model owned by alpha, published the way a finished fine-tune publishes one (tenant on the record).
  const registry = new ModelRegistry(storage);
  const base = await registry.resolve(BASE);
  await registry.publish({ name: alpha.model, family: base.family, config: base.config, weights: await registry.weights(base), dtype: base.weights.dtype, extra: { tenant: "alpha" } });
  alpha.dataset = await uploadDataset(KA, 4);
  betaDataset = await uploadDataset(KB, 2);
  const ft = await fetch(`${stack.url}/v1/fine-tunes`, {
    method: "POST",
    headers: H(KA, true),
    body: JSON.stringify({ base_model: BASE, dataset: alpha.dataset, name: "alpha-tuned", steps: 2, batch_size: 2, checkpoint_every: 1, sample_every: 1 }),
  });
  expect(ft.status).toBe(201);
  alpha.job = (await ft.json()).id;
  image = (await sharp({ create: { width: 16, height: 16, channels: 3, background: "#808080" } }).png().toBuffer()).toString("base64");
});
afterAll(async () => {
  storage?.destroy();
  await stack?.stop();
});

/** Every /v1 route that names a tenant-scoped resource: [route, kind of id, request]. */
const TABLE: [string, keyof typeof GHOST, Call][] = [
  ["GET /v1/models/{name}", "model", get("/v1/models/{}")],
  ["GET /v1/models/{name}/versions/v1", "model", get("/v1/models/{}/versions/v1")],
  ["GET /v1/models/{name}/versions/latest", "model", get("/v1/models/{}/versions/latest")],
  ["GET /v1/models/{name}/versions/v9 (a version it lacks)", "model", get("/v1/models/{}/versions/v9")],
  ["POST /v1/generate", "model", post("/v1/generate", (m) => ({ model: m, class_idx: 1, seeds: [1] }))],
  ["POST /v1/generate (version it lacks)", "model", post("/v1/generate", (m) => ({ model: m, version: "v9", class_idx: 1, seeds: [1] }))],
  ["POST /v1/generate/interpolate", "model", post("/v1/generate/interpolate", (m) => ({ model: m, class_idx: 1, seed_a: 1, seed_b: 2, frames: 2 }))],
  ["POST /v1/translate (json)", "model", post("/v1/translate", (m) => ({ model: m, image }))],
  [
    "POST /v1/translate (multipart)",
    "model",
    (key, m) => {
      const form = new FormData();
      form.set("model", m);
      form.set("image", new Blob([Buffer.from(image, "base64")], { type: "image/png" }), "x.png");
      return fetch(`${stack.url}/v1/translate`, { method: "POST", headers: H(key), body: form });
    },
  ],
  ["POST /v1/fine-tunes (base_model)", "model", post("/v1/fine-tunes", (m) => ({ base_model: m, dataset: betaDataset, name: "beta-out", steps: 1 }))],
  ["GET /v1/datasets/{id}", "dataset", get("/v1/datasets/{}")],
  ["POST /v1/datasets/{id}/finalize", "dataset", post("/v1/datasets/{}/finalize")],
  ["POST /v1/fine-tunes (dataset)", "dataset", post("/v1/fine-tunes", (d) => ({ base_model: BASE, dataset: d, name: "beta-out", steps: 1 }))],
  ["GET /v1/fine-tunes/{id}", "job", get("/v1/fine-tunes/{}")],
  ["GET /v1/fine-tunes/{id}/events", "job", get("/v1/fine-tunes/{}/events")],
  ["GET /v1/fine-tunes/{id}?api_key= (query token)", "job", (key, id) => fetch(`${stack.url}/v1/fine-tunes/${id}?api_key=${key ?? ""}`)],
  ["POST /v1/fine-tunes/{id}/cancel", "job", post("/v1/fine-tunes/{}/cancel")],
];

describe("tenant isolation table (beta asks for alpha's resources)", () => {
  it.each(TABLE)("%s", async (_route, kind, call) => {
    const own = alpha[kind];
    // For the owner the resource exists (whatever else the route thinks of the request).
    if (!_route.includes("cancel") && !_route.includes("(base_model)") && !_route.includes("(dataset)") && !_route.includes("lacks")) {
      const mine = await call(KA, own);
      await mine.body?.cancel();
      expect(mine.status, `alpha on ${_route}`).not.toBe(404);
    }
    const foreign = await shape(await call(KB, own), own);
    const missing = await shape(await call(KB, GHOST[kind]), GHOST[kind]);
    expect(foreign.status, `beta on ${_route}: ${JSON.stringify(foreign)}`).toBe(404);
    expect(foreign, `beta must not tell alpha's ${kind} from a missing one`).toEqual(missing);
  });

  it("lists show each tenant only its own datasets, fine-tunes and models; shared models to both", async () => {
    const list = async (key: string, p: string) => (await (await fetch(`${stack.url}${p}`, { headers: H(key) })).json()) as Record<string, { id?: string; name?: string }[]>;
    const ids = (rows: { id?: string; name?: string }[]) => rows.map((r) => r.id ?? r.name);
    expect(ids((await list(KA, "/v1/datasets")).datasets)).toContain(alpha.dataset);
    expect(ids((await list(KB, "/v1/datasets")).datasets)).toEqual([betaDataset]);
    expect(ids((await list(KA, "/v1/fine-tunes")).fine_tunes)).toContain(alpha.job);
    expect(ids((await list(KB, "/v1/fine-tunes")).fine_tunes)).toEqual([]);
    expect(ids((await list(KA, "/v1/models")).models)).toEqual(expect.arrayContaining([BASE, alpha.model]));
    expect(ids((await list(KB, "/v1/models")).models).sort()).toEqual(DEMOS);
  });

  it("shared base models are public read for every tenant", async () => {
    for (const key of [KA, KB]) {
      const res = await post("/v1/generate", () => ({ model: BASE, class_idx: 2, seeds: [3] }))(key, "");
      expect(res.status).toBe(200);
      expect((await (await get(`/v1/models/${BASE}`)(key, "")).json()).owned).toBe(false);
    }
  });

  it("a tenant cannot publish into another tenant's (or a shared) model name", async () => {
    for (const name of [alpha.model, BASE]) {
      const res = await post("/v1/fine-tunes", () => ({ base_model: BASE, dataset: betaDataset, name, steps: 1 }))(KB, "");
      expect(res.status).toBe(409);
      expect((await res.json()).error.code).toBe("conflict");
    }
    expect((await (await fetch(`${stack.url}/v1/fine-tunes`, { headers: H(KB) })).json()).fine_tunes).toEqual([]);
  });

  it("image URLs of one tenant's outputs are stored under that tenant", async () => {
    const res = await post("/v1/generate", () => ({ model: alpha.model, class_idx: 1, seeds: [1], output: "url" }))(KA, "");
    expect(res.status).toBe(200);
    const url = new URL((await res.json()).images[0].url);
    // /v1/generate runs as a prediction: its images are the prediction's data, kept under the tenant's prefix.
    expect(url.pathname).toContain(`/${predictionKeys.dataRoot}alpha/`);
  });
});

describe("authentication", () => {
  const routes: [string, string][] = [
    ["GET", "/v1/models"], ["GET", `/v1/models/${BASE}`], ["GET", `/v1/models/${BASE}/versions/v1`],
    ["POST", "/v1/generate"], ["POST", "/v1/generate/interpolate"], ["POST", "/v1/translate"],
    ["GET", "/v1/datasets"], ["POST", "/v1/datasets"], ["GET", `/v1/datasets/${GHOST.dataset}`], ["POST", `/v1/datasets/${GHOST.dataset}/finalize`],
    ["GET", "/v1/fine-tunes"], ["POST", "/v1/fine-tunes"], ["GET", `/v1/fine-tunes/${GHOST.job}`], ["GET", `/v1/fine-tunes/${GHOST.job}/events`], ["POST", `/v1/fine-tunes/${GHOST.job}/cancel`],
    ["GET", "/v1/nonexistent-route"],
  ];
  it.each(routes)("%s %s answers 401 without a key, with a bad key, and with a key as a POST query token", async (method, p) => {
    const variants: RequestInit[] = [{}, { headers: { authorization: "Bearer gs_wrong" } }, { headers: { authorization: `Basic ${KA}` } }, { headers: { authorization: `Bearer ${KA}x` } }];
    for (const v of variants) {
      const res = await fetch(`${stack.url}${p}`, { method, ...v });
      expect(res.status, `${method} ${p} ${JSON.stringify(v)}`).toBe(401);
      expect((await res.json()).error.code).toBe("unauthorized");
    }
    if (method === "POST") expect((await fetch(`${stack.url}${p}?api_key=${KA}`, { method })).status).toBe(401);
  });

  it("the public endpoints hold no tenant data", async () => {
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    // Private model names are tenant data too: a label carrying one tells every scraper it exists.
    for (const secret of [KA, KB, alpha.dataset, alpha.job, alpha.model, "alpha-tuned"]) expect(metrics, secret).not.toContain(secret);
    expect(await (await fetch(`${stack.url}/openapi.json`)).text()).not.toContain(alpha.model);
  });
});
