/**
 * Dataset finalize off the request path. Reading a zip of up to GANSERVE_MAX_UPLOAD_BYTES and writing every
 * image does not fit a request (the deployed API is a 29 s, 1 GB Lambda). `POST /finalize` only checks that
 * there is an upload and marks the dataset `processing`; the job (`run`: the tenant's quota check, then
 * validate and index, as `DatasetQuota.finalize`) records `ready` or `failed` with the reason.
 *
 * Where the job runs: in this process (local), or, given `submit`, elsewhere: the deployment submits it to the
 * fine-tune AWS Batch queue, whose worker runs `run` for a `ds_` id (docs/deploy.md "Dataset finalize").
 */
import { ApiError } from "../errors.ts";
import type { DatasetQuota } from "./quota.ts";
import type { DatasetRecord, DatasetService } from "./service.ts";

/** A `processing` dataset whose job started longer ago than this is taken for dead: finalize may start it again. */
export const FINALIZE_STALE_MS = 2 * 60 * 60_000;

export interface FinalizeStart {
  /** The dataset as it is now: `processing`, or `ready` when it was already. */
  record: DatasetRecord;
  /** In-process jobs only: settles with the job's end (rejects with its ApiError when the archive was refused). */
  done?: Promise<DatasetRecord>;
}

export class DatasetFinalizer {
  private readonly running = new Map<string, Promise<DatasetRecord>>();

  constructor(
    private readonly datasets: DatasetService,
    private readonly quota: DatasetQuota,
    /** Starts the job elsewhere (AWS Batch); without it the job runs in this process. */
    private readonly submit?: (datasetId: string) => Promise<unknown>,
  ) {}

  async start(id: string, tenant: string): Promise<FinalizeStart> {
    const { record, started } = await this.datasets.markProcessing(id, tenant, FINALIZE_STALE_MS);
    if (!started) return { record, done: this.running.get(id) };
    if (this.submit) {
      try {
        await this.submit(id);
      } catch (e) {
        await this.datasets.failUnexpectedly(id, `the finalize job could not be started: ${(e as Error).message}`);
        throw new ApiError("queue_unavailable", "the finalize queue is unavailable; try again later", { dataset: id }, 30);
      }
      return { record };
    }
    const done = this.run(id, tenant).finally(() => this.running.delete(id));
    // Nobody may be waiting (the request answered 202): the end is in the record either way.
    done.catch(() => undefined);
    this.running.set(id, done);
    return { record, done };
  }

  /**
   * The job: quota check, validate, index. A refused archive is recorded `failed` by the service (and the
   * ApiError is rethrown for an in-process waiter); anything else is recorded as `finalize_error`.
   */
  async run(id: string, tenant: string): Promise<DatasetRecord> {
    try {
      return await this.quota.finalize(id, tenant);
    } catch (e) {
      if (!(e instanceof ApiError)) await this.datasets.failUnexpectedly(id, (e as Error)?.message ?? String(e));
      throw e;
    }
  }

  /** Waits for the in-process jobs (a server shutting down). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }
}
