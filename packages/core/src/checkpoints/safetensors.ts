/**
 * safetensors: 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
 * [begin, end) byte range in the data section, then raw little-endian bytes. There is no usable package on
 * npm, so this is ours. Every offset is checked against the buffer before it is read.
 */
import { CheckpointError, numel, type DType, type RawTensor, type StateDict } from "./tensor.ts";

const BYTES: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Headers of real checkpoints are a few hundred KB; anything bigger is hostile or broken. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

export function readSafetensors(buf: Uint8Array, file = "weights.safetensors"): SafetensorsFile {
  const { entries, metadata, data } = parseHeader(buf, file);
  const tensors: StateDict = new Map();
  for (const e of entries) tensors.set(e.name, decode(e.dtype, e.shape, data.subarray(e.begin, e.end)));
  return { tensors, metadata };
}

/**
 * The same file with its tensors decoded when they are read, not when it is opened: a serving engine that starts
 * from its optimised-model cache (inference/engines/ort-cache.ts) needs none or one of them (StyleGAN2's
 * `mapping.w_avg`), and decoding a whole StyleGAN2 state dict took seconds of a cached start. Every read decodes
 * a fresh copy (nothing is kept but `buf`), so the dict costs the file's bytes however often it is read, and a
 * caller that changes a tensor changes only its copy. The header is checked in full here, as readSafetensors
 * does. `buf` must not change while the dict is in use.
 */
export function openSafetensors(buf: Uint8Array, file = "weights.safetensors"): SafetensorsFile {
  const { entries, metadata, data } = parseHeader(buf, file);
  return { tensors: new LazyStateDict(entries.map((e) => [e.name, () => decode(e.dtype, [...e.shape], data.subarray(e.begin, e.end))])), metadata };
}

/**
 * A StateDict whose values are made by a function on every read. Keys, `has` and `size` never decode; `get`
 * decodes one tensor, iteration decodes each as it is reached. A tensor `set` into it is kept as given.
 */
class LazyStateDict extends Map<string, RawTensor> {
  readonly #decoders = new Map<string, () => RawTensor>();

  constructor(decoders: [string, () => RawTensor][]) {
    super();
    for (const [name, decoder] of decoders) {
      this.#decoders.set(name, decoder);
      super.set(name, PENDING);
    }
  }

  override get(key: string): RawTensor | undefined {
    const decoder = this.#decoders.get(key);
    return decoder ? decoder() : super.get(key);
  }

  override set(key: string, value: RawTensor): this {
    this.#decoders.delete(key);
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    this.#decoders.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    this.#decoders.clear();
    super.clear();
  }

  override entries(): MapIterator<[string, RawTensor]> {
    const keys = super.keys();
    const get = (k: string) => this.get(k) as RawTensor;
    return (function* () {
      for (const k of keys) yield [k, get(k)] as [string, RawTensor];
    })() as unknown as MapIterator<[string, RawTensor]>;
  }

  override values(): MapIterator<RawTensor> {
    const entries = this.entries();
    return (function* () {
      for (const [, v] of entries) yield v;
    })() as unknown as MapIterator<RawTensor>;
  }

  override [Symbol.iterator](): MapIterator<[string, RawTensor]> {
    return this.entries();
  }

  override forEach(callback: (value: RawTensor, key: string, map: Map<string, RawTensor>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }
}

/**
 * Stands in Map's own storage for a tensor not decoded yet; get and iteration go to the decoder instead. Code that
 * reaches Map's storage around them (Map.prototype.get.call, structuredClone, postMessage) gets an error rather
 * than a silently empty tensor.
 */
const PENDING = Object.freeze({
  dtype: "U8",
  shape: [0],
  get data(): Uint8Array {
    throw new Error("a lazily decoded state dict was read around its accessors (copy it with new Map(dict) first)");
  },
}) as RawTensor;

interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** byte range in the data section */
  begin: number;
  end: number;
}

