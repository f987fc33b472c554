/**
 * The prediction worker against the embedded store and the in-process queue, with a handler registered
 * through the task table (the extension point other kinds of work use): a worker that dies mid-run leaves
 * its message to reappear and the prediction runs once more (attempts 2); a worker that lost contact and
 * finishes late does not overwrite the first completion; cancel stops a run at its next boundary; a passed
 * deadline fails a prediction that never started; retention removes data and keeps the record; a waiter
 * whose first read is overtaken by the end is told by the in-process notification.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceService } from "../src/inference/service.ts";
import { createLogger } from "../src/log.ts";
import { PredictionBus } from "../src/predictions/events.ts";
import { PredictionStopped, registerPredictionHandler, type HandlerContext } from "../src/predictions/handlers.ts";
import { MemoryQueue } from "../src/predictions/memory-queue.ts";
import type { PredictionQueue } from "../src/predictions/queue.ts";
import { sweepPredictionData } from "../src/predictions/retention.ts";
import { newPredictionId, newPredictionRecord, PredictionStore, type PredictionRecord } from "../src/predictions/store.ts";
import { PredictionService } from "../src/predictions/service.ts";
import { PredictionWorker } from "../src/predictions/worker.ts";
import { ModelRegistry } from "../src/models/registry.ts";
import { predictionKeys } from "../src/storage/keys.ts";
import type { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";

let embedded: EmbeddedStore;
let storage: Storage;
let store: PredictionStore;
const log = createLogger("silent");

/** Runs of the "hold" task wait for the test to release them, one gate per worker name. */
const gates = new Map<string, { release: () => void; promise: Promise<void> }>();
const gate = (name: string) => {
  let release = () => {};
  const promise = new Promise<void>((r) => (release = r));
  gates.set(name, { release, promise });
  return () => release();
};
const started: string[] = [];

registerPredictionHandler({
  task: "test-hold",
  families: ["stylegan2"],
  default: false,
  parse: (input) => ({ stored: input, shown: input }),
  async run(ctx: HandlerContext) {
    const who = String(ctx.input.worker_tag ?? "");
    started.push(who);
    for (let step = 0; step < 3; step++) {
      if (step > 0 && (await ctx.stopped())) throw new PredictionStopped();
      await ctx.progress(step, 3);
      await gates.get(`${who}:${step}`)?.promise;
    }
    return {
      output: [{ content_type: "text/plain", width: 0, height: 0, data: Buffer.from(who).toString("base64") }],
      params: {},
      timings: { queue_ms: 0, compute_ms: 0, encode_ms: 0, total_ms: 0 },
    };
  },
});

beforeAll(async () => {
  embedded = await startEmbeddedStore({ name: "predictions", bucket: "ganserve", maxAttempts: 1 });
  storage = embedded.storage;
  await storage.ensureBucket();
  store = new PredictionStore(storage);
});
afterAll(() => embedded?.close());

/** The worker's tag travels in the input, so each worker's run can be told apart. */
async function newPrediction(queue: PredictionQueue, deadlineMs = 60_000): Promise<PredictionRecord> {
  const now = Date.now();
  const id = newPredictionId(now);
  const rec = newPredictionRecord(
    { id, tenant: "t1", family: "stylegan2", model: "m", version: "v1", task: "test-hold", input: {}, stored_input: { output: "base64" } },
    now,
    deadlineMs,
  );
  await store.create(rec);
  await queue.send(JSON.stringify({ id, tenant: "t1", model: "m" }));
  return rec;
}

/** A worker whose runs are tagged `tag`: its handler reads the tag from the input it is given. */
function worker(tag: string, queue: PredictionQueue, visibilitySeconds = 1) {
  return new PredictionWorker(
    { queue, store: storeFor(tag), storage, inference: {} as InferenceService, bus: new PredictionBus(), log },
    { concurrency: 4, visibilitySeconds, maxBatch: 8, waitSeconds: 1 },
  );
}

/** The store as one worker sees it: its `input` carries the worker's tag. */
function storeFor(tag: string) {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "input") return async (rec: PredictionRecord) => ({ ...(await target.input(rec)), worker_tag: tag });
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const until = async (check: () => Promise<boolean> | boolean) => {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
};

