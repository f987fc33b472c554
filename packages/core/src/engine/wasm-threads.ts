/**
 * tfjs-backend-wasm's multi-threaded build in Node (`GANSERVE_WASM_THREADS=N`, off by default). The package
 * reports no thread support under Node (tfjs#3830) and, when forced, starts its pthread workers from a `blob:`
 * URL that Node's worker_threads refuses (ERR_WORKER_PATH). This starts them from the worker source the package
 * ships (wasm-out/…threaded-simd.worker.js) and has them load the package's own threaded glue
 * (wasm-out/…threaded-simd.js) instead of the blob. The module sizes XNNPACK's pool as min(4, cores / 2), which
 * is 1 on a 2-vCPU machine whatever is asked, so the core count it reads is raised to 2N while it starts.
 * Pool threads never exit, so their workers are unref'd: they must not keep a finished process alive.
 * Call before the wasm backend is first initialised.
 */
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { Worker as NodeWorker, type WorkerOptions } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";

const require = createRequire(import.meta.url);

/** Threads asked for by GANSERVE_WASM_THREADS: a whole number ≥ 2, or undefined (the single-threaded build). */
export function wasmThreadsFromEnv(value = process.env.GANSERVE_WASM_THREADS): number | undefined {
  if (value === undefined || value === "" || value === "0" || value === "1") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new Error(`GANSERVE_WASM_THREADS=${value}: expected a whole number of threads`);
  return n;
}

/**
 * Switches the wasm backend to its threaded build with `threads` threads; returns the count it runs on. While it
 * starts, `os.cpus` and `globalThis.Worker` are swapped process-wide (across awaits), so it runs once, from
 * initBackend, before the process does other work.
 */
export async function initThreadedWasm(threads: number): Promise<number> {
  const wasmOut = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  const workerSource = (require(path.join(wasmOut, "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string }).wasmWorkerContents;
  const glue = path.join(wasmOut, "tfjs-backend-wasm-threaded-simd.js");
  class PackageWorker extends NodeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      // The source holds "\n" escapes inside string literals; as tfjs does for its blob, keep them escaped.
      if (String(url).startsWith("blob:")) super(workerSource.replace(/\n/g, "\\n"), { eval: true });
      else super(url, options);
    }
    override postMessage(message: unknown, transfer?: readonly import("node:worker_threads").TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      super.postMessage(m?.cmd === "load" && typeof m.urlOrBlob !== "string" ? { ...m, urlOrBlob: glue } : message, transfer);
    }
  }
  const previous = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  // The glue assigns worker_threads' Worker to the global as it starts; this one must stay.
  Object.defineProperty(globalThis, "Worker", { configurable: true, get: () => PackageWorker, set: () => {} });
  const cpus = os.cpus;
  const real = cpus();
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
  try {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("the threaded wasm backend did not start");
    await tf.ready();
    const running = (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: NodeWorker[] } } }).wasm.PThread?.runningWorkers ?? [];
    for (const w of running) w.unref();
    return wasm.getThreadsCount();
  } finally {
    os.cpus = cpus;
    if (previous) Object.defineProperty(globalThis, "Worker", previous);
    else delete (globalThis as { Worker?: unknown }).Worker;
  }
}
