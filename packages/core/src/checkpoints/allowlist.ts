/**
 * The only names a checkpoint pickle may use, and what "calling" each one means for us. Every handler builds
 * plain data; module classes (torch.nn.modules.*, NVIDIA persistent classes) become inert PyObjects whose
 * embedded source is dropped unread. Anything else is refused with the global's name, so a hostile file fails
 * loudly instead of running code.
 */
import { CheckpointError } from "./tensor.ts";
import { dictAttributes, describe, PyGlobal, PyObject } from "./pickle-values.ts";
import type { PickleHooks } from "./unpickler.ts";
import { rebuildTensor, storageDType, TorchStorage, TorchTensor } from "./torch-tensor.ts";

export interface AllowListContext {
  file: string;
  /** torch.storage._load_from_bytes: only network pickles embed storages this way. */
  loadFromBytes?: (bytes: Uint8Array) => unknown;
}

/** Python 2 module names that protocol-2 pickles written by Python 3 still use. */
const MODULE_ALIASES: Record<string, string> = {
  __builtin__: "builtins",
  copy_reg: "copyreg",
  "numpy._core.multiarray": "numpy.core.multiarray",
  "dnnlib.util": "dnnlib",
};

const CALLABLE = new Set([
  "collections.OrderedDict",
  "builtins.dict",
  "builtins.list",
  "builtins.tuple",
  "builtins.set",
  "builtins.frozenset",
  "builtins.slice",
  "builtins.object",
  "builtins.bytearray",
  "builtins.complex",
  "_codecs.encode",
  "copyreg._reconstructor",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch._tensor._rebuild_from_type_v2",
  "torch.storage._load_from_bytes",
  "torch.device",
  "torch.Size",
  "torch.Tensor",
  "torch.nn.parameter.Parameter",
  "torch_utils.persistence._reconstruct_persistent_obj",
  "dnnlib.EasyDict",
  "numpy.core.multiarray.scalar",
  "numpy.core.multiarray._reconstruct",
  "numpy.dtype",
  "numpy.ndarray",
]);

export function resolveGlobal(rawModule: string, name: string, file: string): PyGlobal {
  const module = MODULE_ALIASES[rawModule] ?? rawModule;
  const q = `${module}.${name}`;
  const inertModule = module.startsWith("torch.nn.modules.") && /^[A-Z]\w*$/.test(name);
  if (CALLABLE.has(q) || storageDType(module, name) || inertModule) return new PyGlobal(module, name);
  throw new CheckpointError(file, `global ${rawModule}.${name} is not allowed`);
}

