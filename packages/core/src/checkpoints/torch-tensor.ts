/**
 * PyTorch storages and tensors as a pickle describes them (storage + offset + size + stride), and turning them
 * into contiguous row-major RawTensors. Storage bytes arrive later in the legacy format (after the pickle), so a
 * tensor only points at its storage until it is materialised.
 */
import { halfToFloat } from "./safetensors.ts";
import { CheckpointError, numel, type DType, type RawTensor } from "./tensor.ts";
import { PyGlobal } from "./pickle-values.ts";

export const ELEMENT_BYTES: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
  // Untyped storages count bytes; torch reads them as uint8.
  UntypedStorage: "U8",
};

/** torch.float32 etc.: newer torch may name the storage type by dtype. */
const TORCH_DTYPES: Record<string, DType> = {
  float32: "F32",
  float: "F32",
  float16: "F16",
  half: "F16",
  bfloat16: "BF16",
  float64: "F64",
  double: "F64",
  int64: "I64",
  long: "I64",
  int32: "I32",
  int: "I32",
  int16: "I16",
  short: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** The dtype a storage-type global stands for (torch.FloatStorage, torch.cuda.HalfStorage, torch.float32), if any. */
export function storageDType(module: string, name: string): DType | undefined {
  if (module === "torch" || module === "torch.cuda") {
    if (Object.hasOwn(STORAGE_DTYPES, name)) return STORAGE_DTYPES[name];
  }
  if (module === "torch" && Object.hasOwn(TORCH_DTYPES, name)) return TORCH_DTYPES[name];
  return undefined;
}

export class TorchStorage {
  bytes: Uint8Array | undefined;
  constructor(
    readonly key: string,
    readonly dtype: DType,
    /** Elements, not bytes. */
    readonly numel: number,
    /** Legacy storage views: this storage is `numel` elements of `base` starting at element `baseOffset`. */
    readonly base?: TorchStorage,
    readonly baseOffset = 0,
  ) {}

  data(file: string): Uint8Array {
    if (this.base) {
      const b = this.base.data(file);
      const eb = ELEMENT_BYTES[this.dtype];
      return b.subarray(this.baseOffset * eb, (this.baseOffset + this.numel) * eb);
    }
    if (!this.bytes) throw new CheckpointError(file, `storage ${this.key} is referenced but its data was never stored`);
    return this.bytes;
  }
}

export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

/** Budget shared by every tensor of one file, so stride tricks (size 1e6 x 1e6 with stride 0) cannot blow up memory. */
export interface ByteBudget {
  left: number;
}

/** torch._utils._rebuild_tensor_v2 / _rebuild_tensor arguments, validated against the storage they index. */
export function rebuildTensor(args: unknown[], file: string): TorchTensor {
  const fail = (p: string): never => {
    throw new CheckpointError(file, `_rebuild_tensor: ${p}`);
  };
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) return fail("first argument is not a storage");
  const ints = (v: unknown, what: string): number[] =>
    Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ? (v as number[]) : fail(`${what} must be a tuple of non-negative ints`);
  const sz = ints(size, "size");
  const st = ints(stride, "stride");
  if (sz.length !== st.length) fail(`size has ${sz.length} dims but stride has ${st.length}`);
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) fail("storage offset must be a non-negative int");
  const n = numel(sz);
  if (!Number.isSafeInteger(n)) fail(`shape ${JSON.stringify(sz)} is too large`);
  if (n > 0) {
    let last = offset as number;
    for (let i = 0; i < sz.length; i++) last += (sz[i] - 1) * st[i];
    if (last >= storage.numel)
      fail(`shape ${JSON.stringify(sz)} stride ${JSON.stringify(st)} offset ${offset} reaches element ${last} of a ${storage.numel}-element storage`);
  }
  return new TorchTensor(storage, offset as number, sz, st);
}

/** Copy a (possibly strided) tensor into contiguous row-major order and decode it. */
export function materialize(t: TorchTensor, file: string, budget: ByteBudget): RawTensor {
  const eb = ELEMENT_BYTES[t.storage.dtype];
  const n = numel(t.size);
  const bytes = n * eb;
  if (bytes > budget.left) throw new CheckpointError(file, `tensor of shape ${JSON.stringify(t.size)} exceeds the remaining memory budget`);
  budget.left -= bytes;
  const src = t.storage.data(file);
  const out = new Uint8Array(bytes);
  if (isContiguous(t.size, t.stride)) {
    out.set(src.subarray(t.offset * eb, t.offset * eb + bytes));
  } else {
    gather(src, out, t, eb);
  }
  return decode(t.storage.dtype, t.size, out.buffer);
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i];
  }
  return true;
}

function gather(src: Uint8Array, out: Uint8Array, t: TorchTensor, eb: number) {
  const nd = t.size.length;
  const n = numel(t.size);
  const idx = new Array<number>(nd).fill(0);
  let srcElem = t.offset;
  for (let i = 0; i < n; i++) {
    out.set(src.subarray(srcElem * eb, srcElem * eb + eb), i * eb);
    // Odometer over the output index, keeping the source element index in step.
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      srcElem += t.stride[d];
      if (idx[d] < t.size[d]) break;
      srcElem -= t.stride[d] * t.size[d];
      idx[d] = 0;
    }
  }
}

function decode(dtype: DType, shape: number[], buf: ArrayBuffer): RawTensor {
  const n = numel(shape);
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(buf) };
    case "F64":
      return { dtype: "F32", shape, data: Float32Array.from(new Float64Array(buf)) };
    case "F16": {
      const src = new Uint16Array(buf);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
      return { dtype: "F32", shape, data: out };
    }
    case "BF16": {
      const src = new Uint16Array(buf);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return { dtype: "F32", shape, data: out };
    }
    case "I64":
      return { dtype, shape, data: new BigInt64Array(buf) };
    case "I32":
      return { dtype, shape, data: new Int32Array(buf) };
    case "I16":
      return { dtype, shape, data: new Int16Array(buf) };
    case "I8":
      return { dtype, shape, data: new Int8Array(buf) };
    case "U8":
    case "BOOL":
      return { dtype, shape, data: new Uint8Array(buf) };
  }
}

/** Persistent ids name the storage type as a global: ('storage', torch.FloatStorage, key, location, numel, ...). */
export function persistentStorageType(v: unknown, file: string): DType {
  const dt = v instanceof PyGlobal ? storageDType(v.module, v.name) : undefined;
  if (!dt) throw new CheckpointError(file, `persistent id names an unknown storage type ${v instanceof PyGlobal ? v.qualified : String(v)}`);
  return dt;
}
