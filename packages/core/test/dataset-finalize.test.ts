// Dataset finalize as a job (datasets/finalizer.ts) on the embedded store: the request part marks the dataset
// `processing`; the job records `ready` or `failed` with the reason; a job submitted elsewhere (AWS Batch) is
// only submitted; a submit that fails leaves nothing `processing`.
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDatasetZip } from "../src/datasets/index.ts";
import { DatasetFinalizer } from "../src/datasets/finalizer.ts";
import { DatasetQuota } from "../src/datasets/quota.ts";
import { DatasetService } from "../src/datasets/service.ts";
import { ApiError } from "../src/errors.ts";
import { datasetKeys } from "../src/storage/keys.ts";
import type { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";

let embedded: EmbeddedStore;
let storage: Storage;
let datasets: DatasetService;
let quota: DatasetQuota;
let zip: Uint8Array;

beforeAll(async () => {
  embedded = await startEmbeddedStore({ name: "finalize", bucket: "ganserve", maxAttempts: 1 });
  storage = embedded.storage;
  datasets = new DatasetService(storage, { maxUploadBytes: 1 << 20 });
  quota = new DatasetQuota({ storage, datasets }, 10 << 20);
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 9, g: 90, b: 200 } } }).png().toBuffer();
  zip = buildDatasetZip([0, 1, 2].map((i) => ({ path: `images/${i}.png`, bytes: new Uint8Array(png) })));
});
afterAll(() => embedded?.close());

/** A dataset with its zip uploaded (the presigned form's key, written directly). */
async function uploaded(bytes: Uint8Array, tenant = "t1") {
  const ds = await datasets.create({ layout: "auto" }, tenant);
  await storage.put(datasetKeys.upload(ds.id), bytes);
  return ds.id;
}

describe("DatasetFinalizer", () => {
  it("in process: processing at once, then ready with its stats; a second finalize starts nothing new", async () => {
    const finalizer = new DatasetFinalizer(datasets, quota);
    const id = await uploaded(zip);
    const start = await finalizer.start(id, "t1");
    expect(start.record.status).toBe("processing");
    const again = await finalizer.start(id, "t1");
    expect(again.done).toBe(start.done);
    const ready = await start.done!;
    expect(ready).toMatchObject({ status: "ready", stats: { images: 3 } });
    expect((await datasets.get(id, "t1")).status).toBe("ready");
    expect((await finalizer.start(id, "t1")).record.status).toBe("ready");
  });

  it("a refused archive: the job rejects with the same ApiError as before, and the record says failed with the reason", async () => {
    const finalizer = new DatasetFinalizer(datasets, quota);
    const id = await uploaded(new TextEncoder().encode("this is not a zip at all, just some bytes"));
    const { done } = await finalizer.start(id, "t1");
    const err = await done!.catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    const record = await datasets.get(id, "t1");
    expect(record.status).toBe("failed");
    expect(record.error?.code).toBe(err.details.reason);
  });

  it("409 when nothing was uploaded, 404 for another tenant's dataset: both before anything is marked", async () => {
    const finalizer = new DatasetFinalizer(datasets, quota);
    const empty = await datasets.create({ layout: "auto" }, "t1");
    await expect(finalizer.start(empty.id, "t1")).rejects.toMatchObject({ status: 409 });
    expect((await datasets.get(empty.id, "t1")).status).toBe("awaiting_upload");
    const theirs = await uploaded(zip, "t2");
    await expect(finalizer.start(theirs, "t1")).rejects.toMatchObject({ status: 404 });
  });

  it("elsewhere (Batch): only submitted, the dataset id as the job; the job (`run`) then ends it", async () => {
    const submitted: string[] = [];
    const finalizer = new DatasetFinalizer(datasets, quota, async (id) => submitted.push(id));
    const id = await uploaded(zip);
    const start = await finalizer.start(id, "t1");
    expect(start.done).toBeUndefined();
    expect(submitted).toEqual([id]);
    expect((await datasets.get(id, "t1")).status).toBe("processing");
    // What the worker does with a `ds_` job id.
    const record = await datasets.load(id);
    expect(await new DatasetFinalizer(datasets, quota).run(id, record!.tenant)).toMatchObject({ status: "ready" });
  });

  it("a submit that fails: 503 queue_unavailable, and the dataset is not left processing", async () => {
    const finalizer = new DatasetFinalizer(datasets, quota, async () => {
      throw new Error("not authorized to perform batch:SubmitJob");
    });
    const id = await uploaded(zip);
    await expect(finalizer.start(id, "t1")).rejects.toMatchObject({ code: "queue_unavailable", status: 503 });
    expect(await datasets.get(id, "t1")).toMatchObject({ status: "failed", error: { code: "finalize_error" } });
    // The zip is kept: finalize can be asked again.
    expect(await storage.exists(datasetKeys.upload(id))).toBe(true);
  });
});
