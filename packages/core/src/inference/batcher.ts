/**
 * Dynamic batching: requests for the same model and input shape that arrive within `maxDelayMs` of each
 * other run as one forward pass of up to `maxBatch` items. The queue is bounded (full → 429 with
 * Retry-After) and every item has a deadline (expired while waiting → 503, and it leaves the queue so it
 * costs no compute).
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
  private timer: NodeJS.Timeout | undefined;
  private running = false;

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
    if (this.running || this.timer) return;
    const full = this.depth >= this.opts.maxBatch;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, full ? 0 : this.opts.maxDelayMs);
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
      this.opts.onBatch?.(batch.reduce((n, p) => n + p.size, 0), computeMs);
      batch.forEach((p, i) => p.resolve({ output: outputs[i], queueMs: start - p.enqueuedAt, computeMs }));
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      this.running = false;
      if (this.queue.length) this.schedule();
    }
  }
}
