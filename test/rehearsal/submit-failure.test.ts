// Deploy rehearsal, control plane, review defect 7: SubmitJob as the API sends it (tags included) must be
// allowed by the API Lambda's role, and a fine-tune whose submit fails anyway (Batch down) must not stay
// `queued`, where it would hold one of the tenant's fine-tune slots forever (nothing would ever run it).
// The real BatchLauncher against the recording Batch fake, decided against the Lambda's role from the graph;
// the real FineTuneService and JobStore on the embedded store with a launcher that fails like SubmitJob does.
import { BatchClient } from "@aws-sdk/client-batch";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { DatasetService } from "@ganserve/core/datasets/service";
import type { ModelRegistry } from "@ganserve/core/models/registry";
import { activeFineTunes } from "@ganserve/core/jobs/quota";
import { BatchLauncher } from "@ganserve/core/jobs/launcher";
import { FineTuneService } from "@ganserve/core/jobs/service";
import { JobStore } from "@ganserve/core/jobs/store";
import { EMBEDDED_CREDENTIALS, type Storage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { apiLambda, MOCK_REGION, rolePolicies, runSstConfigUnderMocks } from "../../infra/mock-harness.ts";
import { startFakeBatch } from "./aws-fakes.ts";
import { RoleGate } from "./iam.ts";

let store: EmbeddedStore;
let storage: Storage;

beforeAll(async () => {
  store = await startEmbeddedStore({ name: "submit", bucket: "rehearsal" });
  storage = store.storage;
});
afterAll(() => store?.close());

test("defect 7: SubmitJob as the API sends it (tags, the new job/*, any definition revision) is allowed by the Lambda's role", async () => {
  const run = await runSstConfigUnderMocks({ stage: "rehearsal", env: { SST_SECRET_ApiKeys: "k", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  try {
    const fn = apiLambda(run);
    const gate = new RoleGate(fn.role, rolePolicies(run).get(fn.role) ?? []);
    const batch = await startFakeBatch(gate);
    const client = new BatchClient({ region: MOCK_REGION, endpoint: batch.endpoint, credentials: EMBEDDED_CREDENTIALS });
    try {
      const link = fn.links.FineTune as { jobQueue: string; jobDefinition: string };
      let error: unknown;
      await new BatchLauncher({ jobQueue: link.jobQueue, jobDefinition: link.jobDefinition, client }).launch("ft_rehearsal0000000000").catch((e) => {
        error = e;
      });
      expect(gate.denied().map((d) => `${d.action} on ${d.resource}`)).toEqual([]);
      expect(error).toBeUndefined();
      expect(batch.accepted.map((c) => c.operation)).toEqual(["SubmitJob"]);
    } finally {
      client.destroy();
      await batch.close();
    }
  } finally {
    await run.close();
  }
}, 180_000);

test("defect 7: a failed submit ends the job `failed` (launch_failed), frees the slot, and answers 503 with Retry-After", async () => {
  const jobs = new JobStore(storage);
  // Only what create() asks of them: a stylegan2 base and a ready stylegan2 dataset of this tenant.
  const registry = {
    resolve: async () => ({ name: "base", version: "v1", family: "stylegan2", config: { c_dim: 0 } }),
    claim: async () => {},
  } as unknown as ModelRegistry;
  const datasets = {
    get: async () => ({ id: "ds_rehearsal0000000000", tenant: "t1", layout: "stylegan2", status: "ready", stats: { images: 8 } }),
  } as unknown as DatasetService;
  const launcher = {
    launch: async () => {
      throw new Error("User: arn:aws:sts::123456789012:assumed-role/Api is not authorized to perform: batch:TagResource");
    },
    adopt: async () => [],
    close: async () => {},
  };
  const service = new FineTuneService(jobs, datasets, registry, storage, launcher, false);
  const err = (await service.create({ base_model: "base", dataset: "ds_rehearsal0000000000", name: "rehearsal-out", steps: 10 } as never, "t1").catch((e) => e)) as {
    code?: string;
    status?: number;
    retryAfter?: number;
  };
  expect(err).toMatchObject({ code: "queue_unavailable", status: 503, retryAfter: 30 });
  const [job] = await jobs.list("t1");
  expect(job).toMatchObject({ status: "failed", error: { code: "launch_failed" } });
  expect(job.error?.message).toContain("batch:TagResource");
  expect(await activeFineTunes(jobs, "t1")).toBe(0);
});
