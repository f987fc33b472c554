/**
 * Loaded models, least-recently-used first out, within a memory budget. Loading is lazy and single-flight
 * (concurrent first requests share one load), and a model counts as warm only after a warm-up forward pass,
 * so the first real request never pays for kernel compilation.
 */
import type { ModelJson } from "../models/model-json.ts";

export interface Loaded<T> {
  record: ModelJson;
  model: T;
  /** approximate resident bytes (weights) */
  bytes: number;
  warm: boolean;
  lastUsed: number;
}

export interface ModelCacheOptions<T> {
  budgetBytes: number;
  load: (record: ModelJson) => Promise<{ model: T; bytes: number }>;
  warmUp: (model: T, record: ModelJson) => Promise<void>;
  dispose: (model: T) => void;
  onLoad?: (record: ModelJson, seconds: number) => void;
  onChange?: (totalBytes: number) => void;
}

const keyOf = (r: ModelJson) => `${r.tenant ?? ""}/${r.name}/${r.version}`;

export class ModelCache<T> {
  private readonly entries = new Map<string, Loaded<T>>();
  private readonly loading = new Map<string, Promise<Loaded<T>>>();

  constructor(private readonly opts: ModelCacheOptions<T>) {}

  get totalBytes() {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  status() {
    return [...this.entries.values()].map((e) => ({ name: e.record.name, version: e.record.version, warm: e.warm }));
  }

  async get(record: ModelJson): Promise<Loaded<T>> {
    const key = keyOf(record);
    const hit = this.entries.get(key);
    if (hit && hit.record.weights.sha256 === record.weights.sha256) {
      hit.lastUsed = Date.now();
      return hit;
    }
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.loadEntry(key, record).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  private async loadEntry(key: string, record: ModelJson): Promise<Loaded<T>> {
    const start = performance.now();
    const { model, bytes } = await this.opts.load(record);
    const entry: Loaded<T> = { record, model, bytes, warm: false, lastUsed: Date.now() };
    try {
      await this.opts.warmUp(model, record);
      entry.warm = true;
    } catch (e) {
      this.opts.dispose(model);
      throw e;
    }
    const old = this.entries.get(key);
    if (old) this.opts.dispose(old.model);
    this.entries.set(key, entry);
    this.evict(key);
    this.opts.onLoad?.(record, (performance.now() - start) / 1000);
    this.opts.onChange?.(this.totalBytes);
    return entry;
  }

  /** Drops least-recently-used models until the budget holds; never the one just loaded. */
  private evict(keep: string) {
    const byAge = [...this.entries.entries()].filter(([k]) => k !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.totalBytes > this.opts.budgetBytes && byAge.length) {
      const [k, e] = byAge.shift()!;
      this.entries.delete(k);
      this.opts.dispose(e.model);
    }
  }

  clear() {
    for (const e of this.entries.values()) this.opts.dispose(e.model);
    this.entries.clear();
    this.opts.onChange?.(0);
  }
}
