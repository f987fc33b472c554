// Deploy rehearsal, control plane: a fine-tune whose submit fails (Batch denied or down) must not stay
// `queued`, where it would hold one of the tenant's fine-tune slots forever (nothing would ever run it).
// The real FineTuneService and JobStore on the embedded store; a launcher that fails like SubmitJob does.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { DatasetService } from "@ganserve/core/datasets/service";
import type { ModelRegistry } from "@ganserve/core/models/registry";
import { activeFineTunes } from "@ganserve/core/jobs/quota";
import { FineTuneService } from "@ganserve/core/jobs/service";
import { JobStore } from "@ganserve/core/jobs/store";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, Storage, type EmbeddedS3 } from "@ganserve/core/storage/index";

let dir: string;
let store: EmbeddedS3;
let storage: Storage;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-submit-"));
  store = await startEmbeddedS3({ directory: dir, bucket: "rehearsal" });
  storage = new Storage({ bucket: "rehearsal", region: "us-east-1", endpoint: store.endpoint, credentials: EMBEDDED_CREDENTIALS });
});
afterAll(async () => {
  storage?.destroy();
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a failed submit ends the job `failed` (launch_failed), frees the slot, and answers 503 with Retry-After", async () => {
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
