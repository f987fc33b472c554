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
import type { DatasetLayout } from "./inspect.ts";
import type { DatasetRecord, DatasetService } from "./service.ts";

/** 413 payload_too_large for the dataset-bytes quota: what it allows, what is held, what would come. */
function quotaExceeded(message: string, usage: { limit: number; used: number; incoming: number; dataset?: string }) {
  const { dataset, ...counts } = usage;
  return new ApiError("payload_too_large", message, { ...(dataset ? { dataset } : {}), reason: "quota_exceeded", quota: "dataset_bytes", ...counts });
}

/** The quota an open upload form holds: its max_bytes until it expires, while the dataset awaits the zip. */
export function heldByForm(ds: DatasetRecord, now = Date.now()): number {
  if (ds.status !== "awaiting_upload" || !ds.upload) return 0;
  return Date.parse(ds.upload.expires_at) > now ? ds.upload.max_bytes : 0;
}

/**
 * What a dataset counts against the quota: its bytes in storage, or what its open upload form holds when that
 * is more (the zip the form accepts is at most that, so it is not counted on top). A zip that reaches a dataset
 * that is no longer awaiting one (the form used again after finalize, or after a refusal) is never read, so it
 * is deleted here, not counted.
 */
async function heldBytes(storage: Storage, ds: DatasetRecord, now: number): Promise<number> {
  const objects = await storage.list(datasetKeys.prefix(ds.id));
  // A processing dataset's zip is being read: it is counted, never deleted.
  const stray = (ds.status === "ready" || ds.status === "failed") && objects.some((o) => o.key === datasetKeys.upload(ds.id));
  if (stray) await storage.delete(datasetKeys.upload(ds.id));
  const stored = objects.reduce((sum, o) => sum + (stray && o.key === datasetKeys.upload(ds.id) ? 0 : o.size), 0);
  return Math.max(stored, heldByForm(ds, now));
}

/** Bytes the tenant's datasets hold against its quota, `except` one (the one being finalized). */
export async function tenantDatasetBytes(deps: { storage: Storage; datasets: DatasetService }, tenant: string, except?: string): Promise<number> {
  const now = Date.now();
  let used = 0;
  for (const ds of await deps.datasets.list(tenant)) if (ds.id !== except) used += await heldBytes(deps.storage, ds, now);
  return used;
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
 * "quota_exceeded") when the tenant's datasets plus what finalize would write exceed `limit` bytes; through
 * `DatasetQuota.finalize` the refused upload is then deleted and the dataset failed. Other datasets count
 * with what their open upload forms hold (`heldByForm`), so a form issued within the quota is finalized
 * within it.
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
  const used = await tenantDatasetBytes(deps, tenant, id);
  if (used + incoming > limit)
    throw quotaExceeded(`datasets of this tenant would hold ${used + incoming} bytes; the quota is ${limit}`, { dataset: id, limit, used, incoming });
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

  /**
   * Creates a dataset whose upload form holds its size of the tenant's quota (`size_bytes`, or all the room
   * left up to maxUploadBytes) until finalize or the form's expiry; the form accepts no larger zip. 413
   * payload_too_large (reason upload_too_large, or quota_exceeded when the room is not there).
   */
  create(req: { name?: string; layout: DatasetLayout | "auto"; size_bytes?: number }, tenant: string): Promise<DatasetRecord> {
    return this.serial.run(tenant, async () => {
      const max = this.deps.datasets.maxUploadBytes;
      if (req.size_bytes !== undefined && req.size_bytes > max)
        throw new ApiError("payload_too_large", `a dataset zip may be at most ${max} bytes; size_bytes is ${req.size_bytes}`, { reason: "upload_too_large", limit: max });
      const used = await tenantDatasetBytes(this.deps, tenant);
      const room = this.limit - used;
      const size = req.size_bytes ?? Math.min(max, room);
      if (size < 1 || size > room)
        throw quotaExceeded(`datasets of this tenant hold ${used} bytes; the quota is ${this.limit}, so there is no room for ${req.size_bytes ?? "another"} more`, {
          limit: this.limit,
          used,
          incoming: req.size_bytes ?? 0,
        });
      return this.deps.datasets.create({ name: req.name, layout: req.layout }, tenant, { maxBytes: size });
    });
  }

  /**
   * Finalize under the quota. A refusal for the quota deletes the uploaded zip and fails the dataset (its form
   * holds nothing from then on): nothing refused stays stored.
   */
  finalize(id: string, tenant: string): Promise<DatasetRecord> {
    return this.serial.run(tenant, () =>
      this.finalizeInQuota(id, tenant).catch(async (e: unknown) => {
        const details = e instanceof ApiError ? (e.details as { reason?: string } | undefined) : undefined;
        if (e instanceof ApiError && details?.reason === "quota_exceeded")
          return this.deps.datasets.refuse(id, tenant, "payload_too_large", e.message, e.details as Record<string, unknown> & { reason: string });
        throw e;
      }),
    );
  }

  private async finalizeInQuota(id: string, tenant: string): Promise<DatasetRecord> {
    const { used } = await checkDatasetQuota(this.deps, id, tenant, this.limit);
    // The upload's size only estimates the files: deflate lets a small zip hold far more. The files
    // themselves are held to the room left, and counted as they are written.
    return this.deps.datasets.finalize(id, tenant, {
      maxFileBytes: this.limit - used,
      overBudget: (bytes) =>
        quotaExceeded(`datasets of this tenant would hold over ${used + bytes} bytes; the quota is ${this.limit}`, { dataset: id, limit: this.limit, used, incoming: bytes }),
    });
  }
}
