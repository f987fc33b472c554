/**
 * Retention of prediction data (as Replicate: an hour by default): a sweep deletes the input, result and
 * images of predictions that ended longer ago than the retention time and marks the record
 * `data_removed: true`; the record itself stays. The worker runs it when it has nothing to do, locally and
 * in AWS (S3 lifecycle rules count in whole days, too coarse for an hour, so they are only a backstop).
 */
import type { Logger } from "../log.ts";
import { isTerminal } from "./schema.ts";
import type { PredictionStore } from "./store.ts";

export async function sweepPredictionData(store: PredictionStore, retentionSeconds: number, now = Date.now(), log?: Logger): Promise<number> {
  let removed = 0;
  for (const { tenant, id } of await store.withData()) {
    const rec = await store.load(tenant, id);
    if (!rec) {
      // Data without a record: a create that failed half-way, old enough to be no one's.
      continue;
    }
    if (!isTerminal(rec.status) || !rec.completed_at) continue;
    if (Date.parse(rec.completed_at) + retentionSeconds * 1000 > now) continue;
    await store.deleteData(tenant, id);
    await store.updateEnded({ ...rec, data_removed: true });
    removed++;
  }
  if (removed) log?.info({ removed }, "prediction data removed by retention");
  return removed;
}

/** Runs `sweep` at most once per `everyMs`: what the worker calls when idle. */
export function periodic(everyMs: number, sweep: () => Promise<unknown>): () => Promise<void> {
  let last = 0;
  return async () => {
    if (Date.now() - last < everyMs) return;
    last = Date.now();
    await sweep();
  };
}
