/**
 * Prediction records in storage (layouts in storage/keys.ts `predictionKeys`). Storage is the only state the
 * API and the workers share, as for fine-tunes, so an API Lambda and a GPU container see the same record.
 *
 * Who writes what: the API creates the record; a run that lasts writes progress; the end is written once:
 * whoever ends a prediction (the worker, a cancel, a deadline) first writes `<id>.done.json` with
 * If-None-Match: *, result included, and only that write counts. A record that is not terminal is read
 * together with its end record, so a late progress write can never undo an end, and a second worker that
 * ran a redelivered message cannot overwrite the first one's result. A quick success thus costs two writes:
 * the record on create and the end.
 */
import { createHash, randomBytes } from "node:crypto";
import { predictionKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import type { StoredWebhook } from "../jobs/store.ts";
import type { ModelFamily } from "../families.ts";
import { isTerminal, type Prediction, type PredictionResult, type WebhookEvent } from "./schema.ts";

export type PredictionRecord = Omit<Prediction, "urls" | "output"> & {
  tenant: string;
  family: ModelFamily;
  /** The input as stored for the worker lives in `input.json` when it carries files, else here. */
  stored_input?: Record<string, unknown>;
  webhook?: StoredWebhook;
  webhook_events_filter?: WebhookEvent[];
  error_details?: unknown;
  /** A success's images (inline, or keys of stored ones), parameters and timings; dropped by retention. */
  result?: PredictionResult;
  /** Seconds a caller should wait before retrying, for errors that say so (429 queue_full). */
  retry_after?: number;
};

const ID_TIME_DIGITS = 9;
const ID_TIME_MAX = 36 ** ID_TIME_DIGITS - 1;

/**
 * `p` + the time counted down in base 36 + 12 random base-36 digits: lexical order is newest first, so a
 * listing of the tenant's records in key order is already the newest-first page.
 */
export function newPredictionId(now = Date.now()): string {
  const time = (ID_TIME_MAX - now).toString(36).padStart(ID_TIME_DIGITS, "0");
  const rand = [...randomBytes(12)].map((b) => (b % 36).toString(36)).join("");
  return `p${time}${rand}`;
}

/** A prediction as created: `starting`, nothing run yet, the deadline `deadlineMs` after `now`. */
export function newPredictionRecord(
  base: Pick<PredictionRecord, "id" | "tenant" | "family" | "model" | "version" | "task" | "input"> &
    Partial<Pick<PredictionRecord, "stored_input" | "webhook" | "webhook_events_filter">>,
  now: number,
  deadlineMs: number,
): PredictionRecord {
  return {
    ...base,
    status: "starting",
    error: null,
    error_code: null,
    logs: "",
    metrics: {},
    attempts: 0,
    data_removed: false,
    created_at: new Date(now).toISOString(),
    started_at: null,
    completed_at: null,
    deadline_at: new Date(now + deadlineMs).toISOString(),
  };
}

export class PredictionStore {
  /**
   * Records created by this process and not yet picked up: an in-process worker (npm start) takes them from
   * here instead of reading them back. Every end written by this process drops its entry, so a cancel
   * that came first is never missed; a worker in another process reads storage as usual.
   */
  private readonly created = new Map<string, PredictionRecord>();

  constructor(readonly storage: Storage) {}

  /** Writes the full input (when it is large) and then the record, so a worker never finds a record without its input. */
  async create(rec: PredictionRecord, fullInput?: Record<string, unknown>): Promise<void> {
    if (fullInput) await this.storage.putJson(predictionKeys.input(rec.tenant, rec.id), fullInput);
    await this.storage.putJson(predictionKeys.record(rec.tenant, rec.id), rec);
    if (this.created.size > 10_000) this.created.clear();
    this.created.set(rec.id, rec);
  }

  /** For the worker: the record this process just created (once), or what storage says. */
  async take(tenant: string, id: string): Promise<PredictionRecord | undefined> {
    const mine = this.created.get(id);
    this.created.delete(id);
    return mine?.tenant === tenant ? mine : this.load(tenant, id);
  }

  /** The record as it stands: the terminal one when the prediction ended, whatever the record file says. */
  async load(tenant: string, id: string): Promise<PredictionRecord | undefined> {
    if (!/^p[a-z0-9]{21}$/.test(id)) return undefined;
    const rec = await this.storage.getJson<PredictionRecord>(predictionKeys.record(tenant, id));
    if (!rec || isTerminal(rec.status)) return rec;
    return (await this.storage.getJson<PredictionRecord>(predictionKeys.done(tenant, id))) ?? rec;
  }

  async input(rec: PredictionRecord): Promise<Record<string, unknown>> {
    return rec.stored_input ?? (await this.storage.getJson<Record<string, unknown>>(predictionKeys.input(rec.tenant, rec.id))) ?? {};
  }

  /** A progress write (status processing, logs, progress); never used for the end. */
  async save(rec: PredictionRecord): Promise<void> {
    await this.storage.putJson(predictionKeys.record(rec.tenant, rec.id), rec);
  }

  /** Whether the prediction has ended (cancel, deadline, another worker). */
  async ended(tenant: string, id: string): Promise<boolean> {
    return this.storage.exists(predictionKeys.done(tenant, id));
  }

  /**
   * Ends a prediction if nobody ended it before: true when this write won. The loser reads what the winner
   * wrote with `load`. The record file is rewritten too, for ends that are not a worker's quick success.
   */
  async complete(rec: PredictionRecord): Promise<boolean> {
    if (!(await this.claimEnd(rec))) return false;
    await this.save(rec);
    return true;
  }

  /** The end record alone (result included), which decides the end: `load` reads it. */
  async claimEnd(rec: PredictionRecord): Promise<boolean> {
    this.created.delete(rec.id);
    return this.storage.putIfAbsent(predictionKeys.done(rec.tenant, rec.id), JSON.stringify(rec), { contentType: "application/json" });
  }

  result(rec: PredictionRecord): PredictionResult | undefined {
    return rec.data_removed ? undefined : rec.result;
  }

  /** The id an Idempotency-Key already made for this tenant, or `id` once this call claimed the key. */
  async claimIdempotency(tenant: string, key: string, id: string): Promise<string> {
    const hash = createHash("sha256").update(key).digest("hex");
    const k = predictionKeys.idempotency(tenant, hash);
    if (await this.storage.putIfAbsent(k, JSON.stringify({ id }), { contentType: "application/json" })) return id;
    const prior = await this.storage.getJson<{ id: string }>(k);
    return prior?.id ?? id;
  }

  /** One page of a tenant's records, newest first, after the prediction `cursor`. */
  async page(tenant: string, cursor: string | undefined, limit: number): Promise<{ records: PredictionRecord[]; next?: string }> {
    const { objects, more } = await this.storage.listPage(predictionKeys.tenant(tenant), {
      startAfter: cursor ? predictionKeys.record(tenant, cursor) : undefined,
      maxKeys: limit,
    });
    const records = (await Promise.all(objects.map((o) => this.load(tenant, predictionKeys.idOf(o.key))))).filter((r) => r !== undefined);
    return { records, next: more && objects.length ? predictionKeys.idOf(objects[objects.length - 1].key) : undefined };
  }

  /**
   * Every (tenant, id) whose end record was written at or before `cutoff` (ms): what retention looks at. The
   * listing's dates filter without reading each record; end records go once their data is removed.
   */
  async endedBefore(cutoff: number): Promise<{ tenant: string; id: string }[]> {
    const out: { tenant: string; id: string }[] = [];
    for (const tenant of await this.storage.listPrefixes(predictionKeys.stateRoot))
      for (const o of await this.storage.list(predictionKeys.state(tenant))) {
        const id = predictionKeys.idOfDone(o.key);
        if (id && (!o.lastModified || o.lastModified.getTime() <= cutoff)) out.push({ tenant, id });
      }
    return out;
  }

  /** The end record as written (undefined while the prediction runs or after retention). */
  async end(tenant: string, id: string): Promise<PredictionRecord | undefined> {
    return this.storage.getJson<PredictionRecord>(predictionKeys.done(tenant, id));
  }

  /**
   * Retention: input and images deleted, the record rewritten as ended with `data_removed` and no result,
   * and then the end record deleted (the record file now says how it ended). Each step can be redone.
   */
  async removeData(end: PredictionRecord): Promise<void> {
    await this.storage.deletePrefix(predictionKeys.data(end.tenant, end.id));
    await this.save({ ...end, result: undefined, data_removed: true });
    await this.storage.delete(predictionKeys.done(end.tenant, end.id));
  }
}
