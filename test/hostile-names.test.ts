/**
 * Model-name takeover (issue 21, attack report claim 4), on the real stack with two tenants and the demo
 * models. A name belongs to the first tenant that claims it (models/<name>/owner.json, written with
 * If-None-Match: * when a fine-tune is created) and every publish checks it again:
 *
 * - two tenants creating fine-tunes for one new name at the same moment: exactly one 201, the other 409
 *   conflict (details.reason model_name_taken); only the winner's model exists afterwards;
 * - a job whose tenant no longer owns its name when it publishes (a job from before owner records, racing a
 *   claim) fails with error.code model_name_taken and publishes nothing;
 * - demo (operator) names are refused to tenants; the 409 reads the same for a demo name, another tenant's
 *   published name and a claimed but unpublished one, so it tells nothing about the owner;
 * - names are lower-case ASCII (`^[a-z0-9][a-z0-9-]{0,62}$`): case and Unicode lookalikes of a name are 400
 *   validation_failed, never a second, distinct name.
 *
 * Memory budget: 1 GiB of peak RSS for the API process (the fine-tune workers run in child processes).
 * Seen: 301 MB.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelKeys } from "@ganserve/core/storage/keys";
import { EMBEDDED_CREDENTIALS, Storage } from "@ganserve/core/storage/index";
import { squaresZip } from "./helpers/finetune.ts";
import { expectAliveWithinBudget } from "./helpers/budget.ts";
import { startStack, type Stack } from "./helpers/stack.ts";

const MEMORY_BUDGET = 1024 ** 3;
const BASE = "fashion-stylegan2";
const DEMOS = ["fashion-stylegan2", "emoji-cyclegan", "scenes-spade"];
const KA = `gs_alice_${randomBytes(18).toString("base64url")}`;
const KB = `gs_bob_${randomBytes(18).toString("base64url")}`;

let stack: Stack;
let storage: Storage;
const dataset: Record<string, string> = {};

const H = (key: string, json = false): Record<string, string> => ({ authorization: `Bearer ${key}`, ...(json ? { "content-type": "application/json" } : {}) });
const createFineTune = (key: string, body: Record<string, unknown>) =>
  fetch(`${stack.url}/v1/fine-tunes`, {
    method: "POST",
    headers: H(key, true),
    body: JSON.stringify({ base_model: BASE, dataset: dataset[key], steps: 2, batch_size: 2, checkpoint_every: 1, sample_every: 1, ...body }),
  });
const getJson = async (key: string, p: string) => {
  const res = await fetch(`${stack.url}${p}`, { headers: H(key) });
  return { status: res.status, body: await res.json() };
};

/** Sends a zip with the dataset's upload (a form POST with its fields, or a presigned PUT). */
async function sendZip(upload: { url: string; headers?: Record<string, string>; fields?: Record<string, string>; file_field?: string }, zip: Uint8Array) {
  if (!upload.fields) return fetch(upload.url, { method: "PUT", headers: upload.headers, body: zip as BodyInit });
  const form = new FormData();
  for (const [k, v] of Object.entries(upload.fields)) form.append(k, v);
  form.append(upload.file_field ?? "file", new Blob([zip.slice()]), "dataset.zip");
  return fetch(upload.url, { method: "POST", body: form });
}

async function uploadDataset(key: string): Promise<string> {
  const zip = await squaresZip(4);
  const created = await (await fetch(`${stack.url}/v1/datasets`, { method: "POST", headers: H(key, true), body: JSON.stringify({ layout: "stylegan2", size_bytes: zip.byteLength }) })).json();
  expect((await sendZip(created.upload, zip)).ok).toBe(true);
  const fin = await fetch(`${stack.url}/v1/datasets/${created.id}/finalize`, { method: "POST", headers: H(key) });
  expect(fin.status).toBe(200);
  return created.id;
}

/** Polls a job to a terminal state. */
async function finished(key: string, id: string, timeoutMs = 240_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getJson(key, `/v1/fine-tunes/${id}`);
    if (["succeeded", "failed", "canceled"].includes(body.status)) return body;
    if (Date.now() > deadline) throw new Error(`fine-tune ${id} still ${body.status}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A 409 as a client sees it, the name masked and the request id dropped. */
async function shape(res: Response, name: string) {
  const body = JSON.parse((await res.text()).split(name).join("<name>"));
  delete body.error?.requestId;
  return { status: res.status, body };
}

const taken = { code: "conflict", details: { reason: "model_name_taken" } };

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: `alice:${KA},bob:${KB}` } });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${stack.s3Port}`, credentials: EMBEDDED_CREDENTIALS });
  dataset[KA] = await uploadDataset(KA);
  dataset[KB] = await uploadDataset(KB);
}, 180_000);
afterAll(async () => {
  storage?.destroy();
  await stack?.stop();
});

