/**
 * Latents on the wire: w [w_dim] and ws [num_ws, w_dim] as base64 of little-endian float32 or as JSON numbers,
 * checked against the model (shape, finite values) before any work. A wrong shape is 422 naming the shape
 * the model expects, so a client can fix the request without reading the model's config.
 */
import { ApiError } from "../errors.ts";
import { NpyError, readLatentFile } from "./npy.ts";

export interface LatentShape {
  numWs: number;
  wDim: number;
}

type Vector = number[] | string;

export const latentError = (field: string, message: string, expected: (number | string)[], got?: number[]) =>
  new ApiError("unprocessable", `${field}: ${message}; this model takes shape [${expected.join(", ")}]`, {
    field,
    reason: "bad_latent",
    expected_shape: expected,
    ...(got ? { shape: got } : {}),
  });

/** base64 → float32 values (little-endian), or undefined when the bytes are not a whole number of floats. */
function fromBase64(text: string): Float32Array | undefined {
  const bytes = Buffer.from(text, "base64");
  if (bytes.length % 4 !== 0) return undefined;
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

export function toBase64(values: Float32Array): string {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i], i * 4);
  return buf.toString("base64");
}

function checkFinite(field: string, values: Float32Array, expected: number[]) {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw latentError(field, `value ${bad} is not finite`, expected);
}

/** One vector of `length` floats, JSON or base64. */
function vector(field: string, v: Vector, length: number, expected: number[]): Float32Array {
  const values = typeof v === "string" ? fromBase64(v) : Float32Array.from(v);
  if (!values) throw latentError(field, "base64 must hold whole little-endian float32 values", expected);
  if (values.length !== length) throw latentError(field, `has ${values.length} values, expected ${length}`, expected, [values.length]);
  checkFinite(field, values, expected);
  return values;
}

/** `z` of a request (DCGAN): one z [zDim] per image → z [n, zDim]; a wrong length is 422 naming `shape`. */
export function zFromRequest(zDim: number, shape: number[], z: Vector[]): Float32Array {
  const out = new Float32Array(z.length * zDim);
  for (const [i, v] of z.entries()) out.set(vector(`z[${i}]`, v, zDim, shape), i * zDim);
  return out;
}

/** `w` of a request: each w broadcast to every layer → ws [n, numWs, wDim]. */
export function wsFromW(shape: LatentShape, w: Vector[]): Float32Array {
  const row = shape.numWs * shape.wDim;
  const ws = new Float32Array(w.length * row);
  w.forEach((v, i) => {
    const one = vector(`w[${i}]`, v, shape.wDim, [shape.wDim]);
    for (let l = 0; l < shape.numWs; l++) ws.set(one, i * row + l * shape.wDim);
  });
  return ws;
}

/** `ws` of a request: each [numWs, wDim] as nested JSON arrays or one base64 block. */
export function wsFromWs(shape: LatentShape, ws: (number[][] | string)[]): Float32Array {
  const row = shape.numWs * shape.wDim;
  const expected = [shape.numWs, shape.wDim];
  const out = new Float32Array(ws.length * row);
  ws.forEach((v, i) => {
    const field = `ws[${i}]`;
    if (typeof v === "string") out.set(vector(field, v, row, expected), i * row);
    else {
      if (v.length !== shape.numWs) throw latentError(field, `has ${v.length} rows, expected ${shape.numWs}`, expected, [v.length, v[0]?.length ?? 0]);
      for (const [l, r] of v.entries()) out.set(vector(`${field}[${l}]`, r, shape.wDim, expected), i * row + l * shape.wDim);
    }
  });
  return out;
}

/** `projected_w`: a base64 `.npz`/`.npy` whose array is [n, numWs, wDim] (projector.py writes n = 1). */
export async function wsFromNpz(shape: LatentShape, base64: string, maxImages: number): Promise<{ ws: Float32Array; n: number }> {
  const field = "projected_w";
  const expected = ["n", shape.numWs, shape.wDim];
  const fail = (msg: string, got?: number[]) => latentError(field, msg, expected, got);
  let arr: Awaited<ReturnType<typeof readLatentFile>>;
  try {
    arr = await readLatentFile(new Uint8Array(Buffer.from(base64, "base64")), "w");
  } catch (e) {
    if (e instanceof NpyError) throw fail(e.message);
    throw e;
  }
  const [n, numWs, wDim] = arr.shape;
  if (arr.shape.length !== 3 || numWs !== shape.numWs || wDim !== shape.wDim) throw fail(`array 'w' has shape [${arr.shape.join(", ")}]`, arr.shape);
  if (n < 1 || n > maxImages) throw fail(`holds ${n} ws; give 1..${maxImages}`, arr.shape);
  const bad = arr.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw fail(`value ${bad} is not finite`);
  return { ws: arr.data, n };
}

/** Whether every layer of image i holds the same w (then `w` describes it exactly). */
export function layersEqual(ws: Float32Array, i: number, shape: LatentShape): boolean {
  const row = shape.numWs * shape.wDim;
  for (let l = 1; l < shape.numWs; l++)
    for (let j = 0; j < shape.wDim; j++) if (!Object.is(ws[i * row + l * shape.wDim + j], ws[i * row + j])) return false;
  return true;
}

/** The latents an image result carries back (return_latents). */
export function latentOutput(
  ws: Float32Array,
  i: number,
  shape: LatentShape,
  want: "w" | "ws",
  format: "base64" | "json",
): { w?: string | number[]; ws?: string | number[][] } {
  const row = shape.numWs * shape.wDim;
  const mine = ws.subarray(i * row, (i + 1) * row);
  if (want === "w" && layersEqual(ws, i, shape)) {
    const w = mine.subarray(0, shape.wDim);
    return { w: format === "json" ? Array.from(w) : toBase64(w) };
  }
  if (format === "base64") return { ws: toBase64(mine) };
  return { ws: Array.from({ length: shape.numWs }, (_, l) => Array.from(mine.subarray(l * shape.wDim, (l + 1) * shape.wDim))) };
}
