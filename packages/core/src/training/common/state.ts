/** Helpers to put network weights and small scalars into a trainer state dict under prefixes, and back. */
import type { RawTensor, StateDict } from "../../checkpoints/tensor.ts";

export function withPrefix(prefix: string, sd: StateDict, out: StateDict = new Map()): StateDict {
  for (const [k, v] of sd) out.set(`${prefix}${k}`, v);
  return out;
}

/** Entries under `prefix`, prefix removed. */
export function underPrefix(sd: StateDict, prefix: string): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

export const i64Scalar = (n: number): RawTensor => ({ dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(n)) });

export function readInt(sd: StateDict, key: string): number {
  const t = sd.get(key);
  if (t?.data.length !== 1) throw new Error(`trainer state is missing ${key}`);
  return Number(t.data[0]);
}

/**
 * The trainer state of a plain G/D pair (DCGAN, SPADE): both networks under `G.` and `D.` (official names), both
 * Adams' moments under `opt_G.` and `opt_D.`, and the step.
 */
export function ganPairState(
  G: { stateDict(): StateDict },
  D: { stateDict(): StateDict },
  optG: { saveState(prefix: string, out: StateDict): StateDict },
  optD: { saveState(prefix: string, out: StateDict): StateDict },
  step: number,
): StateDict {
  const out: StateDict = new Map();
  withPrefix("G.", G.stateDict(), out);
  withPrefix("D.", D.stateDict(), out);
  optG.saveState("opt_G.", out);
  optD.saveState("opt_D.", out);
  out.set("step", i64Scalar(step));
  return out;
}