describe("model names stay owned", () => {
  it("two tenants racing for one new name: exactly one owns it, the other 409 model_name_taken", async () => {
    const name = "contested-name";
    const [a, b] = await Promise.all([createFineTune(KA, { name }), createFineTune(KB, { name })]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([201, 409]);
    const [winRes, loseRes, winKey, loseKey] = a.status === 201 ? [a, b, KA, KB] : [b, a, KB, KA];
    expect((await loseRes.json()).error).toMatchObject(taken);
    const job = await finished(winKey, (await winRes.json()).id);
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(job.result).toEqual({ model: name, version: "v1" });
    // The winner has its model; for the loser it does not exist, and publishing into it is still refused.
    const mine = await getJson(winKey, `/v1/models/${name}`);
    expect(mine.status).toBe(200);
    expect(mine.body.versions).toEqual(["v1"]);
    expect((await getJson(loseKey, `/v1/models/${name}`)).status).toBe(404);
    const again = await createFineTune(loseKey, { name });
    expect(again.status).toBe(409);
    expect((await again.json()).error).toMatchObject(taken);
    expect(await storage.getJson(modelKeys.owner(name))).toMatchObject({ name, tenant: winKey === KA ? "alice" : "bob" });
    // The owner may publish further versions under it.
    const second = await createFineTune(winKey, { name });
    expect(second.status).toBe(201);
    expect((await finished(winKey, (await second.json()).id)).result).toEqual({ model: name, version: "v2" });
  });

  it("a job whose tenant no longer owns the name when it publishes fails with model_name_taken and publishes nothing", async () => {
    const name = "lost-before-publish";
    const created = await createFineTune(KB, { name, steps: 12, batch_size: 1, checkpoint_every: 3, sample_every: 100 });
    expect(created.status).toBe(201);
    const id = (await created.json()).id;
    // Once the job is training (past the worker's own check at start), the name goes to alice, as when a job
    // created before owner records existed races a claim.
    const deadline = Date.now() + 240_000;
    for (;;) {
      const { body } = await getJson(KB, `/v1/fine-tunes/${id}`);
      if (body.step >= 1 || ["succeeded", "failed", "canceled"].includes(body.status)) break;
      if (Date.now() > deadline) throw new Error("the job never started");
      await new Promise((r) => setTimeout(r, 100));
    }
    await storage.put(modelKeys.owner(name), JSON.stringify({ name, tenant: "alice", claimed_at: new Date().toISOString() }));
    const job = await finished(KB, id);
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "model_name_taken" });
    expect(job.error.message).toContain(name);
    expect(job.result).toBeUndefined();
    expect((await storage.list(modelKeys.prefix(name))).map((o) => o.key)).toEqual([modelKeys.owner(name)]);
    for (const key of [KA, KB]) expect((await getJson(key, `/v1/models/${name}`)).status).toBe(404);
  });

  it("demo names are the operator's: 409 for every tenant, and no job is created", async () => {
    const before = (await getJson(KB, "/v1/fine-tunes")).body.fine_tunes.length;
    for (const name of DEMOS)
      for (const key of [KA, KB]) {
        const res = await createFineTune(key, { name });
        expect(res.status, name).toBe(409);
        expect((await res.json()).error).toMatchObject(taken);
      }
    expect((await getJson(KB, "/v1/fine-tunes")).body.fine_tunes.length).toBe(before);
    for (const name of DEMOS) expect((await getJson(KA, `/v1/models/${name}`)).body.versions).toEqual(["v1"]);
  });

  it("the 409 reads the same for a demo name, a tenant's published name and a claimed, unpublished one", async () => {
    // alice holds "lost-before-publish" with no version (previous case); "contested-name" is published.
    const owner = (await storage.getJson<{ tenant: string }>(modelKeys.owner("contested-name")))!.tenant;
    const other = owner === "alice" ? KB : KA;
    const shapes = [
      await shape(await createFineTune(other, { name: "contested-name" }), "contested-name"),
      await shape(await createFineTune(KB, { name: "lost-before-publish" }), "lost-before-publish"),
      await shape(await createFineTune(KB, { name: BASE }), BASE),
    ];
    expect(shapes[0].status).toBe(409);
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
  });

  it("case and Unicode lookalikes of a name are not distinct names: 400 validation_failed on name", async () => {
    const lookalikes = [
      "Contested-Name",
      "CONTESTED-NAME",
      "contested-n\u0430me", // Cyrillic а
      "contested\u2010name", // Unicode hyphen
      "\uff43ontested-name", // fullwidth c
      "contested-name\u200b", // zero-width space
      "contested-name ",
      "contested_name",
      "contested-name/../x",
      "e\u0301moji-cyclegan", // combining accent
    ];
    for (const name of lookalikes) {
      const res = await createFineTune(KB, { name });
      const body = await res.json();
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(body.error.code).toBe("validation_failed");
      expect(body.error.details.issues.map((i: { path: string }) => i.path)).toContain("name");
    }
  });
});

describe("afterwards", () => {
  it("the stack stayed within its memory budget and still answers /health", async () => {
    await expectAliveWithinBudget(stack, MEMORY_BUDGET, "hostile-names-memory");
  });
});
