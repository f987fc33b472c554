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
import { isTerminal, type Prediction, type WebhookEvent } from "./schema.ts";
import type { PredictionRecord } from "./store.ts";

/** A record (an end carries its result, so a local waiter need not read it back), or a failure. */
export type BusMessage = { record: PredictionRecord } | { error: unknown };

/** Latest records kept for readers that arrive after a publish; the oldest go first. */
const LATEST_MAX = 4096;

export class PredictionBus {
  private readonly emitter = new EventEmitter();
  /**
   * The newest record this process published for each prediction it runs or just ended, until storage holds
   * the end (`forget`). A waiter that subscribes after the worker ended the prediction (the worker can be
   * quicker than the waiter's own first read) finds the end here instead of waiting for a poll of storage,
   * and an in-process GET sees progress that a quick run never writes.
   */
  private readonly latest = new Map<string, PredictionRecord>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /**
   * Tells subscribers; `stored`: storage already holds this record (an end whose claim won), so readers
   * need no copy here. The first end published stands, as in storage (only a won claim, or a run's own end
   * ahead of its claim, is published): nothing after it, progress or a second end, is shown or sent.
   */
  publish(record: PredictionRecord, stored = false): void {
    if (isTerminal(this.latest.get(record.id)?.status ?? "starting")) return;
    this.latest.delete(record.id);
    if (!stored) this.latest.set(record.id, record);
    if (this.latest.size > LATEST_MAX) this.latest.delete(this.latest.keys().next().value!);
    this.emitter.emit(record.id, { record });
  }

  /** What this process last published of a prediction of `tenant`, if anything. */
  current(tenant: string, id: string): PredictionRecord | undefined {
    const r = this.latest.get(id);
    return r?.tenant === tenant ? r : undefined;
  }

  /** Storage holds the end (or another end than the one published here): readers go to storage. */
  forget(id: string): void {
    this.latest.delete(id);
  }

  /**
   * A run that could not be recorded (storage went away while the worker held it): a request waiting on it
   * answers with this error (503 storage_unavailable), while the message reappears and runs again later.
   * What this process published of it is forgotten: storage, which never saw the end, is the truth again.
   */
  fail(id: string, error: unknown): void {
    this.latest.delete(id);
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
