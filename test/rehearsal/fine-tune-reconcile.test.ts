// Deploy rehearsal, control plane: fine-tune records reconciled with AWS Batch. The real FineTuneService,
// JobReconciler and BatchLauncher (the AWS SDK's Batch client) against the recording Batch fake, each call
// decided against the API Lambda's role from the mocked graph. A job whose worker died without writing its
// end (killed for memory) ends `failed` with Batch's reason and frees its slot; a cancel of a waiting job
// terminates it in Batch. Storage is the embedded store (the Lambda's S3 calls are rehearsed in lambda.test.ts).
import { BatchClient } from "@aws-sdk/client-batch";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { DatasetService } from "@ganserve/core/datasets/service";
import type { ModelRegistry } from "@ganserve/core/models/registry";
import { BatchLauncher } from "@ganserve/core/jobs/launcher";
import { activeFineTunes } from "@ganserve/core/jobs/quota";
import { JobReconciler } from "@ganserve/core/jobs/reconcile";
import { FineTuneService } from "@ganserve/core/jobs/service";
import { JobStore } from "@ganserve/core/jobs/store";
import { EMBEDDED_CREDENTIALS, type Storage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { apiLambda, MOCK_REGION, rolePolicies, runSstConfigUnderMocks, type MockRun } from "../../infra/mock-harness.ts";
import { startFakeBatch } from "./aws-fakes.ts";
import { RoleGate } from "./iam.ts";

let run: MockRun;
let gate: RoleGate;
let batch: Awaited<ReturnType<typeof startFakeBatch>>;
let store: EmbeddedStore;
let storage: Storage;
let jobs: JobStore;
let service: FineTuneService;
let reconciler: JobReconciler;
let link: { jobQueue: string; jobDefinition: string };

beforeAll(async () => {
  run = await runSstConfigUnderMocks({ stage: "rehearsal", env: { SST_SECRET_ApiKeys: "rehearsal:gk_rehearsal_0123456789abcdef", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  const fn = apiLambda(run);
  gate = new RoleGate(fn.role, rolePolicies(run).get(fn.role) ?? []);
  link = fn.links.FineTune as typeof link;
  batch = await startFakeBatch(gate);
  store = await startEmbeddedStore({ name: "reconcile", bucket: "rehearsal", region: MOCK_REGION });
  storage = store.storage;
  jobs = new JobStore(storage);
  const client = new BatchClient({ region: MOCK_REGION, endpoint: batch.endpoint, credentials: EMBEDDED_CREDENTIALS, maxAttempts: 1 });
  const launcher = new BatchLauncher({ jobQueue: link.jobQueue, jobDefinition: link.jobDefinition, client });
  // Only what create() asks of them: a stylegan2 base and a ready stylegan2 dataset of this tenant.
  const registry = { resolve: async () => ({ name: "base", version: "v1", family: "stylegan2", config: { c_dim: 0 } }), claim: async () => {} } as unknown as ModelRegistry;
  const datasets = { get: async () => ({ id: "ds_rehearsal0000000000", tenant: "t1", layout: "stylegan2", status: "ready", stats: { images: 8 } }) } as unknown as DatasetService;
  reconciler = new JobReconciler(jobs, launcher.states, { minIntervalMs: 0 });
  service = new FineTuneService(jobs, datasets, registry, storage, launcher, false, undefined, reconciler);
}, 240_000);

afterAll(async () => {
  await store?.close();
  await batch?.close();
  await run?.close();
});

const create = (name: string) => service.create({ base_model: "base", dataset: "ds_rehearsal0000000000", name, steps: 10 } as never, "t1");

test("the record keeps the Batch job id SubmitJob returned", async () => {
  const ft = await create("rehearsal-a");
  const record = await jobs.load(ft.id);
  expect(record?.batch_job_id).toBeDefined();
  expect(batch.jobs.get(record!.batch_job_id!)?.jobName).toBe(`ganserve-${ft.id}`);
});

test("a worker killed for memory before it wrote its end: the job ends failed with Batch's reason, its slot is free", async () => {
  const ft = await create("rehearsal-oom");
  const record = (await jobs.load(ft.id))!;
  // Batch started the worker (it wrote `running`), then the container was killed for memory.
  await jobs.save({ ...record, status: "running" });
  Object.assign(batch.jobs.get(record.batch_job_id!)!, {
    status: "FAILED",
    statusReason: "Essential container in task exited",
    attempts: [{ container: { reason: "OutOfMemoryError: Container killed due to memory usage", exitCode: 137 } }],
  });
  const active = await activeFineTunes(jobs, "t1");
  expect(await activeFineTunes(jobs, "t1", reconciler)).toBe(active - 1);
  const got = await service.get(ft.id, "t1");
  expect(got.status).toBe("failed");
  expect(got.error?.code).toBe("worker_died");
  expect(got.error?.message).toContain("OutOfMemoryError");
  expect(got.error?.message).toContain("exit code 137");
  const events = await jobs.events(ft.id);
  expect(events.at(-1)).toMatchObject({ type: "done", status: "failed" });
});

test("cancel of a job waiting in Batch terminates it there; reconciliation records it canceled", async () => {
  const ft = await create("rehearsal-cancel");
  const record = (await jobs.load(ft.id))!;
  await service.cancel(ft.id, "t1");
  expect(batch.accepted.filter((c) => c.operation === "TerminateJob").map((c) => c.input.jobId)).toEqual([record.batch_job_id]);
  expect(batch.jobs.get(record.batch_job_id!)?.status).toBe("FAILED");
  expect((await service.get(ft.id, "t1")).status).toBe("canceled");
});

test("every Batch call was allowed by the Lambda's role, and every Batch grant was used", async () => {
  expect(gate.decisions.length).toBeGreaterThan(0);
  expect(gate.denied()).toEqual([]);
  expect((await gate.unused()).filter((g) => g.startsWith("batch:"))).toEqual([]);
});
