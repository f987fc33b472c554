/**
 * NVIDIA network pickles (stylegan2-ada / stylegan3 `network-snapshot-*.pkl`): a plain pickle of
 * {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}. Each network is a persistent_class instance whose
 * pickle embeds its module source; we keep only its state (__dict__) and never look at that source. Tensors are
 * torch.storage._load_from_bytes(legacy torch.save of one storage) wrapped in _rebuild_tensor_v2.
 */
import { CheckpointError, type StateDict } from "./tensor.ts";
import { makeHooks } from "./allowlist.ts";
import { budgetFor, type CheckpointOptions } from "./options.ts";
import { PyObject } from "./pickle-values.ts";
import { isModule, moduleStateDict } from "./state-dict.ts";
import { readLegacyObject } from "./torch-legacy.ts";
import { unpickle } from "./unpickler.ts";

export interface NetworkPickle {
  stateDict: StateDict;
  /** Constructor kwargs of the chosen network (positional args mapped to names for the known classes). */
  initKwargs: Record<string, unknown>;
  /** Class name recorded in the pickle, e.g. "Generator". */
  className: string;
  /** Keys of the top-level dict that hold networks. */
  networks: string[];
}

/** Positional parameter names of upstream constructors, for pickles whose networks were built with positional args. */
const POSITIONAL: Record<string, string[]> = {
  Generator: ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"],
};
const MAX_PLAIN_DEPTH = 16;

export function readNetworkPickle(bytes: Uint8Array, file: string, key = "G_ema", opts: CheckpointOptions = {}): NetworkPickle {
  const root = readNetworkPickleObject(bytes, file, opts);
  if (!(root instanceof Map)) throw new CheckpointError(file, "network pickle does not hold a dict");
  const networks = [...root.keys()].filter((k): k is string => typeof k === "string" && isModule(root.get(k)));
  const net = root.get(key);
  if (!isModule(net)) throw new CheckpointError(file, `network pickle has no network ${JSON.stringify(key)} (networks: ${networks.join(", ") || "none"})`);
  return {
    stateDict: moduleStateDict(net, file, budgetFor(opts)),
    initKwargs: initKwargs(net, file),
    className: net.cls,
    networks,
  };
}

export function readNetworkPickleObject(bytes: Uint8Array, file: string, opts: CheckpointOptions = {}): unknown {
  // One hooks object for the outer pickle and the embedded storages, so the same allow-list applies to both.
  const hooks = makeHooks({ file, loadFromBytes: (b) => readLegacyObject(b, file, opts, hooks) });
  return unpickle(bytes, hooks, file, { limits: opts.pickleLimits }).value;
}

function initKwargs(net: PyObject, file: string): Record<string, unknown> {
  const d = net.dict!;
  const out: Record<string, unknown> = {};
  const args = d.get("_init_args");
  if (Array.isArray(args) && args.length) {
    const names = POSITIONAL[net.cls];
    if (!names || args.length > names.length) throw new CheckpointError(file, `${net.cls} was built with positional args we cannot name`);
    for (const [i, v] of args.entries()) out[names[i]] = toPlain(v, 0);
  }
  const kwargs = d.get("_init_kwargs");
  if (kwargs instanceof Map) for (const [k, v] of kwargs) out[String(k)] = toPlain(v, 0);
  return out;
}

/** Dicts (EasyDict included) → plain objects, so kwargs read like the upstream JSON configs. */
function toPlain(v: unknown, depth: number): unknown {
  if (depth > MAX_PLAIN_DEPTH) return undefined;
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toPlain(x, depth + 1)]));
  if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1));
  if (v instanceof PyObject) return { __class__: v.cls };
  return v;
}
