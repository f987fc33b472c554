/**
 * Per-tenant quota on bytes of dataset storage. Counted from storage (the state every process shares), so it
 * holds across API replicas up to the race between two simultaneous requests landing on different replicas;
 * within one process `DatasetQuota` serialises check and finalize per tenant, which closes that race.
 * (The concurrent fine-tunes quota is jobs/quota.ts.)
 */
import { ApiError } from "../errors.ts";
import { PerKeySerial } from "../limits/per-key-serial.ts";
import { datasetKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import type { DatasetRecord, DatasetService } from "./service.ts";

/** Bytes a dataset occupies in storage: its upload, its indexed files and its records. */
async function datasetBytes(storage: Storage, id: string): Promise<number> {
  return (await storage.list(datasetKeys.prefix(id))).reduce((sum, o) => sum + o.size, 0);
}

export interface DatasetUsage {
  /** Bytes the tenant's other datasets hold now (their pending uploads included). */
  used: number;
  /**
   * What `id` holds once finalized: its indexed files, about the size of the zip they came from, which
   * finalize deletes. Counted once: the pending upload is this, not also part of `used`.
   */
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
  const upload = await deps.storage.head(datasetKeys.upload(id));
  const incoming = upload?.size ?? 0;
  let used = 0;
  for (const ds of await deps.datasets.list(tenant)) if (ds.id !== id) used += await datasetBytes(deps.storage, ds.id);
  if (used + incoming > limit)
    throw new ApiError(
      "payload_too_large",
      `datasets of this tenant would hold ${used + incoming} bytes; the quota is ${limit}`,
      { dataset: id, reason: "quota_exceeded", quota: "dataset_bytes", limit, used, incoming },
    );
  return { used, incoming, limit };
}

/**
 * Finalize under the dataset-bytes quota. The check and the writes it admits run one at a time per tenant in
 * this process (as `FineTuneSlots` does for fine-tunes), so concurrent finalizes cannot each see the room the
 * others are about to fill. Other tenants never wait.
 */
export class DatasetQuota {
  private readonly serial = new PerKeySerial();

  constructor(
    private readonly deps: { storage: Storage; datasets: DatasetService },
    readonly limit: number,
  ) {}

  finalize(id: string, tenant: string): Promise<DatasetRecord> {
    return this.serial.run(tenant, async () => {
      const { used } = await checkDatasetQuota(this.deps, id, tenant, this.limit);
      // The upload's size only estimates the files: deflate lets a small zip hold far more. The files
      // themselves are held to the room left, and counted as they are written.
      return this.deps.datasets.finalize(id, tenant, {
        maxFileBytes: this.limit - used,
        overBudget: (bytes) =>
          new ApiError("payload_too_large", `datasets of this tenant would hold over ${used + bytes} bytes; the quota is ${this.limit}`, {
            dataset: id,
            reason: "quota_exceeded",
            quota: "dataset_bytes",
            limit: this.limit,
            used,
            incoming: bytes,
          }),
      });
    });
  }
}
