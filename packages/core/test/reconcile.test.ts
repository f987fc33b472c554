// Fine-tune reconciliation (jobs/reconcile.ts) on the embedded store, with Batch's answers scripted: which
// Batch states end a record, which leave it, and that a worker's own end always wins.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BatchJobState, JobStates } from "../src/jobs/launcher.ts";
import { JobReconciler } from "../src/jobs/reconcile.ts";
import { JobStore, newJobRecord, type JobRecord } from "../src/jobs/store.ts";
import type { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";

let embedded: EmbeddedStore;
let storage: Storage;
let jobs: JobStore;

beforeAll(async () => {
  embedded = await startEmbeddedStore({ name: "reconcile", bucket: "ganserve", maxAttempts: 1 });
  storage = embedded.storage;
  jobs = new JobStore(storage);
});
afterAll(() => embedded?.close());

/** Batch as a table the test writes; counts DescribeJobs calls. */
function scripted(table: Record<string, BatchJobState>) {
  const calls: string[][] = [];
  const states: JobStates & { calls: string[][]; fail?: Error } = {
    calls,
    async describe(ids) {
      calls.push(ids);
      if (states.fail) throw states.fail;
      return new Map(ids.filter((id) => table[id]).map((id) => [id, table[id]]));
    },
    async terminate() {},
  };
  return states;
}

let n = 0;
async function job(status: JobRecord["status"], batch: string | undefined, createdAgoMs = 0): Promise<JobRecord> {
  const id = `ft_reconcile${String(++n).padStart(10, "0")}`;
  const base = newJobRecord({ id, tenant: "t1", family: "stylegan2", baseVersion: "v1", params: { base_model: "b", dataset: "ds_x", name: "out", steps: 10 } as never });
  const record: JobRecord = { ...base, status, batch_job_id: batch, created_at: new Date(Date.now() - createdAgoMs).toISOString() };
  await jobs.save(record);
  await jobs.putEvent(id, { seq: 1, type: "status", status: "queued", time: record.created_at, step: 0 });
  return record;
}

describe("JobReconciler", () => {
  it("ends a record Batch failed (with its reason), one it says succeeded without an end, and leaves running ones", async () => {
    const oom = await job("running", "b-oom");
    const exited = await job("running", "b-exited");
    const alive = await job("running", "b-alive");
    const local = await job("queued", undefined);
    const states = scripted({
      "b-oom": { status: "FAILED", reason: "Essential container in task exited; OutOfMemoryError: Container killed due to memory usage, exit code 137" },
      "b-exited": { status: "SUCCEEDED" },
      "b-alive": { status: "RUNNING" },
    });
    const out = await new JobReconciler(jobs, states, { minIntervalMs: 0 }).reconcile([oom, exited, alive, local]);
    expect(out.map((r) => r.status)).toEqual(["failed", "failed", "running", "queued"]);
    expect(out[0].error).toMatchObject({ code: "worker_died" });
    expect(out[0].error?.message).toContain("OutOfMemoryError");
    expect(out[1].error?.code).toBe("worker_exited");
    // One DescribeJobs for all the records that have a Batch job; the local one is never asked about.
    expect(states.calls).toEqual([["b-oom", "b-exited", "b-alive"]]);
    // Stored, with the event stream ended (status then done), after the events already there.
    expect((await jobs.load(oom.id))?.status).toBe("failed");
    expect((await jobs.events(oom.id)).map((e) => [e.seq, e.type, e.status])).toEqual([
      [1, "status", "queued"],
      [2, "status", "failed"],
      [3, "done", "failed"],
    ]);
  });

  it("a failed job whose cancel was asked for ends canceled", async () => {
    const r = await job("queued", "b-canceled");
    await jobs.requestCancel(r.id);
    const [out] = await new JobReconciler(jobs, scripted({ "b-canceled": { status: "FAILED", reason: "ganserve: canceled" } }), { minIntervalMs: 0 }).reconcile([r]);
    expect(out.status).toBe("canceled");
    expect(out.error).toBeUndefined();
  });

  it("a job Batch does not know ends only once it is older than missingAfterMs", async () => {
    const fresh = await job("queued", "b-unknown-1", 1000);
    const old = await job("queued", "b-unknown-2", 60 * 60_000);
    const out = await new JobReconciler(jobs, scripted({}), { minIntervalMs: 0, missingAfterMs: 10 * 60_000 }).reconcile([fresh, old]);
    expect(out.map((r) => r.status)).toEqual(["queued", "failed"]);
    expect(out[1].error?.code).toBe("worker_lost");
  });

  it("never overwrites an end the worker wrote after the list was read", async () => {
    const r = await job("running", "b-race");
    await jobs.save({ ...r, status: "succeeded", result: { model: "out", version: "v2" } });
    const [out] = await new JobReconciler(jobs, scripted({ "b-race": { status: "SUCCEEDED" } }), { minIntervalMs: 0 }).reconcile([r]);
    expect(out.status).toBe("succeeded");
    expect((await jobs.load(r.id))?.status).toBe("succeeded");
  });

  it("asks about a record at most once per minIntervalMs, and a Batch error leaves records as they were", async () => {
    let now = 1_000_000;
    const r = await job("running", "b-poll");
    const states = scripted({ "b-poll": { status: "RUNNING" } });
    const reconciler = new JobReconciler(jobs, states, { minIntervalMs: 15_000, now: () => now, onError: (e) => errors.push(e) });
    const errors: unknown[] = [];
    await reconciler.reconcile([r]);
    now += 5_000;
    await reconciler.reconcile([r]);
    expect(states.calls).toHaveLength(1);
    now += 15_000;
    states.fail = new Error("ThrottlingException");
    expect(await reconciler.reconcile([r])).toEqual([r]);
    expect(states.calls).toHaveLength(2);
    expect(errors).toEqual([states.fail]);
  });
});
