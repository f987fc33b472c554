/**
 * Fine-tuning end to end on the real local stack: presigned upload, finalize, train a fixture-sized model
 * in a worker process, follow the SSE stream, serve the new version; plus kill/resume, cancel and a signed
 * webhook.
 */
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, Storage } from "@ganserve/core/storage/index";
import { jobKeys } from "@ganserve/core/storage/keys";
import { verify } from "@ganserve/core/jobs/webhook";
import { encodeLabelPng } from "@ganserve/core/images/label-png";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";
import { official } from "./fixtures/index.ts";
import { importModel } from "./helpers/models.ts";
import { domainsZip, followEvents, scenesZip, squaresZip, startFineTune, uploadDataset } from "./helpers/finetune.ts";

const SG = official("stylegan2/z32_w32_res32_skip");
const CG = official("cyclegan/resnet_9blocks_instance_ngf8");
const SP = official("spade/label6_dontcare_instance_ngf1");
const SECRET = "test-webhook-secret-0123456789";

let stack: Stack;
let storage: Storage;
let datasetId: string;
const hooks: { body: string; signature: string }[] = [];
let receiver: http.Server;
let hookUrl: string;

beforeAll(async () => {
  const dataDir = tempDataDir();
  importModel(path.join(SG, "network-snapshot.pkl"), "sg-base", dataDir);
  importModel(path.join(CG, "weights.safetensors"), "cg-base", dataDir);
  importModel(path.join(SP, "weights.safetensors"), "spade-base", dataDir);
  stack = await startStack({ dataDir });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${stack.s3Port}`, credentials: EMBEDDED_CREDENTIALS });
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      hooks.push({ body, signature: String(req.headers["x-ganserve-signature"] ?? "") });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
  const up = await uploadDataset(stack, await squaresZip(12), "stylegan2");
  expect(up.status).toBe(200);
  datasetId = up.id;
});
afterAll(async () => {
  storage?.destroy();
  receiver?.close();
  await stack?.stop();
});

describe("datasets", () => {
  it("finalize reports counts, sizes and layout", async () => {
    const res = await fetch(`${stack.url}/v1/datasets/${datasetId}`, { headers: auth(stack) });
    const ds = await res.json();
    expect(ds).toMatchObject({ status: "ready", layout: "stylegan2", stats: { images: 12, counts_by_folder: { images: 12 }, resolutions: { "32x32": 12 } } });
    expect(ds.upload).toBeUndefined();
  });

  it("rejects an unusable archive with its reason and records it", async () => {
    const bad = await uploadDataset(stack, new Uint8Array([1, 2, 3, 4]), "stylegan2");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "invalid_archive", details: { reason: "not_a_zip" } });
    const rec = await (await fetch(`${stack.url}/v1/datasets/${bad.id}`, { headers: auth(stack) })).json();
    expect(rec.status).toBe("failed");
  });
});

/** GETs the dataset until its finalize job has ended (bounded: a job that never ends fails the test). */
async function settledDataset(id: string) {
  for (let i = 0; i < 600; i++) {
    const ds = await (await fetch(`${stack.url}/v1/datasets/${id}`, { headers: auth(stack) })).json();
    if (ds.status !== "processing") return ds;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`dataset ${id} still processing after a minute`);
}

describe("dataset finalize as a job", () => {
  it("Prefer: wait=0 answers 202 processing at once; the job then records ready", async () => {
    const r = await uploadDataset(stack, await squaresZip(6), "stylegan2", { prefer: "wait=0" });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ id: r.id, status: "processing" });
    expect(await settledDataset(r.id)).toMatchObject({ status: "ready", stats: { images: 6 } });
    // Once ready, finalize answers 200 at once with the same record.
    const again = await fetch(`${stack.url}/v1/datasets/${r.id}/finalize`, { method: "POST", headers: { ...auth(stack), prefer: "wait=0" } });
    expect(again.status).toBe(200);
  });

  it("a refused archive finalized without waiting: 202, then failed with its reason on the record", async () => {
    const r = await uploadDataset(stack, new Uint8Array([1, 2, 3, 4]), "stylegan2", { prefer: "wait=0" });
    expect(r.status).toBe(202);
    expect(await settledDataset(r.id)).toMatchObject({ status: "failed", error: { code: "not_a_zip" } });
  });
});

describe("fine-tune", () => {
  it("trains, streams progress to succeeded, publishes a new version that serves, and signs the webhook", async () => {
    const job = await startFineTune(stack, {
      base_model: "sg-base",
      dataset: datasetId,
      name: "sg-tuned",
      steps: 4,
      batch_size: 2,
      checkpoint_every: 2,
      sample_every: 2,
      webhook: { url: hookUrl, secret: SECRET },
    });
    const events = await followEvents(stack, job.id);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ type: "done", status: "succeeded" });
    expect(events.some((e) => e.type === "progress")).toBe(true);
    expect(events.some((e) => e.type === "checkpoint" && e.step === 2)).toBe(true);
    expect(events.some((e) => e.type === "sample")).toBe(true);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    const ft = await (await fetch(`${stack.url}/v1/fine-tunes/${job.id}`, { headers: auth(stack) })).json();
    expect(ft).toMatchObject({ status: "succeeded", step: 4, total_steps: 4, result: { model: "sg-tuned", version: "v1" } });
    expect(Object.keys(ft.losses).length).toBeGreaterThan(0);
    expect(ft.samples.length).toBeGreaterThan(0);
    expect((await fetch(ft.samples[0].url)).status).toBe(200);

    const tuned = await (await fetch(`${stack.url}/v1/models/sg-tuned/versions/v1`, { headers: auth(stack) })).json();
    const base = await (await fetch(`${stack.url}/v1/models/sg-base/versions/v1`, { headers: auth(stack) })).json();
    expect(tuned.parent).toEqual({ name: "sg-base", version: "v1" });
    expect(tuned.provenance).toMatchObject({ fine_tune_job: job.id, dataset: datasetId, steps: 4 });
    expect(tuned.weights.sha256).not.toBe(base.weights.sha256);
    const gen = await fetch(`${stack.url}/v1/generate`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json" },
      body: JSON.stringify({ model: "sg-tuned", seeds: [0, 1] }),
    });
    expect(gen.status).toBe(200);

    const deadline = Date.now() + 10_000;
    while (!hooks.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(hooks).toHaveLength(1);
    expect(verify(SECRET, hooks[0].body, hooks[0].signature)).toBe(true);
    expect(verify("wrong-secret-0123456789", hooks[0].body, hooks[0].signature)).toBe(false);
    expect(JSON.parse(hooks[0].body)).toMatchObject({ event: "fine_tune.succeeded", fine_tune: { id: job.id, status: "succeeded" } });
  });

  it("resumes from the last checkpoint after the worker is killed, without repeating steps", async () => {
    const job = await startFineTune(stack, { base_model: "sg-base", dataset: datasetId, name: "sg-resumed", steps: 8, batch_size: 2, checkpoint_every: 3, sample_every: 8 });
    const before = await followEvents(stack, job.id, (e) => e.type === "checkpoint" && (e.step ?? 0) >= 3);
    const record = await storage.getJson<{ worker: { pid: number } }>(jobKeys.record(job.id));
    process.kill(record!.worker.pid, "SIGKILL");
    const events = await followEvents(stack, job.id);
    expect(events.at(-1)).toMatchObject({ type: "done", status: "succeeded" });
    const resumed = events.find((e) => e.type === "log" && /resumed from the checkpoint at step/.test(e.message ?? ""));
    expect(resumed, JSON.stringify(events.map((e) => [e.type, e.step]))).toBeDefined();
    const ckpt = Number(/step (\d+)/.exec(resumed!.message!)![1]);
    expect(ckpt).toBeGreaterThanOrEqual(3);
    // After the resume, progress continues past the checkpoint and no step is reported twice.
    const after = events.filter((e) => e.seq > resumed!.seq && e.type === "progress").map((e) => e.step!);
    expect(after.every((s) => s > ckpt)).toBe(true);
    expect(new Set(after).size).toBe(after.length);
    const ft = await (await fetch(`${stack.url}/v1/fine-tunes/${job.id}`, { headers: auth(stack) })).json();
    expect(ft.attempts).toBeGreaterThanOrEqual(2);
    expect(ft).toMatchObject({ status: "succeeded", step: 8, result: { model: "sg-resumed" } });
    expect(before.length).toBeGreaterThan(0);
  });

  it("cancels between steps", async () => {
    const job = await startFineTune(stack, { base_model: "sg-base", dataset: datasetId, name: "sg-canceled", steps: 5000, batch_size: 2, checkpoint_every: 1000 });
    await followEvents(stack, job.id, (e) => e.type === "progress");
    const res = await fetch(`${stack.url}/v1/fine-tunes/${job.id}/cancel`, { method: "POST", headers: auth(stack) });
    expect(res.status).toBe(200);
    expect((await res.json()).cancel_requested).toBe(true);
    const events = await followEvents(stack, job.id);
    expect(events.at(-1)).toMatchObject({ type: "done", status: "canceled" });
    const ft = await (await fetch(`${stack.url}/v1/fine-tunes/${job.id}`, { headers: auth(stack) })).json();
    expect(ft.status).toBe("canceled");
    expect(ft.step).toBeLessThan(5000);
    expect((await fetch(`${stack.url}/v1/fine-tunes/${job.id}/cancel`, { method: "POST", headers: auth(stack) })).status).toBe(409);
    const list = await (await fetch(`${stack.url}/v1/fine-tunes`, { headers: auth(stack) })).json();
    expect(list.fine_tunes.map((f: { id: string }) => f.id)).toContain(job.id);
  });

  for (const [family, base, zip, layout, input] of [
    ["cyclegan", "cg-base", () => domainsZip(4, 32), "cyclegan", "image"],
    ["spade", "spade-base", () => scenesZip(4, 64, 6), "spade", "label_map"],
  ] as const) {
    it(`fine-tunes a ${family} model and translates with the new version`, async () => {
      const up = await uploadDataset(stack, await zip(), layout);
      expect(up.status).toBe(200);
      const job = await startFineTune(stack, { base_model: base, dataset: up.id, name: `${base}-tuned`, steps: 2, batch_size: 1 });
      const events = await followEvents(stack, job.id);
      expect(events.at(-1), JSON.stringify(events.at(-1))).toMatchObject({ type: "done", status: "succeeded" });
      const tuned = await (await fetch(`${stack.url}/v1/models/${base}-tuned/versions/v1`, { headers: auth(stack) })).json();
      expect(tuned.parent).toEqual({ name: base, version: "v1" });
      const sample = (await storage.list(jobKeys.samples(job.id)))[0];
      const png = Buffer.from((await storage.get(sample.key))!).toString("base64");
      // CycleGAN: the new B→A generator on a sample grid; SPADE: a striped label map.
      const labels = Buffer.from(await encodeLabelPng({ width: 64, height: 64, data: new Uint8Array(4096).map((_, i) => (i >> 9) % 6) })).toString("base64");
      const body = input === "image" ? { model: `${base}-tuned`, image: png, direction: "BtoA" } : { model: `${base}-tuned`, label_map: labels };
      const res = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBe(200);
    });
  }

  it("refuses a dataset of the wrong layout and unknown ids", async () => {
    const r1 = await fetch(`${stack.url}/v1/fine-tunes`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json" },
      body: JSON.stringify({ base_model: "sg-base", dataset: "ds_doesnotexist000000", name: "x-model" }),
    });
    expect(r1.status).toBe(404);
    const r2 = await fetch(`${stack.url}/v1/fine-tunes/ft_doesnotexist000000`, { headers: auth(stack) });
    expect(r2.status).toBe(404);
  });
});
