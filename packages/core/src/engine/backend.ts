/**
 * Picks the TF.js backend once per process, best first: native CUDA (tfjs-node-gpu), native CPU (tfjs-node),
 * wasm (installs from the registry alone: the embedded default; `GANSERVE_WASM_THREADS=N` for its threaded build,
 * engine/wasm-threads.ts), plain JS cpu. The native packages are not
 * workspace dependencies (their install downloads libtensorflow from outside the registry), so they are
 * imported only if present, as in the GPU container images.
 */
import * as tf from "@tensorflow/tfjs-core";
import { initThreadedWasm, wasmThreadsFromEnv } from "./wasm-threads.ts";

export const BACKENDS = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKENDS)[number] | "auto";

let active: Promise<string> | undefined;

async function tryNative(pkg: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ pkg);
    return tf.findBackend("tensorflow") !== undefined && (await tf.setBackend("tensorflow"));
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  // Asked for explicitly, so a failure to start threads is an error, not a fallback to the next backend.
  const threads = wasmThreadsFromEnv();
  if (threads) return (await initThreadedWasm(threads)) > 0;
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

async function tryCpu(): Promise<boolean> {
  await import("@tensorflow/tfjs-backend-cpu");
  return tf.setBackend("cpu");
}

const attempts: Record<Exclude<BackendChoice, "auto">, () => Promise<boolean>> = {
  "tensorflow-gpu": () => tryNative("@tensorflow/tfjs-node-gpu"),
  tensorflow: () => tryNative("@tensorflow/tfjs-node"),
  wasm: tryWasm,
  cpu: tryCpu,
};

async function select(choice: BackendChoice): Promise<string> {
  if (choice !== "auto") {
    if (!(await attempts[choice]())) throw new Error(`GANSERVE_BACKEND=${choice} is not available in this install`);
    return tf.getBackend();
  }
  for (const name of BACKENDS) if (await attempts[name]()) return tf.getBackend();
  throw new Error("no TF.js backend could be initialised");
}

/** Initialise the backend (idempotent). `GANSERVE_BACKEND` overrides the automatic order. */
export function initBackend(choice: BackendChoice = (process.env.GANSERVE_BACKEND as BackendChoice) || "auto"): Promise<string> {
  active ??= select(choice).then(async (name) => {
    await tf.ready();
    return name;
  });
  return active;
}

export { tf };
