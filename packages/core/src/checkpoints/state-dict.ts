/**
 * Finding the state dict inside whatever object a checkpoint holds, and converting it to official names.
 * Training scripts wrap it in many ways ({"state_dict": ...}, {"model": ..., "optimizer": ...}, whole
 * nn.Modules); the choice made is returned as a key path so callers can show it and let a user override it.
 */
import { CheckpointError, type StateDict } from "./tensor.ts";
import { PyObject } from "./pickle-values.ts";
import { materialize, TorchTensor, type ByteBudget } from "./torch-tensor.ts";

/** Keys that conventionally hold the weights to serve, most specific first. */
const PREFERRED_KEYS = ["state_dict", "model_state_dict", "G_ema", "g_ema", "netG", "generator", "model", "net", "G", "params_ema", "params", "module"];
const MAX_SEARCH_DEPTH = 4;
/** Real networks nest a few levels (SPADE norms, U-Net blocks ~10); a crafted chain must not overflow the JS stack. */
const MAX_MODULE_DEPTH = 256;

export interface StateDictSelection {
  stateDict: StateDict;
  /** Keys from the root to the chosen dict; [] when the root is the state dict. */
  path: string[];
  /** Every path that holds a state dict (what a CLI can offer when the choice is ambiguous). */
  candidates: string[][];
}

const isTensorDict = (v: unknown): v is Map<string, TorchTensor> => {
  if (!(v instanceof Map) || v.size === 0) return false;
  for (const [k, t] of v) if (typeof k !== "string" || !(t instanceof TorchTensor)) return false;
  return true;
};

/** nn.Module-like objects (whole-model torch.save, NVIDIA persistent classes) expose _parameters/_modules. */
export const isModule = (v: unknown): v is PyObject => v instanceof PyObject && !!v.dict && (v.dict.has("_parameters") || v.dict.has("_modules"));

export function listStateDictCandidates(root: unknown): string[][] {
  const out: string[][] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, path: string[]) => {
    if (seen.has(v) || path.length > MAX_SEARCH_DEPTH) return;
    seen.add(v);
    if (isTensorDict(v) || isModule(v)) {
      out.push(path);
      return;
    }
    if (v instanceof Map) for (const [k, child] of v) if (typeof k === "string") walk(child, [...path, k]);
  };
  walk(root, []);
  return out;
}

export function selectStateDict(root: unknown, file: string, budget: ByteBudget, key?: string | string[]): StateDictSelection {
  const candidates = listStateDictCandidates(root);
  let path: string[];
  if (key !== undefined) {
    path = Array.isArray(key) ? key : [key];
  } else if (candidates.length === 1) {
    path = candidates[0];
  } else if (candidates.length === 0) {
    throw new CheckpointError(file, `no state dict found (top level is ${summarize(root)})`);
  } else {
    const preferred = PREFERRED_KEYS.find((k) => candidates.some((c) => c.length === 1 && c[0] === k));
    if (!preferred)
      throw new CheckpointError(file, `several state dicts found (${candidates.map((c) => c.join(".")).join(", ")}); choose one with stateDictKey`);
    path = [preferred];
  }
  let node: unknown = root;
  for (const k of path) {
    if (!(node instanceof Map) || !node.has(k)) throw new CheckpointError(file, `no key ${JSON.stringify(k)} at ${path.join(".") || "top level"} (top level is ${summarize(root)})`);
    node = node.get(k);
  }
  if (isModule(node)) return { stateDict: moduleStateDict(node, file, budget), path, candidates };
  if (!isTensorDict(node)) throw new CheckpointError(file, `${path.join(".") || "top level"} is not a state dict of tensors`);
  return { stateDict: tensorsToStateDict(node, file, budget), path, candidates };
}

export function tensorsToStateDict(m: Map<string, TorchTensor>, file: string, budget: ByteBudget): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of m) out.set(k, materialize(t, file, budget));
  return out;
}

/** Module.state_dict(): own parameters, then persistent buffers, then each child under its name. */
export function moduleStateDict(root: PyObject, file: string, budget: ByteBudget): StateDict {
  const out: StateDict = new Map();
  const active = new Set<PyObject>();
  const visit = (mod: PyObject, prefix: string) => {
    if (active.size >= MAX_MODULE_DEPTH) throw new CheckpointError(file, `modules nest deeper than ${MAX_MODULE_DEPTH} levels`);
    if (active.has(mod)) throw new CheckpointError(file, `module ${prefix || "root"} contains itself`);
    active.add(mod);
    const d = mod.dict!;
    const nonPersistent = d.get("_non_persistent_buffers_set");
    const skip = nonPersistent instanceof Set ? nonPersistent : new Set();
    for (const [field, filter] of [
      ["_parameters", () => true],
      ["_buffers", (k: unknown) => !skip.has(k)],
    ] as const) {
      const entries = d.get(field);
      if (entries === undefined || entries === null) continue;
      if (!(entries instanceof Map)) throw new CheckpointError(file, `${prefix}${field} is not a dict`);
      for (const [k, t] of entries) {
        if (t === null || !filter(k)) continue;
        if (!(t instanceof TorchTensor)) throw new CheckpointError(file, `${prefix}${String(k)} is not a tensor`);
        out.set(prefix + String(k), materialize(t, file, budget));
      }
    }
    const children = d.get("_modules");
    if (children instanceof Map) {
      for (const [k, child] of children) {
        if (child === null) continue;
        if (!isModule(child)) throw new CheckpointError(file, `${prefix}${String(k)} is not a module`);
        visit(child, `${prefix}${String(k)}.`);
      }
    }
    active.delete(mod);
  };
  visit(root, "");
  return out;
}

function summarize(v: unknown): string {
  if (v instanceof Map) {
    const keys = [...v.keys()].slice(0, 12).map((k) => JSON.stringify(typeof k === "bigint" ? k.toString() : k));
    return `a dict with keys ${keys.join(", ")}${v.size > 12 ? ", ..." : ""}`;
  }
  if (v instanceof PyObject) return `a ${v.cls} object`;
  return v === null ? "None" : typeof v;
}