export function makeHooks(ctx: AllowListContext): Omit<PickleHooks, "persistentLoad"> {
  const { file } = ctx;
  const fail = (p: string): never => {
    throw new CheckpointError(file, p);
  };
  const toMap = (v: unknown, what: string): Map<unknown, unknown> => {
    if (v === undefined || v === null) return new Map();
    if (v instanceof Map) return new Map(v);
    if (Array.isArray(v)) {
      const m = new Map();
      for (const kv of v) {
        if (!Array.isArray(kv) || kv.length !== 2) fail(`${what}: items must be (key, value) pairs`);
        m.set(kv[0], kv[1]);
      }
      return m;
    }
    return fail(`${what}: cannot build a dict from ${describe(v)}`);
  };

  const call = (fn: unknown, args: unknown[], kwargs?: Map<unknown, unknown>): unknown => {
    if (!(fn instanceof PyGlobal)) return fail(`pickle calls ${describe(fn)}, which is not an allowed callable`);
    const q = fn.qualified;
    if (fn.module.startsWith("torch.nn.modules.")) return new PyObject(q, args);
    switch (q) {
      case "collections.OrderedDict":
      case "builtins.dict":
        return toMap(args[0], q);
      case "dnnlib.EasyDict": {
        const m = toMap(args[0], q);
        if (kwargs) for (const [k, v] of kwargs) m.set(k, v);
        return m;
      }
      case "builtins.list":
      case "builtins.tuple":
      case "torch.Size":
        return args.length ? [...asIterable(args[0], q, file)] : [];
      case "builtins.set":
      case "builtins.frozenset":
        return new Set(args.length ? asIterable(args[0], q, file) : []);
      case "builtins.bytearray":
        return args[0] instanceof Uint8Array ? args[0].slice() : new Uint8Array(0);
      case "builtins.slice":
      case "builtins.object":
      case "builtins.complex":
        return new PyObject(q, args);
      case "_codecs.encode": {
        // Protocol 2 writes Python 3 bytes as _codecs.encode(latin1_text, 'latin1').
        const [s, enc] = args;
        if (typeof s !== "string" || (enc !== "latin1" && enc !== "latin-1")) fail("_codecs.encode is only allowed for latin1 bytes");
        const out = new Uint8Array((s as string).length);
        for (let i = 0; i < out.length; i++) {
          const c = (s as string).charCodeAt(i);
          if (c > 255) fail("_codecs.encode: character outside latin1");
          out[i] = c;
        }
        return out;
      }
      case "copyreg._reconstructor": {
        // copyreg._reconstructor(cls, object, None): how protocol 2 pickles plain class instances.
        const [cls] = args;
        if (!(cls instanceof PyGlobal)) return fail("copyreg._reconstructor without a class");
        if (cls.qualified === "collections.OrderedDict" || cls.qualified === "dnnlib.EasyDict") return new Map();
        return new PyObject(cls.qualified);
      }
      case "torch._utils._rebuild_tensor":
      case "torch._utils._rebuild_tensor_v2":
        return rebuildTensor(args, file);
      case "torch._utils._rebuild_parameter":
      case "torch._utils._rebuild_parameter_with_state":
        if (!(args[0] instanceof TorchTensor)) fail("_rebuild_parameter of a non-tensor");
        return args[0];
      case "torch._tensor._rebuild_from_type_v2": {
        // (func, new_type, args, state): a Tensor subclass; the data comes from func(*args).
        const [inner, , innerArgs] = args;
        if (!Array.isArray(innerArgs)) fail("_rebuild_from_type_v2 without an argument tuple");
        return call(inner, innerArgs as unknown[]);
      }
      case "torch.storage._load_from_bytes": {
        if (!ctx.loadFromBytes) return fail("torch.storage._load_from_bytes is not allowed in this format");
        if (!(args[0] instanceof Uint8Array)) fail("_load_from_bytes needs bytes");
        const s = ctx.loadFromBytes(args[0] as Uint8Array);
        if (!(s instanceof TorchStorage)) fail("_load_from_bytes did not yield a storage");
        return s;
      }
      case "torch.device":
        return args.length > 1 && args[1] !== null ? `${String(args[0])}:${String(args[1])}` : String(args[0]);
      case "torch.Tensor":
      case "torch.nn.parameter.Parameter":
        if (args[0] instanceof TorchTensor) return args[0];
        return new PyObject(q, args);
      case "torch_utils.persistence._reconstruct_persistent_obj":
        return persistentObject(args[0], file);
      case "numpy.dtype":
        return new PyObject(q, args);
      case "numpy.core.multiarray.scalar":
        return numpyScalar(args, file);
      case "numpy.core.multiarray._reconstruct":
        return new PyObject("numpy.ndarray", args);
      default:
        return fail(`${q} cannot be called`);
    }
  };

  const build = (obj: unknown, state: unknown): unknown => {
    if (obj instanceof PyObject) {
      const prev = obj.dict;
      if (prev && state instanceof Map) for (const [k, v] of state) prev.set(k, v);
      else obj.state = state;
      return obj;
    }
    if (obj instanceof Map) {
      // OrderedDict._metadata and similar attributes; kept aside from the items.
      dictAttributes.set(obj, state);
      return obj;
    }
    // Tensors carry hooks/requires_grad state we do not need.
    if (obj instanceof TorchTensor) return obj;
    return fail(`BUILD on ${describe(obj)} is not supported`);
  };

  return { findClass: (m, n) => resolveGlobal(m, n, file), call, build };
}

function asIterable(v: unknown, what: string, file: string): Iterable<unknown> {
  if (Array.isArray(v) || v instanceof Set) return v;
  if (v instanceof Map) return v.keys();
  throw new CheckpointError(file, `${what}: argument is ${describe(v)}, not iterable`);
}

/** NVIDIA persistent_class instances: keep class name, version and state; module_src is never looked at. */
function persistentObject(meta: unknown, file: string): PyObject {
  if (!(meta instanceof Map) || meta.get("type") !== "class" || typeof meta.get("class_name") !== "string")
    throw new CheckpointError(file, "_reconstruct_persistent_obj: metadata is not a persistent class record");
  const obj = new PyObject(meta.get("class_name") as string, [meta.get("version")]);
  obj.state = meta.get("state");
  return obj;
}

const NUMPY_SCALARS: Record<string, [number, (v: DataView, le: boolean) => number | bigint | boolean]> = {
  f8: [8, (v, le) => v.getFloat64(0, le)],
  f4: [4, (v, le) => v.getFloat32(0, le)],
  i8: [8, (v, le) => v.getBigInt64(0, le)],
  u8: [8, (v, le) => v.getBigUint64(0, le)],
  i4: [4, (v, le) => v.getInt32(0, le)],
  u4: [4, (v, le) => v.getUint32(0, le)],
  i2: [2, (v, le) => v.getInt16(0, le)],
  u2: [2, (v, le) => v.getUint16(0, le)],
  i1: [1, (v) => v.getInt8(0)],
  u1: [1, (v) => v.getUint8(0)],
  b1: [1, (v) => v.getUint8(0) !== 0],
};

/** numpy.core.multiarray.scalar(dtype, raw_bytes): a numpy float/int stored in init kwargs. */
function numpyScalar(args: unknown[], file: string): number | bigint | boolean {
  const [dtype, raw] = args;
  const code = dtype instanceof PyObject ? dtype.args[0] : undefined;
  const spec = typeof code === "string" && Object.hasOwn(NUMPY_SCALARS, code) ? NUMPY_SCALARS[code] : undefined;
  if (!spec || !(raw instanceof Uint8Array) || raw.byteLength !== spec[0]) throw new CheckpointError(file, `unsupported numpy scalar ${String(code)}`);
  const endian = Array.isArray((dtype as PyObject).state) ? ((dtype as PyObject).state as unknown[])[1] : "<";
  const v = spec[1](new DataView(raw.buffer, raw.byteOffset, raw.byteLength), endian !== ">");
  return typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