/** Validates the header against the buffer; `data` is the data section, which the entries' offsets index. */
function parseHeader(buf: Uint8Array, file: string): { entries: HeaderEntry[]; metadata: Record<string, string>; data: Uint8Array } {
  const fail = (problem: string): never => {
    throw new CheckpointError(file, problem);
  };
  if (buf.byteLength < 8) fail(`truncated: ${buf.byteLength} bytes, a safetensors file starts with an 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, buf.byteLength - 8)))
    fail(`header claims ${headerLen} bytes but the file has ${buf.byteLength - 8} after the length field`);
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch {
    fail("header is not valid UTF-8 JSON (not a safetensors file?)");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("header is not a JSON object");
  const data = buf.subarray(8 + n);
  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null) fail("__metadata__ is not an object");
      metadata = Object.fromEntries(Object.entries(entry as object).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) fail(`tensor ${name}: entry is not an object`);
    const dtype = e.dtype as DType;
    if (typeof dtype !== "string" || !(dtype in BYTES)) fail(`tensor ${name}: unsupported dtype ${String(e.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor ${name}: shape must be a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0))
      fail(`tensor ${name}: data_offsets must be [begin, end]`);
    const [begin, end] = offs as [number, number];
    const count = numel(shape as number[]);
    if (end < begin || end - begin !== count * BYTES[dtype])
      fail(`tensor ${name}: data_offsets [${begin}, ${end}] do not match ${dtype}${JSON.stringify(shape)}`);
    if (end > data.byteLength) fail(`tensor ${name}: data ends at byte ${end} but the data section has ${data.byteLength} (truncated file)`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  return { entries, metadata, data };
}

function decode(dtype: DType, shape: number[], bytes: Uint8Array): RawTensor {
  // Copy so the result is aligned and independent of the file buffer (Buffer#slice would not copy).
  const copy = new Uint8Array(bytes).buffer;
  const count = numel(shape);
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(copy) };
    case "F64":
      return { dtype: "F32", shape, data: Float32Array.from(new Float64Array(copy)) };
    case "F16": {
      const src = new Uint16Array(copy);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(src[i]);
      return { dtype: "F32", shape, data: out };
    }
    case "BF16": {
      const src = new Uint16Array(copy);
      const out = new Float32Array(count);
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u32[i] = src[i] << 16;
      return { dtype: "F32", shape, data: out };
    }
    case "I64":
      return { dtype, shape, data: new BigInt64Array(copy) };
    case "I32":
      return { dtype, shape, data: new Int32Array(copy) };
    case "I16":
      return { dtype, shape, data: new Int16Array(copy) };
    case "I8":
      return { dtype, shape, data: new Int8Array(copy) };
    case "U8":
    case "BOOL":
      return { dtype, shape, data: new Uint8Array(copy) };
  }
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** Round-to-nearest-even float32 → float16 bits. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export interface WriteOptions {
  /** Store floating tensors as float16 (halves the file; the demo models use it). */
  float16?: boolean;
  metadata?: Record<string, string>;
}

export function writeSafetensors(tensors: StateDict, opts: WriteOptions = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = encode(t, opts.float16 ?? false);
    header[name] = { dtype: bytes.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.data.byteLength] };
    chunks.push(bytes.data);
    offset += bytes.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.byteLength;
  for (const c of chunks) {
    out.set(c, p);
    p += c.byteLength;
  }
  return out;
}

function encode(t: RawTensor, float16: boolean): { dtype: DType; data: Uint8Array } {
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (t.data instanceof Float32Array) {
    if (!float16) return { dtype: "F32", data: asBytes(t.data) };
    const h = new Uint16Array(t.data.length);
    for (let i = 0; i < h.length; i++) h[i] = floatToHalf(t.data[i]);
    return { dtype: "F16", data: asBytes(h) };
  }
  if (t.data instanceof Float64Array) return { dtype: "F64", data: asBytes(t.data) };
  return { dtype: t.dtype, data: asBytes(t.data) };
}
