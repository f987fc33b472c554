/**
 * The IDX format of (Fashion-)MNIST: big-endian header `0 0 <type> <ndims>`, ndims uint32 sizes, then the
 * values row-major. Gzip is detected from its magic bytes, because Debian ships the files compressed and
 * other mirrors do not.
 */
import { gunzipSync } from "node:zlib";

export interface IdxArray {
  shape: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { bytes: number; read: (v: DataView, o: number) => number; make: (n: number) => IdxArray["data"] }> = {
  8: { bytes: 1, read: (v, o) => v.getUint8(o), make: (n) => new Uint8Array(n) },
  9: { bytes: 1, read: (v, o) => v.getInt8(o), make: (n) => new Int8Array(n) },
  11: { bytes: 2, read: (v, o) => v.getInt16(o), make: (n) => new Int16Array(n) },
  12: { bytes: 4, read: (v, o) => v.getInt32(o), make: (n) => new Int32Array(n) },
  13: { bytes: 4, read: (v, o) => v.getFloat32(o), make: (n) => new Float32Array(n) },
  14: { bytes: 8, read: (v, o) => v.getFloat64(o), make: (n) => new Float64Array(n) },
};

export function readIdx(input: Uint8Array, file = "idx file"): IdxArray {
  const bytes = input.length >= 2 && input[0] === 0x1f && input[1] === 0x8b ? new Uint8Array(gunzipSync(input)) : input;
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`${file}: not an IDX file (bad magic)`);
  const type = TYPES[bytes[2]];
  if (!type) throw new Error(`${file}: unknown IDX value type 0x${bytes[2].toString(16)}`);
  const ndims = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndims) throw new Error(`${file}: truncated header`);
  const shape = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndims;
  if (bytes.length - start !== count * type.bytes)
    throw new Error(`${file}: header says ${count} values (${count * type.bytes} bytes) but ${bytes.length - start} bytes follow`);
  if (type.bytes === 1 && bytes[2] === 0x08) return { shape, data: bytes.slice(start, start + count) };
  const data = type.make(count);
  for (let i = 0; i < count; i++) data[i] = type.read(view, start + i * type.bytes);
  return { shape, data };
}

/** Writes a ubyte IDX array (tests and fixtures). */
export function writeIdxUint8(shape: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  for (const [i, s] of shape.entries()) view.setUint32(4 + 4 * i, s);
  out.set(data, 4 + 4 * shape.length);
  return out;
}
