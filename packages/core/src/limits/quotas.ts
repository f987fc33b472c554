/**
 * Per-tenant quotas: concurrent fine-tunes and bytes of dataset storage. Both are counted from storage (the
 * state every process shares), so they hold across API replicas up to the race between two simultaneous
 * requests landing on different replicas; within one process `FineTuneSlots` closes that race.
 */
import type { DatasetService } from "../datasets/service.ts";
import { ApiError } from "../errors.ts";
import type { JobStore } from "../jobs/store.ts";
import { TERMINAL } from "../jobs/store.ts";
import type { Storage } from "../storage/storage.ts";

/** Seconds a client is told to wait when all its fine-tune slots are busy: jobs take minutes, not seconds. */
export const FINE_TUNE_RETRY_AFTER_S = 30;

/** Jobs of a tenant that still occupy a slot (queued or running). */
export async function activeFineTunes(jobs: JobStore, tenant: string): Promise<number> {
  return (await jobs.list(tenant)).filter((j) => !TERMINAL.has(j.status)).length;
}

/**
 * Serializes "count the tenant's active jobs, then create one" per tenant in this process, so two requests
 * arriving together cannot both see a free slot. Different tenants never wait on each other.
 */
export class FineTuneSlots {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly jobs: JobStore,
    readonly maxPerTenant: number,
  ) {}

  /** Runs `create` when the tenant has a free slot; 429 rate_limited with Retry-After when it has none. */
  async run<T>(tenant: string, create: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(tenant) ?? Promise.resolve();
    const mine = prev.catch(() => undefined).then(async () => {
      const active = await activeFineTunes(this.jobs, tenant);
      if (active >= this.maxPerTenant)
        throw new ApiError(
          "rate_limited",
          `tenant has ${active} fine-tunes queued or running; the limit is ${this.maxPerTenant}. Retry when one finishes`,
          { reason: "concurrent_fine_tunes", limit: this.maxPerTenant, active },
          FINE_TUNE_RETRY_AFTER_S,
        );
      return create();
    });
    this.chains.set(tenant, mine);
    try {
      return await mine;
    } finally {
      // Only the last request in the chain may clear it, or a later waiter would lose its place.
      if (this.chains.get(tenant) === mine) this.chains.delete(tenant);
    }
  }
}

/** Bytes a dataset occupies in storage: its upload, its indexed files and its records. */
async function datasetBytes(storage: Storage, id: string): Promise<number> {
  return (await storage.list(`datasets/${id}/`)).reduce((sum, o) => sum + o.size, 0);
}

export interface DatasetUsage {
  /** Bytes the tenant's datasets hold now, the pending upload included. */
  used: number;
  /** What finalizing `id` adds: its indexed files, about the size of the zip they came from. */
  incoming: number;
  limit: number;
}

/**
 * Call before `datasets.finalize(id, tenant)`. Refuses with 413 payload_too_large (details.reason
 * "quota_exceeded") when the tenant's datasets plus what finalize would write exceed `limit` bytes. The
 * dataset stays awaiting_upload, so the client can upload a smaller zip to the same URL.
 */
export async function checkDatasetQuota(
  deps: { storage: Storage; datasets: DatasetService },
  id: string,
  tenant: string,
  limit: number,
): Promise<DatasetUsage> {
  const record = await deps.datasets.get(id, tenant);
  // Finalize of a ready dataset writes nothing new.
  if (record.status === "ready") return { used: 0, incoming: 0, limit };
  const upload = await deps.storage.head(`datasets/${id}/upload.zip`);
  const incoming = upload?.size ?? 0;
  let used = 0;
  for (const ds of await deps.datasets.list(tenant)) used += await datasetBytes(deps.storage, ds.id);
  if (used + incoming > limit)
    throw new ApiError(
      "payload_too_large",
      `datasets of this tenant would hold ${used + incoming} bytes; the quota is ${limit}`,
      { dataset: id, reason: "quota_exceeded", quota: "dataset_bytes", limit, used, incoming },
    );
  return { used, incoming, limit };
}