describe("prediction worker", () => {
  it("a worker that dies mid-run: the message reappears and the prediction runs once more, to one completion", async () => {
    const queue = new MemoryQueue();
    const rec = await newPrediction(queue);
    gate("A:1"); // A stops inside the run, after its first batch
    const a = worker("A", queue);
    a.start();
    await until(() => started.includes("A"));
    await until(async () => (await store.load("t1", rec.id))?.status === "processing");
    a.kill();
    const b = worker("B", queue);
    b.start();
    await until(async () => (await store.load("t1", rec.id))?.status === "succeeded");
    await b.stop();
    gates.get("A:1")!.release();
    const end = (await store.load("t1", rec.id))!;
    expect(end.attempts).toBe(2);
    expect(end.logs).toMatch(/attempt 2 \(delivery 2\)/);
    const result = await store.result(end);
    expect(Buffer.from(result!.output[0].data!, "base64").toString()).toBe("B");
    expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0 });
  });

  it("a worker that lost its heartbeat and finishes late does not overwrite the first completion", async () => {
    const queue = new MemoryQueue();
    const rec = await newPrediction(queue);
    const releaseA = gate("C:1");
    // C cannot extend its messages' visibility: they reappear while C still works.
    const deaf: PredictionQueue = Object.assign(Object.create(queue), { changeVisibility: async () => {}, kind: "memory" });
    const c = worker("C", deaf);
    c.start();
    await until(() => started.includes("C"));
    const d = worker("D", queue);
    d.start();
    await until(async () => (await store.load("t1", rec.id))?.status === "succeeded");
    releaseA();
    await c.stop();
    await d.stop();
    const end = (await store.load("t1", rec.id))!;
    expect(Buffer.from((await store.result(end))!.output[0].data!, "base64").toString()).toBe("D");
    // D's result is in the end record; C wrote no file of its own that outlived its lost claim.
    const files = (await storage.list(predictionKeys.data("t1", rec.id))).map((o) => o.key);
    expect(files).toEqual([]);
  });

  it("cancel stops a run at its next boundary; a passed deadline fails a prediction that never started", async () => {
    const queue = new MemoryQueue();
    const rec = await newPrediction(queue);
    const release = gate("E:0");
    const e = worker("E", queue, 30);
    e.start();
    await until(() => started.includes("E"));
    const { ended } = await import("../src/predictions/service.ts");
    expect(await store.complete(ended((await store.load("t1", rec.id))!, "canceled"))).toBe(true);
    release();
    await until(async () => (await queue.depth()).inFlight === 0 && (await queue.depth()).visible === 0);
    await e.stop();
    const end = (await store.load("t1", rec.id))!;
    expect(end.status).toBe("canceled");
    expect(end.result).toBeUndefined();

    const late = await newPrediction(queue, -1);
    const f = worker("F", queue);
    f.start();
    await until(async () => (await store.load("t1", late.id))?.status === "failed");
    await f.stop();
    expect(await store.load("t1", late.id)).toMatchObject({ status: "failed", error_code: "deadline_exceeded", attempts: 0 });
    expect(started).not.toContain("F");
  });

  it("a waiter whose first read is overtaken by the run's end answers with that end, not at its next poll", async () => {
    const queue = new MemoryQueue();
    const bus = new PredictionBus();
    const rec = await newPrediction(queue);
    // The waiter's first read sees the record as created, and hands it back only after the worker ended
    // the run: the end is published while that read is under way.
    let releaseRead = () => {};
    const readHeld = new Promise<void>((r) => (releaseRead = r));
    const slowStore = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "load")
          return async (tenant: string, id: string) => {
            const r = await target.load(tenant, id);
            await readHeld;
            return r;
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    // Storage is polled once an hour here: only the notification can end the wait within the test's time.
    const service = new PredictionService(slowStore, queue, new ModelRegistry(storage), bus, storage, {
      deadlineSeconds: 60,
      retentionSeconds: 3600,
      production: false,
      pollMs: 3_600_000,
    });
    const waiting = service.wait(rec.id, "t1", 3600);
    const w = new PredictionWorker(
      { queue, store: storeFor("W"), storage, inference: {} as InferenceService, bus, log },
      { concurrency: 4, visibilitySeconds: 1, maxBatch: 8, waitSeconds: 1 },
    );
    w.start();
    await until(async () => (await store.load("t1", rec.id))?.status === "succeeded");
    releaseRead();
    const end = await waiting;
    await w.stop();
    expect(end.status).toBe("succeeded");
    expect(Buffer.from(store.result(end)!.output[0].data!, "base64").toString()).toBe("W");
  });

  it("retention deletes input and output after the retention time and keeps the record, data_removed", async () => {
    const queue = new MemoryQueue();
    const rec = await newPrediction(queue);
    const g = worker("G", queue);
    g.start();
    await until(async () => (await store.load("t1", rec.id))?.status === "succeeded");
    await g.stop();
    expect(await sweepPredictionData(store, 3600, Date.now())).toBe(0);
    expect(await sweepPredictionData(store, 3600, Date.now() + 3601_000)).toBeGreaterThanOrEqual(1);
    const end = (await store.load("t1", rec.id))!;
    expect(end).toMatchObject({ status: "succeeded", data_removed: true });
    expect(await store.result(end)).toBeUndefined();
    expect(await storage.list(predictionKeys.data("t1", rec.id))).toEqual([]);
  });
});
