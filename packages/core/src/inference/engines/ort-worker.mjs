// The ONNX Runtime thread (see ort-thread.ts). Plain JavaScript on purpose: worker threads do not inherit the
// TypeScript loader in every host we run under (vitest's workers, plain `node`), and this file needs none.
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";

// Execution providers in order of preference, from GANSERVE_ORT_PROVIDERS (validated by config.ts; a worker
// thread shares the process env). CPU alone by default; the GPU task sets "cuda,cpu" so ONNX Runtime places
// what CUDA covers on the GPU and falls back to the CPU kernels for the rest.
const executionProviders = (process.env.GANSERVE_ORT_PROVIDERS || "cpu").split(",").map((p) => p.trim());

const sessions = new Map();
/** ids of the sessions created with profiling on */
const profiled = new Set();
let nextSession = 1;

/** @param {{ op: string; id: number; [k: string]: any }} msg */
async function handle(msg) {
  if (msg.op === "create") {
    // msg.model: the ONNX bytes (transferred, not copied), or { path } of a model ORT optimised before
    // (ort-cache.ts), which needs no second optimisation.
    const session = await ort.InferenceSession.create(msg.model.path ?? msg.model, {
      executionProviders,
      enableCpuMemArena: msg.memArena,
      // No memory pattern: with one, ORT plans a pass's intermediates as one block per input shape, and the
      // arena kept the first pass at a new batch size (run tensor by tensor while the pattern is recorded) beside
      // the block of the next: SPADE 256² at batch 8 peaked at 7.6 GB against 4.5 GB without (torch 2.13: 3.1 GB),
      // CycleGAN at 1.42 against 1.21 GB, with no pass slower (docs/performance.md, Memory). Tensors are then
      // taken from and returned to the arena one by one, freed at their last use as in PyTorch.
      enableMemPattern: false,
      graphOptimizationLevel: msg.model.path ? "disabled" : "all",
      // Saving at level "all" always warns that the file is hardware-specific: the cache key holds the CPU.
      ...(msg.saveOptimizedTo ? { optimizedModelFilePath: msg.saveOptimizedTo, logSeverityLevel: 3 } : {}),
      ...(msg.profile ? { enableProfiling: true, profileFilePrefix: msg.profile } : {}),
      intraOpNumThreads: msg.threads,
      // One graph runs at a time; parallelism comes from inside each op.
      interOpNumThreads: 1,
      executionMode: "sequential",
      // Idle pool threads sleep instead of spinning: the main thread needs the cores between passes.
      extra: { session: { intra_op: { allow_spinning: msg.spin ? "1" : "0" } } },
    });
    const sid = nextSession++;
    sessions.set(sid, session);
    if (msg.profile) profiled.add(sid);
    return { value: { sid, inputNames: session.inputNames } };
  }
  const session = sessions.get(msg.sid);
  if (!session) throw new Error(`ONNX Runtime session ${msg.sid} does not exist (released, or the runtime thread restarted)`);
  if (msg.op === "release") {
    sessions.delete(msg.sid);
    // A profiled session writes its trace (<profile prefix>_<date>.json) when profiling ends.
    if (profiled.delete(msg.sid)) session.endProfiling();
    await session.release();
    return { value: null };
  }
  if (msg.op === "run") {
    const inputs = {};
    for (const [k, v] of Object.entries(msg.feeds)) inputs[k] = new ort.Tensor("float32", v.data, v.dims);
    const out = await session.run(inputs);
    const name = session.outputNames[0];
    for (const [k, v] of Object.entries(out)) if (k !== name) v.dispose();
    const data = out[name].data;
    return { value: data, transfer: [data.buffer] };
  }
  throw new Error(`unknown op ${msg.op}`);
}

// The binding is loaded (the static import above): the caller may let the process exit from now on (ort-thread.ts).
parentPort.postMessage("ready");

parentPort.on("message", (msg) => {
  handle(msg).then(
    ({ value, transfer }) => parentPort.postMessage({ id: msg.id, ok: true, value }, transfer ?? []),
    (e) => parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) }),
  );
});
