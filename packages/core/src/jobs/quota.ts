/**
 * Per-tenant quota on concurrent fine-tunes. Counted from storage (the state every process shares), so it
 * holds across API replicas up to the race between two simultaneous requests landing on different replicas;
 * within one process `FineTuneSlots` closes that race. (The dataset-bytes quota is datasets/quota.ts.)
 */
import { ApiError } from "../errors.ts";
import type { JobReconciler } from "./reconcile.ts";
import type { JobStore } from "./store.ts";
import { TERMINAL } from "./store.ts";

/** Seconds a client is told to wait when all its fine-tune slots are busy: jobs take minutes, not seconds. */
export const FINE_TUNE_RETRY_AFTER_S = 30;

/**
 * Jobs of a tenant that still occupy a slot (queued or running). With a reconciler, a job whose worker died
 * without writing its end (jobs/reconcile.ts) is ended first, so it frees its slot.
 */
export async function activeFineTunes(jobs: JobStore, tenant: string, reconciler?: JobReconciler): Promise<number> {
  const records = await jobs.list(tenant);
  return (reconciler ? await reconciler.reconcile(records) : records).filter((j) => !TERMINAL.has(j.status)).length;
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
    private readonly reconciler?: JobReconciler,
  ) {}

  /** Runs `create` when the tenant has a free slot; 429 rate_limited with Retry-After when it has none. */
  async run<T>(tenant: string, create: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(tenant) ?? Promise.resolve();
    const mine = prev.catch(() => undefined).then(async () => {
      const active = await activeFineTunes(this.jobs, tenant, this.reconciler);
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
