/**
 * The prediction worker: pulls messages, runs each prediction through its task's handler (handlers.ts) and
 * records the end. The same class runs in-process for `npm start` (memory queue) and in the GPU containers
 * in AWS (SQS), so there is one implementation of the prediction logic.
 *
 * - Batching: up to `concurrency` predictions run at once and all go through the one InferenceService, whose
 *   per-model batchers put requests of the same model into shared forward passes, as for direct requests.
 * - At-least-once: a message is deleted only after the end is recorded. While a prediction runs its
 *   message's visibility is extended; a worker that dies stops extending it, so the message reappears and
 *   another worker runs it again (attempts + 1). The end is written once (store.ts `complete`): a second
 *   completion finds the first and discards its own result.
 * - Cancel and deadline: checked before a run starts and by the handler between batches (`stopped`).
 */
import type { InferenceService } from "../inference/service.ts";
import { ApiError } from "../errors.ts";
import { CONTENT_TYPES } from "../images/codec.ts";
import type { Logger } from "../log.ts";
import { predictionKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import type { PredictionBus, PredictionWebhooks } from "./events.ts";
import { handlerFor, PredictionStopped } from "./handlers.ts";
import type { PredictionMessage, PredictionQueue, QueueMessage } from "./queue.ts";
import type { PredictionResult } from "./schema.ts";
import { deadlineEnd, ended } from "./service.ts";
import type { PredictionRecord, PredictionStore } from "./store.ts";

export interface WorkerOptions {
  /** Predictions run at once. */
  concurrency: number;
  visibilitySeconds: number;
  /** Largest forward pass: a handler checks for a cancel between passes of this many. */
  maxBatch: number;
  /** Long-poll wait of one receive (SQS allows up to 20). */
  waitSeconds?: number;
  /** Called after each loop turn with nothing to do, e.g. retention sweeps. */
  onIdle?: () => Promise<void>;
}

export interface WorkerDeps {
  queue: PredictionQueue;
  store: PredictionStore;
  storage: Storage;
  inference: InferenceService;
  bus: PredictionBus;
  webhooks?: PredictionWebhooks;
  log: Logger;
}

/** A run still going after this long has its start written to storage (progress follows at the same pace). */
const START_WRITE_AFTER_MS = 500;

const EXT: Record<string, string> = Object.fromEntries(Object.entries(CONTENT_TYPES).map(([k, v]) => [v, k === "jpeg" ? "jpg" : k]));

/** Errors of the store or queue being away: the run is not recorded, the message reappears and runs again. */
const transient = (e: unknown) => e instanceof ApiError && (e.code === "storage_unavailable" || e.code === "queue_unavailable");

export class PredictionWorker {
  private running = false;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private startTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly opts: WorkerOptions,
  ) {}

  /** True once the loop pulls (after any start delay) and until stop. */
  get pulling(): boolean {
    return this.running;
  }

  get active(): number {
    return this.inFlight.size;
  }

  /** Starts pulling, now or after `delayMs` (a local stand-in for a cold boot). */
  start(delayMs = 0): void {
    if (this.running || this.startTimer) return;
    const go = () => {
      this.startTimer = undefined;
      this.running = true;
      this.abort = new AbortController();
      this.loop = this.run();
    };
    if (delayMs > 0) this.startTimer = setTimeout(go, delayMs);
    else go();
  }

  /** Stops pulling and waits for the predictions under way to end. */
  async stop(): Promise<void> {
    clearTimeout(this.startTimer);
    this.startTimer = undefined;
    this.running = false;
    this.abort.abort();
    await this.loop;
    await Promise.all(this.inFlight);
  }

  /**
   * Stops pulling and abandons what runs without recording or deleting anything, as a worker that dies
   * would: its messages reappear after the visibility timeout.
   */
  kill(): void {
    clearTimeout(this.startTimer);
    this.running = false;
    this.abort.abort();
    this.killed = true;
  }

  private killed = false;

  private async run(): Promise<void> {
    const { queue, log } = this.deps;
    while (this.running) {
      const free = this.opts.concurrency - this.inFlight.size;
      if (free <= 0) {
        await Promise.race(this.inFlight);
        continue;
      }
      let messages: QueueMessage[];
      try {
        messages = await queue.receive({
          max: Math.min(10, free),
          waitSeconds: this.opts.waitSeconds ?? 20,
          visibilitySeconds: this.opts.visibilitySeconds,
          signal: this.abort.signal,
        });
      } catch (err) {
        if (!this.running) break;
        log.warn({ err }, "prediction queue: receive failed; retrying");
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!this.running) {
        // Received while stopping: hand them back at once rather than after the visibility timeout.
        await Promise.all(messages.map((m) => queue.changeVisibility(m.receiptHandle, 0).catch(() => {})));
        break;
      }
      if (messages.length === 0 && this.opts.onIdle) await this.opts.onIdle().catch((err) => log.warn({ err }, "prediction worker idle task failed"));
      for (const m of messages) {
        const p = this.process(m).catch((err) => log.error({ err }, "prediction worker: unexpected failure"));
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
    }
  }

  /** Runs one message to a recorded end, or leaves it to reappear. */
  async process(m: QueueMessage): Promise<void> {
    const { queue, store, bus, log } = this.deps;
    let msg: PredictionMessage;
    try {
      msg = JSON.parse(m.body) as PredictionMessage;
    } catch {
      log.error({ body: m.body.slice(0, 200) }, "prediction queue: a message that is not JSON; dropped");
      await queue.delete(m.receiptHandle);
      return;
    }
    let rec: PredictionRecord | undefined;
    try {
      rec = await store.take(msg.tenant, msg.id);
    } catch (err) {
      bus.fail(msg.id, err);
      log.warn({ err, prediction: msg.id }, "prediction worker: could not read the record; the message will reappear");
      return;
    }
    if (!rec || rec.status === "succeeded" || rec.status === "failed" || rec.status === "canceled") {
      await queue.delete(m.receiptHandle);
      return;
    }
    if (Date.parse(rec.deadline_at) <= Date.now()) {
      await this.finish(m, deadlineEnd(rec));
      return;
    }
    const handler = handlerFor(rec.task);
    if (!handler) {
      await this.finish(m, ended(rec, "failed", { code: "unprocessable", message: `no handler for task '${rec.task}' in this worker` }));
      return;
    }
    // Keep the message hidden while it runs; a dead worker stops doing this and the message reappears.
    const heartbeat = setInterval(() => {
      if (this.killed) return;
      void queue.changeVisibility(m.receiptHandle, this.opts.visibilitySeconds).catch((err) => log.warn({ err }, "could not extend a message's visibility"));
    },
      Math.max(1000, (this.opts.visibilitySeconds * 1000) / 3),
    );
    const attempt = rec.attempts + 1;
    let startTimer: NodeJS.Timeout | undefined;
    let startWrite: Promise<void> | undefined;
    try {
      const now = new Date().toISOString();
      rec = { ...rec, status: "processing", attempts: attempt, started_at: rec.started_at ?? now, metrics: { ...rec.metrics, queue_time: undefined } };
      rec.metrics.queue_time = Math.round((Date.parse(rec.started_at!) - Date.parse(rec.created_at)) / 10) / 100;
      if (attempt > 1) rec.logs += `attempt ${attempt} (delivery ${m.receiveCount})\n`;
      // The start is advisory: written only for runs that last (a quick one goes from starting to its end in
      // storage), and awaited before the end so it cannot land after it. Each write to the store costs as
      // much as a small model's whole pass.
      const started = { ...rec };
      startTimer = setTimeout(() => {
        startWrite = store.save(started).catch((err) => log.warn({ err, prediction: started.id }, "could not record the start"));
      }, START_WRITE_AFTER_MS);
      bus.publish(rec);
      this.deps.webhooks?.notify(rec, "start");
      const requested = await store.input(rec);
      const result = await handler.run(this.context(rec, requested));
      if (this.killed) return;
      const stored = await this.storeOutput(rec, attempt, requested, result);
      const end: PredictionRecord = { ...ended(rec, "succeeded"), result: stored, progress: rec.progress };
      // Requests waiting in this process (npm start's /v1/generate) answer now, with images that are already
      // stored or inline; the end is recorded next, and a failure to record it reruns the prediction (the
      // message reappears; bus.fail tells whoever still waits).
      bus.publish(end);
      clearTimeout(startTimer);
      await startWrite;
      // One write records the end, result included; a second completion loses here.
      const won = await store.claimEnd(end);
      // Storage holds the end now (this one or the winner's): readers go there.
      bus.forget(end.id);
      if (won) {
        this.deps.webhooks?.notify(end, "completed");
      } else {
        // Someone ended it first (a cancel, or another attempt): that end stands; this run's images go.
        log.info({ prediction: rec.id, attempt }, "prediction already ended; this attempt's result is discarded");
        await this.discard(stored);
      }
      await queue.delete(m.receiptHandle);
    } catch (err) {
      if (this.killed) return;
      if (transient(err)) {
        bus.fail(rec.id, err);
        log.warn({ err, prediction: rec.id }, "prediction worker: storage or queue away; the message will reappear");
        return;
      }
      if (err instanceof PredictionStopped) {
        // A cancel already wrote the end; a deadline did not.
        if (!(await store.ended(rec.tenant, rec.id).catch(() => true))) await this.finish(m, deadlineEnd(rec));
        else await queue.delete(m.receiptHandle);
        return;
      }
      const e = err instanceof ApiError ? err : undefined;
      if (!e) log.error({ err, prediction: rec.id }, "prediction failed");
      await this.finish(
        m,
        ended(rec, "failed", e ? { code: e.code, message: e.message, details: e.details, retryAfter: e.retryAfter } : { code: "internal", message: "internal error" }),
      ).catch((err2) => {
        bus.fail(rec!.id, err2);
      });
    } finally {
      clearInterval(heartbeat);
      clearTimeout(startTimer);
    }
  }

  private context(rec: PredictionRecord, requested: Record<string, unknown>) {
    const { store, bus, log } = this.deps;
    // The start was just written: the first progress write waits its turn like the others.
    let lastSave = Date.now();
    return {
      id: rec.id,
      tenant: rec.tenant,
      model: rec.model,
      version: rec.version,
      // Images come back inline and are stored here, under the prediction's own keys (retention deletes them).
      input: { ...requested, output: "base64" },
      inference: this.deps.inference,
      maxBatch: this.opts.maxBatch,
      progress: async (completed: number, total: number) => {
        rec.progress = { completed, total };
        bus.publish(rec);
        this.deps.webhooks?.notify(rec, "output");
        // Progress is advisory: written at most every half second, and a failed write does not fail the run.
        if (Date.now() - lastSave >= 500) {
          lastSave = Date.now();
          await store.save(rec).catch((err) => log.warn({ err }, "could not record progress"));
        }
      },
      log: (line: string) => {
        rec.logs += `${line}\n`;
        this.deps.webhooks?.notify(rec, "logs");
      },
      stopped: async () => this.killed || Date.parse(rec.deadline_at) <= Date.now() || (await store.ended(rec.tenant, rec.id)),
    };
  }

  /** `output: "url"` (the predictions default): the images become objects of this attempt, shown as presigned URLs. */
  private async storeOutput(rec: PredictionRecord, attempt: number, requested: Record<string, unknown>, result: PredictionResult): Promise<PredictionResult> {
    const params = "output" in result.params ? { ...result.params, output: requested.output } : result.params;
    if (requested.output !== "url") return { ...result, params };
    const output = await Promise.all(
      result.output.map(async ({ data, ...img }, n) => {
        if (data === undefined) return img;
        const key = predictionKeys.image(rec.tenant, rec.id, attempt, n, EXT[img.content_type] ?? "bin");
        await this.deps.storage.put(key, Buffer.from(data, "base64"), { contentType: img.content_type });
        return { ...img, key };
      }),
    );
    return { ...result, output, params };
  }

  private async discard(result: PredictionResult): Promise<void> {
    const keys = result.output.flatMap((o) => (o.key ? [o.key] : []));
    await Promise.all(keys.map((k) => this.deps.storage.delete(k).catch(() => {})));
  }

  /** Records an end (if nobody did before) and deletes the message. */
  private async finish(m: QueueMessage, end: PredictionRecord): Promise<void> {
    const { store, bus, queue } = this.deps;
    if (await store.complete(end)) {
      bus.publish(end, true);
      this.deps.webhooks?.notify(end, "completed");
    }
    await queue.delete(m.receiptHandle);
  }
}
