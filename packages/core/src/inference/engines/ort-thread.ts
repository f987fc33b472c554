/**
 * ONNX Runtime sessions on a worker thread. onnxruntime-node's `run()` returns a promise but computes on the
 * calling thread (it only defers the call with setImmediate), so on the main thread every forward pass froze
 * the event loop: while a batch ran, no request could be parsed, queued or answered, no PNG handed to sharp,
 * and /health stalled for as long as the pass took (seconds at 256²). On one worker thread, the passes still
 * run one at a time with all cores inside each op, while HTTP, validation and encoding go on beside them.
 *
 * One thread serves every session of the process. It does not keep the process alive while idle (a CLI run
 * exits when its work is done), only while a call is in flight.
 */
import { Worker } from "node:worker_threads";

export interface Feed {
  data: Float32Array;
  dims: readonly number[];
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  /** Runs the graph on float32 inputs and returns its first output. */
  run(feeds: Record<string, Feed>): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface SessionOptions {
  threads: number;
  memArena: boolean;
  /** let idle intra-op threads spin (lower latency for back-to-back passes, but they hold the cores) */
  spin?: boolean;
  /** write the model ORT optimised to this file (ort-cache.ts) */
  saveOptimizedTo?: string;
  /** record a per-op profile to <prefix>_<date>.json, written when the session is released (bench/profile.ts) */
  profile?: string;
}

/** ONNX bytes, or the file of a model that ORT optimised before (ort-cache.ts) and needs no second optimisation. */
export type ModelSource = Uint8Array | { path: string };

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

class OrtThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** whether the thread has loaded onnxruntime-node (its "ready" message) */
  private loaded = false;

  /**
   * The thread holds the process until it has loaded the native binding: a process that exited while the
   * thread was loading it was seen to abort once ("terminate called after throwing an instance of
   * 'Napi::Error'"), which a thread started ahead of its first call (startOrtThread) makes possible. Once the
   * binding is loaded, only calls in flight hold the process.
   */
  private start(): Worker {
    // No inherited Node flags: the thread runs plain JavaScript (ort-worker.mjs), and a loader the process was
    // started with (tsx's --import) made it ready in 220-330 ms instead of 90-140 ms, CPU taken from a start.
    const w = new Worker(new URL("./ort-worker.mjs", import.meta.url), { execArgv: [] });
    this.loaded = false;
    w.on("message", (r: Reply | "ready") => {
      if (r !== "ready") return this.settle(r);
      this.loaded = true;
      if (this.pending.size === 0) w.unref();
    });
    w.on("error", (e) => this.fail(w, e));
    w.on("exit", (code) => this.fail(w, new Error(`the ONNX Runtime thread exited (code ${code})`)));
    return w;
  }

  private settle(r: Reply) {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0 && this.loaded) this.worker?.unref();
    if (r.ok) p.resolve(r.value);
    else p.reject(new Error(r.error));
  }

  private fail(w: Worker, e: Error) {
    if (this.worker !== w) return;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** none started, started and loading onnxruntime-node, or loaded */
  get state(): "idle" | "loading" | "ready" {
    return this.worker === undefined ? "idle" : this.loaded ? "ready" : "loading";
  }

  /** Starts the thread (its first act is loading onnxruntime-node) unless it runs already. */
  warm(): void {
    this.worker ??= this.start();
  }

  call<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    this.worker ??= this.start();
    const w = this.worker;
    const id = this.nextId++;
    if (this.pending.size === 0) w.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ ...msg, id }, transfer);
    });
  }
}

const thread = new OrtThread();

/**
 * Starts the runtime thread ahead of its first session, so that loading the native binding (a few hundred ms)
 * overlaps the caller's own work. An idle thread does not keep the process alive.
 */
export function startOrtThread(): void {
  thread.warm();
}

/** Where the runtime thread stands; for tests and diagnostics. */
export function ortThreadState(): "idle" | "loading" | "ready" {
  return thread.state;
}

/**
 * The bytes are moved to the ORT thread, not copied (a structured clone of a 250 MB graph doubled the peak
 * while ORT parsed it): `model` is unusable afterwards. A view into a larger buffer is copied first.
 */
export async function createOrtSession(model: ModelSource, opts: SessionOptions): Promise<OrtSession> {
  let transfer: ArrayBuffer[] = [];
  if (model instanceof Uint8Array) {
    if (model.byteOffset !== 0 || model.byteLength !== model.buffer.byteLength || !(model.buffer instanceof ArrayBuffer)) model = model.slice();
    transfer = [model.buffer as ArrayBuffer];
  }
  const { sid, inputNames } = await thread.call<{ sid: number; inputNames: string[] }>(
    { op: "create", model, threads: opts.threads, memArena: opts.memArena, spin: opts.spin ?? false, saveOptimizedTo: opts.saveOptimizedTo, profile: opts.profile },
    transfer,
  );
  return {
    inputNames,
    run: (feeds) => thread.call<Float32Array>({ op: "run", sid, feeds }),
    release: () => thread.call<void>({ op: "release", sid }),
  };
}
