/**
 * Per-key request rate limiting with a token bucket: each key earns `rpm` tokens a minute up to `burst`, and
 * a request spends one. In-process state: each API process enforces the limit on its own, so N replicas
 * allow up to N × rpm in total (the limit protects each process; a shared store would cost a storage round
 * trip on every request).
 */

export interface RateLimitOptions {
  /** Sustained requests per minute per key. */
  rpm: number;
  /** Requests a key may make at once after being idle; default ten seconds' worth (at least 1). */
  burst?: number;
  /** Buckets kept at most; beyond it the least recently used are dropped (a dropped bucket restarts full). */
  maxKeys?: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until one token is available again (0 when allowed). */
  retryAfter: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBucketLimiter {
  readonly rpm: number;
  readonly burst: number;
  private readonly perMs: number;
  private readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: RateLimitOptions) {
    if (!(opts.rpm > 0)) throw new RangeError("rpm must be positive");
    this.rpm = opts.rpm;
    this.burst = Math.max(1, Math.floor(opts.burst ?? opts.rpm / 6));
    this.perMs = opts.rpm / 60_000;
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  take(id: string, now = Date.now()): RateLimitDecision {
    let b = this.buckets.get(id);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perMs);
      b.at = now;
      // Re-insert so Map order is least-recently-used first, which is what eviction walks.
      this.buckets.delete(id);
    } else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxKeys) this.evict();
    }
    this.buckets.set(id, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, limit: this.rpm, remaining: Math.floor(b.tokens), retryAfter: 0 };
    }
    return { allowed: false, limit: this.rpm, remaining: 0, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) };
  }

  get size() {
    return this.buckets.size;
  }

  private evict() {
    const drop = Math.max(1, Math.floor(this.maxKeys / 10));
    let n = 0;
    for (const k of this.buckets.keys()) {
      if (n++ >= drop) break;
      this.buckets.delete(k);
    }
  }
}
