/**
 * The predictions API's domain: create (validated against the model family's input schema, idempotent per
 * tenant with an Idempotency-Key), get, list newest first, cancel, and wait until the end or N seconds.
 * Routes only parse HTTP and render what this returns; the work itself is done by a worker (worker.ts)
 * that pulls from the queue, in this process locally and in GPU containers in AWS.
 */
import { ApiError } from "../errors.ts";
import { checkWebhookTarget } from "../jobs/webhook.ts";
import { sealWebhook } from "../jobs/store.ts";
import type { SecretBox } from "../jobs/secrets.ts";
import type { ModelRegistry } from "../models/registry.ts";
import type { Storage } from "../storage/storage.ts";
import type { PredictionBus } from "./events.ts";
import { resolveHandler } from "./handlers.ts";
import type { PredictionMessage, PredictionQueue } from "./queue.ts";
import { isTerminal, type CreatePredictionParams, type Prediction, type PredictionResult } from "./schema.ts";
import { newPredictionId, newPredictionRecord, type PredictionRecord, type PredictionStore } from "./store.ts";

export interface PredictionServiceOptions {
  /** Default deadline, seconds after creation. */
  deadlineSeconds: number;
  /** Outputs are deleted this long after the end (retention.ts): presigned URLs never outlive them by much. */
  retentionSeconds: number;
  production: boolean;
  secrets?: SecretBox;
  /** How often a waiter re-reads storage when no in-process notification comes (the API in AWS). */
  pollMs?: number;
}

const iso = (t: number) => new Date(t).toISOString();
const seconds = (from: string | null | undefined, to: string | null | undefined) =>
  from && to ? Math.round((Date.parse(to) - Date.parse(from)) / 10) / 100 : undefined;

/** The record of a prediction ended now with `status` (and an error), timings filled in. */
export function ended(rec: PredictionRecord, status: "succeeded" | "failed" | "canceled", error?: { code: string; message: string; details?: unknown; retryAfter?: number }): PredictionRecord {
  const completed_at = new Date().toISOString();
  return {
    ...rec,
    status,
    completed_at,
    error: error?.message ?? null,
    error_code: error?.code ?? null,
    error_details: error?.details,
    retry_after: error?.retryAfter,
    metrics: {
      ...rec.metrics,
      queue_time: rec.metrics.queue_time ?? seconds(rec.created_at, rec.started_at ?? completed_at),
      predict_time: seconds(rec.started_at, completed_at),
      total_time: seconds(rec.created_at, completed_at),
    },
  };
}

/** The end of a prediction whose deadline passed: canceled if it had started, failed if it never did. */
export function deadlineEnd(rec: PredictionRecord): PredictionRecord {
  return rec.started_at
    ? ended(rec, "canceled", { code: "deadline_exceeded", message: "the prediction's deadline passed while it ran" })
    : ended(rec, "failed", { code: "deadline_exceeded", message: "the prediction's deadline passed before a worker started it" });
}

export class PredictionService {
  constructor(
    private readonly store: PredictionStore,
    private readonly queue: PredictionQueue,
    private readonly registry: ModelRegistry,
    private readonly bus: PredictionBus,
    private readonly storage: Storage,
    private readonly opts: PredictionServiceOptions,
  ) {}

  async create(params: CreatePredictionParams, tenant: string, opts: { idempotencyKey?: string } = {}): Promise<PredictionRecord> {
    const model = await this.registry.resolve(params.model, params.version, tenant);
    const handler = resolveHandler(model.family, model.name, params.task);
    const { stored, shown } = handler.parse(params.input, model.name, model.version);
    if (params.webhook) await checkWebhookTarget(params.webhook.url, this.opts.production);
    const now = Date.now();
    let id = newPredictionId(now);
    if (opts.idempotencyKey !== undefined) {
      const prior = await this.store.claimIdempotency(tenant, opts.idempotencyKey, id);
      if (prior !== id) {
        const existing = await this.store.load(tenant, prior);
        // The claim is written before the record: a retry racing the first call may find no record yet.
        if (existing) return existing;
        id = prior;
      }
    }
    if (params.webhook && !this.opts.secrets) throw new Error("predictions: a webhook secret needs a SecretBox to be stored");
    const large = shown !== stored;
    const rec = newPredictionRecord(
      {
        id,
        tenant,
        family: model.family,
        model: model.name,
        version: model.version,
        task: handler.task,
        input: shown,
        stored_input: large ? undefined : stored,
        webhook: params.webhook && this.opts.secrets ? sealWebhook(params.webhook, id, this.opts.secrets) : undefined,
        webhook_events_filter: params.webhook_events_filter,
      },
      now,
      (params.deadline ?? this.opts.deadlineSeconds) * 1000,
    );
    await this.store.create(rec, large ? stored : undefined);
    const message: PredictionMessage = { id, tenant, model: model.name };
    await this.queue.send(JSON.stringify(message));
    return rec;
  }

