/**
 * Reconciliation of fine-tune records with AWS Batch. A record is written by its worker, so a worker that dies
 * before it writes its end (killed for memory, a crash at start, the attempt timeout, any exit Batch does not
 * retry) leaves it `queued` or `running` for ever, holding one of the tenant's fine-tune slots. Batch knows
 * better: when it says the job FAILED or SUCCEEDED, the container is gone and will write nothing more, so a
 * record that is still not terminal is ended here, `failed` with Batch's reason (`canceled` when a cancel was
 * asked for: a cancel terminates a waiting job).
 *
 * It runs when records are read (GET, list, the slot count of a create), for the non-terminal ones that have a
 * Batch job: the reads that need the truth ask for it, and nothing runs while nobody looks (docs/deploy.md
 * "Fine-tune reconciliation" says why this rather than an EventBridge rule).
 */
import { TERMINAL, type JobRecord, type JobStore } from "./store.ts";
import type { JobStates } from "./launcher.ts";

export interface ReconcilerOptions {
  /** A record is asked about at most this often by one process (a polling client must not turn into DescribeJobs calls). */
  minIntervalMs?: number;
  /**
   * A job Batch does not know is ended only when its record is older than this: Batch forgets finished jobs
   * after about a week, and a job just submitted may not be listed yet.
   */
  missingAfterMs?: number;
  onError?: (err: unknown) => void;
  now?: () => number;
}

const DEFAULTS = { minIntervalMs: 15_000, missingAfterMs: 10 * 60_000 };

export class JobReconciler {
  private readonly checkedAt = new Map<string, number>();
  private readonly opts: Required<Omit<ReconcilerOptions, "onError">> & Pick<ReconcilerOptions, "onError">;

  constructor(
    private readonly jobs: JobStore,
    private readonly states: JobStates,
    opts: ReconcilerOptions = {},
  ) {
    this.opts = { ...DEFAULTS, now: Date.now, ...opts };
  }

  /**
   * The records with those Batch has ended brought up to date (in the same order). A failure to ask Batch
   * leaves them as they were: a read never fails because reconciliation could not run.
   */
  async reconcile(records: JobRecord[]): Promise<JobRecord[]> {
    const now = this.opts.now();
    const due = records.filter((r) => !TERMINAL.has(r.status) && r.batch_job_id && now - (this.checkedAt.get(r.id) ?? -Infinity) >= this.opts.minIntervalMs);
    if (due.length === 0) return records;
    let states: Awaited<ReturnType<JobStates["describe"]>>;
    try {
      states = await this.states.describe(due.map((r) => r.batch_job_id!));
    } catch (err) {
      this.opts.onError?.(err);
      return records;
    }
    const ended = new Map<string, JobRecord>();
    for (const r of due) {
      this.checkedAt.set(r.id, now);
      const state = states.get(r.batch_job_id!);
      let end: { status: "failed" | "canceled"; code?: string; message: string } | undefined;
      if (!state) {
        if (now - Date.parse(r.created_at) > this.opts.missingAfterMs)
          end = { status: "failed", code: "worker_lost", message: `AWS Batch no longer knows job ${r.batch_job_id}, and the worker recorded no end` };
      } else if (state.status === "FAILED") {
        const reason = state.reason ?? "no reason given";
        end = r.cancel_requested || (await this.jobs.cancelRequested(r.id))
          ? { status: "canceled", message: `canceled (AWS Batch: ${reason})` }
          : { status: "failed", code: "worker_died", message: `the worker died without recording an end (AWS Batch: ${reason})` };
      } else if (state.status === "SUCCEEDED") {
        end = { status: "failed", code: "worker_exited", message: "the worker exited without recording an end" };
      }
      if (!end) continue;
      const updated = await this.end(r.id, end);
      if (updated) ended.set(r.id, updated);
      this.checkedAt.delete(r.id);
    }
    return records.map((r) => ended.get(r.id) ?? r);
  }

  /** Ends the record unless its worker got there first (re-read: the worker may have written since the list). */
  private async end(id: string, end: { status: "failed" | "canceled"; code?: string; message: string }): Promise<JobRecord | undefined> {
    const fresh = await this.jobs.load(id);
    if (!fresh) return undefined;
    if (TERMINAL.has(fresh.status)) return fresh;
    const finished_at = new Date(this.opts.now()).toISOString();
    const record: JobRecord = {
      ...fresh,
      status: end.status,
      finished_at,
      ...(end.status === "canceled" ? { cancel_requested: true } : { error: { code: end.code!, message: end.message } }),
    };
    await this.jobs.save(record);
    const seq = await this.jobs.lastSeq(id);
    await this.jobs.putEvent(id, { seq: seq + 1, type: "status", status: end.status, time: finished_at, step: fresh.step, message: end.message });
    await this.jobs.putEvent(id, { seq: seq + 2, type: "done", status: end.status, time: finished_at, step: fresh.step, message: end.message });
    return record;
  }
}
