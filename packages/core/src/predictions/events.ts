/**
 * How a prediction's changes reach whoever waits for them:
 * - `PredictionBus`: in-process notifications from the worker to waiting requests and SSE streams, so a
 *   local `Prefer: wait` answers the moment the result is stored. Across processes (API Lambda and GPU
 *   containers) there is no bus: waiters poll storage (service.ts), and the bus only makes the local case fast.
 * - `PredictionWebhooks`: the create request's webhook, signed and SSRF-guarded by jobs/webhook.ts, for the
 *   events `start`, `output`, `logs` and `completed`; intermediate ones at most one per 500 ms (`start` and
 *   `completed` always go), delivered in order.
 */
import { EventEmitter } from "node:events";
import { openWebhook } from "../jobs/store.ts";
import type { SecretBox } from "../jobs/secrets.ts";
import { deliverWebhook, type Resolver } from "../jobs/webhook.ts";
import type { Logger } from "../log.ts";
import type { Prediction, PredictionResult, WebhookEvent } from "./schema.ts";
import type { PredictionRecord } from "./store.ts";

/** A record (with its result when it just succeeded, so a local waiter need not read it back), or a failure. */
export type BusMessage = { record: PredictionRecord; result?: PredictionResult } | { error: unknown };

export class PredictionBus {
  private readonly emitter = new EventEmitter();
  /** Results handed over with an end, so in-process readers of that record need not read them back. */
  private readonly results = new WeakMap<PredictionRecord, PredictionResult>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(record: PredictionRecord, result?: PredictionResult): void {
    if (result) this.results.set(record, result);
    this.emitter.emit(record.id, { record, result });
  }

  resultOf(record: PredictionRecord): PredictionResult | undefined {
    return this.results.get(record);
  }

  /**
   * A run that could not be recorded (storage went away while the worker held it): a request waiting on it
   * answers with this error (503 storage_unavailable), while the message reappears and runs again later.
   */
  fail(id: string, error: unknown): void {
    this.emitter.emit(id, { error });
  }

  subscribe(id: string, fn: (m: BusMessage) => void): () => void {
    this.emitter.on(id, fn);
    return () => this.emitter.off(id, fn);
  }
}

export const WEBHOOK_THROTTLE_MS = 500;

export interface WebhookOptions {
  production: boolean;
  secrets?: SecretBox;
  log: Logger;
  view: (rec: PredictionRecord) => Promise<Prediction>;
  resolve?: Resolver;
}

export class PredictionWebhooks {
  private readonly last = new Map<string, { sentAt: number; chain: Promise<void> }>();

  constructor(private readonly opts: WebhookOptions) {}

  notify(rec: PredictionRecord, event: WebhookEvent): void {
    if (!rec.webhook) return;
    if (rec.webhook_events_filter && !rec.webhook_events_filter.includes(event)) return;
    const now = Date.now();
    const prev = this.last.get(rec.id);
    const always = event === "start" || event === "completed";
    if (!always && prev && now - prev.sentAt < WEBHOOK_THROTTLE_MS) return;
    const chain = (prev?.chain ?? Promise.resolve()).then(() => this.deliver(rec, event));
    if (event === "completed") void chain.finally(() => this.last.delete(rec.id));
    this.last.set(rec.id, { sentAt: now, chain });
  }

  private async deliver(rec: PredictionRecord, event: WebhookEvent): Promise<void> {
    try {
      const hook = openWebhook(rec.webhook!, rec.id, this.opts.secrets);
      const body = await this.opts.view(rec);
      const r = await deliverWebhook(hook, { event, prediction: body }, { production: this.opts.production, resolve: this.opts.resolve });
      if (!r.ok) this.opts.log.warn({ prediction: rec.id, event, status: r.status, error: r.error }, "prediction webhook not delivered");
    } catch (err) {
      this.opts.log.warn({ prediction: rec.id, event, err }, "prediction webhook not delivered");
    }
  }

  /** Waits for the deliveries under way (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.last.values()].map((x) => x.chain));
  }
}
