/**
 * NumPy's `.npy` and `.npz` formats, read-only and only as far as latents need: what NVlabs' `projector.py`
 * writes (`np.savez(f'{outdir}/projected_w.npz', w=...)`, a float32 array [1, num_ws, w_dim]) and what a user
 * saves with `np.save`. An `.npy` is a magic string, a version, a Python-literal header dict
 * (`{'descr': '<f4', 'fortran_order': False, 'shape': (1, 8, 32), }`) and the raw data; an `.npz` is a zip of
 * `<name>.npy` entries (stored by `savez`, deflated by `savez_compressed`).
 */
import { halfToFloat } from "../checkpoints/safetensors.ts";
import { readEntries } from "../checkpoints/torch-zip.ts";

export class NpyError extends Error {
  override name = "NpyError";
}

export interface NpyArray {
  shape: number[];
  /** row-major (C order) values, converted to float32 */
  data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Latent files are kilobytes; a bound keeps a hostile zip from inflating gigabytes. */
export const MAX_NPZ_BYTES = 64 * 1024 * 1024;

export const isNpy = (b: Uint8Array) => b.length >= 6 && MAGIC.every((m, i) => b[i] === m);
export const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

export function readNpy(bytes: Uint8Array): NpyArray {
  if (!isNpy(bytes)) throw new NpyError("not an .npy array (no \\x93NUMPY magic)");
  if (bytes.length < 10) throw new NpyError("truncated .npy header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (major < 1 || major > 3) throw new NpyError(`.npy version ${major} is not supported`);
  if (start + headerLen > bytes.length) throw new NpyError("truncated .npy header");
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new NpyError(`unreadable .npy header: ${header.trim()}`);
  if (fortran === "True") throw new NpyError("Fortran-ordered arrays are not supported; save a C-ordered array");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new NpyError(`bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const little = descr[0] === "<" || descr[0] === "|" || descr[0] === "=";
  const kind = descr.slice(1);
  const size = kind === "f4" ? 4 : kind === "f8" ? 8 : kind === "f2" ? 2 : 0;
  if (!size || (!little && descr[0] !== ">")) throw new NpyError(`dtype '${descr}' is not supported; use float32 or float64`);
  const body = start + headerLen;
  if (bytes.length - body < count * size) throw new NpyError(`data holds ${bytes.length - body} bytes; shape (${shape.join(", ")}) of ${descr} needs ${count * size}`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = body + i * size;
    data[i] = size === 4 ? view.getFloat32(at, little) : size === 8 ? view.getFloat64(at, little) : halfToFloat(view.getUint16(at, little));
  }
  return { shape, data };
}

/** The arrays of an `.npz`, by name (without `.npy`). */
export async function readNpz(bytes: Uint8Array): Promise<Map<string, NpyArray>> {
  let entries: Map<string, Uint8Array>;
  try {
    entries = await readEntries(bytes, "npz", MAX_NPZ_BYTES);
  } catch (e) {
    throw new NpyError(`not a readable .npz: ${(e as Error).message}`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, data] of entries) if (name.endsWith(".npy")) out.set(name.slice(0, -4), readNpy(data));
  return out;
}

/** One array from an `.npy`, or the array `name` of an `.npz` (the only one if it holds a single array). */
export async function readLatentFile(bytes: Uint8Array, name = "w"): Promise<NpyArray> {
  if (isNpy(bytes)) return readNpy(bytes);
  if (!isZip(bytes)) throw new NpyError("expected an .npz (zip) or .npy file");
  const arrays = await readNpz(bytes);
  const found = arrays.get(name) ?? (arrays.size === 1 ? [...arrays.values()][0] : undefined);
  if (!found) throw new NpyError(`the .npz has no array '${name}' (it has: ${[...arrays.keys()].join(", ") || "none"})`);
  return found;
}
