// Per-tenant indexes (storage/keys.ts `tenantIndex`): counting a tenant's fine-tune slots, listing its jobs and
// datasets, and its dataset-bytes quota read only that tenant's objects, however many other tenants have.
// Every read goes through a spy on the real Storage (embedded store).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantDatasetBytes } from "../src/datasets/quota.ts";
import { DatasetService } from "../src/datasets/service.ts";
import { activeFineTunes } from "../src/jobs/quota.ts";
import { JobStore, newJobRecord } from "../src/jobs/store.ts";
import { datasetKeys, jobKeys } from "../src/storage/keys.ts";
import type { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";

let embedded: EmbeddedStore;
let storage: Storage;
/** Keys read (GET, HEAD; getJson reads through get, so a key may appear more than once) and prefixes listed. */
const reads: string[] = [];
const listed: string[] = [];
const mine = { jobs: [] as string[], datasets: [] as string[] };

beforeAll(async () => {
  embedded = await startEmbeddedStore({ name: "tenant-index", bucket: "ganserve", maxAttempts: 1 });
  storage = embedded.storage;
  const jobs = new JobStore(storage);
  const datasets = new DatasetService(storage, { maxUploadBytes: 1 << 20 });
  // Tenant "me" has 2 jobs (one finished) and 2 datasets; 3 other tenants have 5 jobs and 3 datasets each.
  for (const [tenant, n, m] of [["me", 2, 2], ["t1", 5, 3], ["t2", 5, 3], ["t3", 5, 3]] as const) {
    for (let i = 0; i < n; i++) {
      const id = `ft_${tenant}idx${String(i).padStart(14, "0")}`;
      const record = newJobRecord({ id, tenant, family: "stylegan2", baseVersion: "v1", params: { base_model: "b", dataset: "ds_x", name: "out", steps: 4 } as never });
      await jobs.create(i === 0 ? { ...record, status: "succeeded" } : record);
      if (tenant === "me") mine.jobs.push(id);
    }
    for (let i = 0; i < m; i++) {
      const ds = await datasets.create({ layout: "auto" }, tenant);
      if (tenant === "me") mine.datasets.push(ds.id);
    }
  }
  // The spy: every read from here on is recorded.
  for (const name of ["get", "getText", "getJson", "head", "exists"] as const) {
    const real = storage[name].bind(storage) as (key: string) => Promise<unknown>;
    (storage as unknown as Record<string, unknown>)[name] = (key: string) => {
      reads.push(key);
      return real(key);
    };
  }
  for (const name of ["list", "listPrefixes"] as const) {
    const real = storage[name].bind(storage) as (prefix: string) => Promise<unknown>;
    (storage as unknown as Record<string, unknown>)[name] = (prefix: string) => {
      listed.push(prefix);
      return real(prefix);
    };
  }
});
afterAll(() => embedded?.close());

const reset = () => {
  reads.length = 0;
  listed.length = 0;
};
/** Whether a key belongs to one of "me"'s records or index. */
const ofMine = (key: string) =>
  key.startsWith(jobKeys.tenantIndex("me")) ||
  key.startsWith(datasetKeys.tenantIndex("me")) ||
  mine.jobs.some((id) => key.startsWith(jobKeys.prefix(id))) ||
  mine.datasets.some((id) => key.startsWith(datasetKeys.prefix(id)));

describe("per-tenant indexes", () => {
  it("a tenant's fine-tune slot count lists its index and GETs only its own job records", async () => {
    reset();
    expect(await activeFineTunes(new JobStore(storage), "me")).toBe(1);
    expect(listed).toEqual([jobKeys.tenantIndex("me")]);
    expect([...new Set(reads)].sort()).toEqual(mine.jobs.map((id) => jobKeys.record(id)).sort());
  });

  it("a tenant's job list has its jobs only, newest first, from its own records", async () => {
    reset();
    const list = await new JobStore(storage).list("me");
    expect(list.map((j) => j.id).sort()).toEqual([...mine.jobs].sort());
    expect(reads.every(ofMine), reads.join(", ")).toBe(true);
  });

  it("a tenant's dataset list and dataset-bytes quota read only its own datasets", async () => {
    const datasets = new DatasetService(storage, { maxUploadBytes: 1 << 20 });
    reset();
    expect((await datasets.list("me")).map((d) => d.id).sort()).toEqual([...mine.datasets].sort());
    expect(listed).toEqual([datasetKeys.tenantIndex("me")]);
    expect([...new Set(reads)].sort()).toEqual(mine.datasets.map((id) => datasetKeys.record(id)).sort());
    reset();
    await tenantDatasetBytes({ storage, datasets }, "me");
    expect([...reads, ...listed].every(ofMine), [...reads, ...listed].join(", ")).toBe(true);
    expect(listed.length).toBeGreaterThan(0);
  });

  it("without a tenant (the local launcher re-adopting jobs) every job is listed, and the index is no job", async () => {
    const all = await new JobStore(storage).list();
    expect(all).toHaveLength(17);
    expect(await new JobStore(storage).ids()).not.toContain("_tenants");
  });
});
