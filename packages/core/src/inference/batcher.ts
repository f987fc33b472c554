/**
 * Dynamic batching: requests for the same model and input shape run as one forward pass of up to `maxBatch`
 * items. The queue is bounded (full → 429 with Retry-After) and every item has a deadline (expired while
 * waiting → 503, and it leaves the queue so it costs no compute).
 *
 * When to run: only one pass runs at a time, and whatever queued during it runs next. With `maxDelayMs` 0 (the
 * default) a pass starts as soon as the engine is free: on CPU an image costs about the same alone or in a batch,
 * so idling the engine to fill a batch only adds latency, and the passes of concurrent clients interleave with
 * their HTTP and encoding work. With `maxDelayMs` > 0 (for engines where a batch costs little more than one
 * image, i.e. GPUs) a pass waits until the queue holds as many slots as the previous pass had (or `maxBatch`),
 * at most `maxDelayMs`: the previous pass's size is the best guess of how many clients are about to come back,
 * so a lone client (last pass 1) never waits, while 8 clients whose answers just went out are collected again.
 */
import { ApiError } from "../errors.ts";

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  /** Called with the size of every batch that runs (metrics). */
  onBatch?: (size: number, ms: number) => void;
}

interface Pending<I, O> {
  item: I;
  /** weight in batch slots: a request for 8 seeds takes 8 */
  size: number;
  enqueuedAt: number;
  deadline: number;
  resolve: (o: { output: O; queueMs: number; computeMs: number }) => void;
  reject: (e: unknown) => void;
}

export class Batcher<I, O> {
  private readonly queue: Pending<I, O>[] = [];
  private timer: { cancel(): void } | undefined;
  private running = false;
  /** slots in the last pass that ran: how full the next one should be before it starts early */
  private lastSize = 1;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
  ) {}

  get depth(): number {
    return this.queue.reduce((n, p) => n + p.size, 0);
  }

  submit(item: I, opts: { size?: number; timeoutMs: number }): Promise<{ output: O; queueMs: number; computeMs: number }> {
    const size = opts.size ?? 1;
    if (this.depth + size > this.opts.maxQueue)
      return Promise.reject(
        new ApiError("queue_full", `the queue for this model is full (${this.opts.maxQueue}); retry shortly`, undefined, 1),
      );
    return new Promise((resolve, reject) => {
      const now = performance.now();
      this.queue.push({ item, size, enqueuedAt: now, deadline: now + opts.timeoutMs, resolve, reject });
      this.schedule();
    });
  }

  private schedule() {
    if (this.running) return;
    const ready = this.opts.maxDelayMs === 0 || this.depth >= Math.min(this.lastSize, this.opts.maxBatch);
    if (this.timer && !ready) return;
    this.cancelTimer();
    const fire = () => {
      this.timer = undefined;
      void this.flush();
    };
    // setImmediate, not setTimeout(0) (clamped to 1 ms): requests read in the same I/O turn still join the pass.
    if (ready) {
      const h = setImmediate(fire);
      this.timer = { cancel: () => clearImmediate(h) };
    } else {
      const h = setTimeout(fire, this.opts.maxDelayMs);
      this.timer = { cancel: () => clearTimeout(h) };
    }
  }

  private cancelTimer() {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private takeBatch(): Pending<I, O>[] {
    const now = performance.now();
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const p = this.queue[i];
      if (now > p.deadline) {
        this.queue.splice(i, 1);
        p.reject(new ApiError("deadline_exceeded", "the request waited past its deadline", undefined, 1));
      }
    }
    const batch: Pending<I, O>[] = [];
    let slots = 0;
    while (this.queue.length && (batch.length === 0 || slots + this.queue[0].size <= this.opts.maxBatch)) {
      const p = this.queue.shift()!;
      batch.push(p);
      slots += p.size;
    }
    return batch;
  }

  private async flush() {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.running = true;
    const start = performance.now();
    try {
      const outputs = await this.run(batch.map((p) => p.item));
      const computeMs = performance.now() - start;
      this.lastSize = batch.reduce((n, p) => n + p.size, 0);
      this.opts.onBatch?.(this.lastSize, computeMs);
      for (const [i, p] of batch.entries()) p.resolve({ output: outputs[i], queueMs: start - p.enqueuedAt, computeMs });
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.running = false;
      if (this.queue.length) this.schedule();
    }
  }
}
