/**
 * torch.save(..., _use_new_zipfile_serialization=False), the format of torch <= 1.5 and of most 2018-2020 GAN
 * checkpoints. The file is five things back to back: a pickled magic number, a pickled protocol version, a pickled
 * sys_info dict, the main pickle (storages appear as persistent ids), a pickled list of storage keys, and then, for
 * each key in that order, an int64 element count followed by the raw little-endian storage bytes.
 * torch.storage._load_from_bytes inside network pickles uses the same layout for a single storage.
 */
import { CheckpointError } from "./tensor.ts";
import { makeHooks } from "./allowlist.ts";
import { budgetFor, type CheckpointOptions } from "./options.ts";
import { PyObject } from "./pickle-values.ts";
import { selectStateDict, type StateDictSelection } from "./state-dict.ts";
import { ELEMENT_BYTES, persistentStorageType, TorchStorage } from "./torch-tensor.ts";
import { unpickle, type PickleHooks } from "./unpickler.ts";

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** PROTO 2, LONG1 of 10 bytes, then the magic number: how every legacy file starts. */
export const LEGACY_PREFIX = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

export function readTorchLegacy(bytes: Uint8Array, file: string, opts: CheckpointOptions = {}): StateDictSelection {
  const root = readLegacyObject(bytes, file, opts);
  return selectStateDict(root, file, budgetFor(opts), opts.stateDictKey);
}

/** The unpickled object graph, with every storage's bytes filled in. */
export function readLegacyObject(bytes: Uint8Array, file: string, opts: CheckpointOptions = {}, base?: Omit<PickleHooks, "persistentLoad">): unknown {
  const fail = (p: string): never => {
    throw new CheckpointError(file, p);
  };
  const hooks = base ?? makeHooks({ file });
  const limits = opts.pickleLimits;
  const header = (offset: number) => unpickle(bytes, hooks, file, { offset, limits });

  const magic = header(0);
  if (magic.value !== LEGACY_MAGIC) fail("bad magic number (not a legacy torch.save file)");
  const proto = header(magic.end);
  if (proto.value !== LEGACY_PROTOCOL) fail(`unsupported legacy protocol version ${String(proto.value)}`);
  const sysInfo = header(proto.end);
  if (!(sysInfo.value instanceof Map)) fail("sys_info is not a dict");
  if ((sysInfo.value as Map<unknown, unknown>).get("little_endian") === false) fail("big-endian checkpoints are not supported");

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): unknown => {
    if (!Array.isArray(pid) || pid.length < 1) return fail("malformed persistent id");
    if (pid[0] === "module") return new PyObject("torch module source"); // whole-module saves embed source text; never used
    if (pid[0] !== "storage" || pid.length < 5) return fail(`unsupported persistent id ${String(pid[0])}`);
    const [, type, key, , numel, view] = pid as unknown[];
    const dtype = persistentStorageType(type, file);
    if (typeof key !== "string" || !Number.isSafeInteger(numel) || (numel as number) < 0) return fail("malformed storage persistent id");
    let root = storages.get(key);
    if (!root) {
      root = new TorchStorage(key, dtype, numel as number);
      storages.set(key, root);
    } else if (root.dtype !== dtype) fail(`storage ${key} is used with two dtypes`);
    if (view === undefined || view === null) return root;
    // Pre-1.0 storage views: (view_key, element offset, element count) into the root storage.
    if (!Array.isArray(view) || view.length !== 3) return fail("malformed storage view");
    const [, off, size] = view as unknown[];
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(size) || (off as number) < 0 || (size as number) < 0 || (off as number) + (size as number) > root.numel)
      fail(`storage view outside storage ${key}`);
    return new TorchStorage(`${key}[view]`, dtype, size as number, root, off as number);
  };
  const main = unpickle(bytes, { ...hooks, persistentLoad }, file, { offset: sysInfo.end, limits });
  const keys = header(main.end);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === "string")) fail("storage key list is not a list of strings");

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const s = storages.get(key);
    if (!s) return fail(`storage ${key} is listed but no tensor uses it`);
    if (pos + 8 > bytes.byteLength) fail(`storage ${key}: truncated before its size`);
    const count = view.getBigInt64(pos, true);
    pos += 8;
    if (count !== BigInt(s.numel)) fail(`storage ${key}: file says ${count} elements, the pickle says ${s.numel}`);
    const len = s.numel * ELEMENT_BYTES[s.dtype];
    if (pos + len > bytes.byteLength) fail(`storage ${key}: needs ${len} bytes, ${bytes.byteLength - pos} remain (truncated file)`);
    s.bytes = bytes.slice(pos, pos + len);
    pos += len;
  }
  for (const [key, s] of storages) if (!s.bytes) fail(`storage ${key} is used but its data is missing`);
  return main.value;
}
