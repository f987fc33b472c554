/**
 * The in-process queue of `npm start` and the tests: the same semantics as SQS (queue.ts), so the worker
 * code that runs against SQS in AWS runs unchanged here. Visibility timeouts, receive counts and long
 * polling are modelled; there is no persistence (a restart forgets queued messages, as the in-process
 * worker that would run them is gone too; their records stay `starting` until their deadline).
 */
import { randomUUID } from "node:crypto";
import type { PredictionQueue, QueueDepth, QueueMessage, ReceiveOptions } from "./queue.ts";

interface Stored {
  body: string;
  visibleAt: number;
  receiveCount: number;
  handle?: string;
}

export class MemoryQueue implements PredictionQueue {
  readonly kind = "memory" as const;
  private messages: Stored[] = [];
  private readonly wakers = new Set<() => void>();

  constructor(private readonly now: () => number = Date.now) {}

  async send(body: string): Promise<void> {
    this.messages.push({ body, visibleAt: 0, receiveCount: 0 });
    this.wake();
  }

  private wake() {
    for (const w of [...this.wakers]) w();
  }

  private take(opts: ReceiveOptions): QueueMessage[] {
    const now = this.now();
    const out: QueueMessage[] = [];
    for (const m of this.messages) {
      if (out.length >= opts.max) break;
      if (m.visibleAt > now) continue;
      m.handle = randomUUID();
      m.receiveCount++;
      m.visibleAt = now + opts.visibilitySeconds * 1000;
      out.push({ body: m.body, receiptHandle: m.handle, receiveCount: m.receiveCount });
    }
    return out;
  }

  async receive(opts: ReceiveOptions): Promise<QueueMessage[]> {
    const deadline = this.now() + opts.waitSeconds * 1000;
    for (;;) {
      const got = this.take(opts);
      if (got.length || this.now() >= deadline || opts.signal?.aborted) return got;
      // Sleep until a send, the next hidden message's return, the end of the wait or an abort.
      const hidden = this.messages.map((m) => m.visibleAt).filter((t) => t > this.now());
      const until = Math.min(deadline, ...hidden);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wakers.delete(done);
          opts.signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, until - this.now()));
        this.wakers.add(done);
        opts.signal?.addEventListener("abort", done);
      });
    }
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const m = this.messages.find((x) => x.handle === receiptHandle);
    if (!m) return;
    m.visibleAt = this.now() + seconds * 1000;
    if (seconds === 0) this.wake();
  }

  async delete(receiptHandle: string): Promise<void> {
    this.messages = this.messages.filter((x) => x.handle !== receiptHandle);
  }

  async depth(): Promise<QueueDepth> {
    const now = this.now();
    const visible = this.messages.filter((m) => m.visibleAt <= now).length;
    return { visible, inFlight: this.messages.length - visible };
  }
}
