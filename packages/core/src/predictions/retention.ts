/**
 * Retention of prediction data (as Replicate: an hour by default): a sweep deletes the input, result and
 * images of predictions that ended longer ago than the retention time and marks the record
 * `data_removed: true`; the record itself stays. The worker runs it when it has nothing to do, locally and
 * in AWS (S3 lifecycle rules count in whole days, too coarse for an hour, so they are only a backstop).
 */
import type { Logger } from "../log.ts";
import type { PredictionStore } from "./store.ts";

export async function sweepPredictionData(store: PredictionStore, retentionSeconds: number, now = Date.now(), log?: Logger): Promise<number> {
  const cutoff = now - retentionSeconds * 1000;
  let removed = 0;
  for (const { tenant, id } of await store.endedBefore(cutoff)) {
    const end = await store.end(tenant, id);
    if (!end?.completed_at || Date.parse(end.completed_at) > cutoff) continue;
    // Until its deadline a redelivered run of the prediction may still be going, and the end record is
    // what stops it and keeps it from ending the prediction a second time: that record stays until then.
    if (Date.parse(end.deadline_at) > now) continue;
    await store.removeData(end);
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