  /**
   * The record as it stands; 404 for another tenant's id, as for one that does not exist. An end this
   * process published is final and answers without a read; storage is otherwise the truth, except that a
   * run of this process's worker shows its newer progress (a quick run never writes its start).
   */
  async get(id: string, tenant: string): Promise<PredictionRecord> {
    const mine = this.bus.current(tenant, id);
    if (mine && isTerminal(mine.status)) return mine;
    const rec = await this.store.load(tenant, id);
    if (!rec) throw new ApiError("not_found", `prediction '${id}' does not exist`);
    if (mine && !isTerminal(rec.status) && mine.attempts >= rec.attempts) return this.applyDeadline(mine);
    return this.applyDeadline(rec);
  }

  /**
   * A queued prediction whose deadline passed ends when it is read, so it says so even while no worker
   * runs (scaled to zero); the worker ends it the same way when it receives it.
   */
  private async applyDeadline(rec: PredictionRecord): Promise<PredictionRecord> {
    if (isTerminal(rec.status) || Date.parse(rec.deadline_at) > Date.now() || rec.started_at) return rec;
    const end = deadlineEnd(rec);
    if (await this.store.complete(end)) {
      this.bus.publish(end, true);
      return end;
    }
    return (await this.store.load(rec.tenant, rec.id)) ?? end;
  }

  async list(tenant: string, cursor: string | undefined, limit: number): Promise<{ records: PredictionRecord[]; next?: string }> {
    const page = await this.store.page(tenant, cursor, limit);
    return { records: await Promise.all(page.records.map((r) => this.applyDeadline(r))), next: page.next };
  }

  /** Ends a prediction as canceled: a queued one never runs, a running one stops at its next batch boundary. */
  async cancel(id: string, tenant: string): Promise<PredictionRecord> {
    const rec = await this.get(id, tenant);
    if (isTerminal(rec.status)) throw new ApiError("conflict", `prediction '${id}' already ${rec.status}`, { status: rec.status });
    const end = ended(rec, "canceled");
    if (await this.store.complete(end)) {
      this.bus.publish(end, true);
      return end;
    }
    const now = await this.get(id, tenant);
    throw new ApiError("conflict", `prediction '${id}' already ${now.status}`, { status: now.status });
  }

  /**
   * The record once it ends or `waitSeconds` pass, whichever comes first. In-process notifications answer
   * at once; storage is re-read meanwhile for workers in other processes. A run the worker could not record
   * (storage gone) rejects with that error. `known`: the record as create returned it, which saves a read.
   */
  async wait(id: string, tenant: string, waitSeconds: number, signal?: AbortSignal, known?: PredictionRecord): Promise<PredictionRecord> {
    let end: PredictionRecord | undefined;
    let failure: unknown;
    let wake: () => void = () => {};
    // Subscribed before the first read: an end published while that read is under way is not missed.
    const off = this.bus.subscribe(id, (m) => {
      if ("record" in m) {
        if (!isTerminal(m.record.status)) return;
        end = m.record;
      } else failure = m.error;
      wake();
    });
    const onAbort = () => wake();
    signal?.addEventListener("abort", onAbort);
    try {
      let rec = known?.id === id && known.tenant === tenant ? known : await this.get(id, tenant);
      const until = Date.now() + waitSeconds * 1000;
      const pollMs = this.opts.pollMs ?? 1000;
      for (;;) {
        if (failure) throw failure;
        rec = end ?? this.bus.current(tenant, id) ?? rec;
        if (isTerminal(rec.status)) return rec;
        const left = until - Date.now();
        if (left <= 0 || signal?.aborted) return rec;
        let woken = false;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, pollMs));
          wake = () => {
            woken = true;
            clearTimeout(t);
            resolve();
          };
        });
        // Storage is read only when no notification came: a worker in another process.
        if (!woken) rec = await this.get(id, tenant);
      }
    } finally {
      off();
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The API's view: internal fields dropped, stored images as presigned URLs that expire with retention. */
  async view(rec: PredictionRecord, base = ""): Promise<Prediction> {
    const r = rec.status === "succeeded" ? this.store.result(rec) : undefined;
    const output = r ? await this.images(rec, r) : null;
    const url = `${base}/v1/predictions/${rec.id}`;
    return {
      id: rec.id,
      model: rec.model,
      version: rec.version,
      task: rec.task,
      input: rec.input,
      status: rec.status,
      output,
      error: rec.error,
      error_code: rec.error_code,
      logs: rec.logs,
      ...(rec.progress ? { progress: rec.progress } : {}),
      metrics: rec.metrics,
      attempts: rec.attempts,
      data_removed: rec.data_removed,
      created_at: rec.created_at,
      started_at: rec.started_at,
      completed_at: rec.completed_at,
      deadline_at: rec.deadline_at,
      urls: { get: url, cancel: `${url}/cancel`, stream: `${url}/events` },
    };
  }

  /** Stored images become presigned URLs, valid until retention deletes them (an hour at most). */
  async images(rec: PredictionRecord, r: PredictionResult): Promise<Prediction["output"]> {
    const removeAt = Date.parse(rec.completed_at ?? rec.created_at) + this.opts.retentionSeconds * 1000;
    const expires = Math.max(60, Math.min(3600, Math.round((removeAt - Date.now()) / 1000)));
    return Promise.all(
      r.output.map(async ({ key, ...img }) =>
        key ? { ...img, url: await this.storage.presignGet(key, expires), expires_at: iso(Date.now() + expires * 1000) } : img,
      ),
    );
  }
}
