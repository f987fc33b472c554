/**
 * A framework-free tensor as it sits in a checkpoint file: official (PyTorch) layout, row-major.
 * Importers produce these; networks turn them into TF.js tensors (and transpose) when they load.
 */
export type DType = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** Floating dtypes (F16, BF16, F64) are read as F32 with a Float32Array; I64 stays BigInt64Array; the rest use their typed array. */
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
}

/** Official state_dict: parameter and buffer names exactly as upstream PyTorch writes them. */
export type StateDict = Map<string, RawTensor>;

export class CheckpointError extends Error {
  override name = "CheckpointError";
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Float view of a tensor; integer tensors (num_batches_tracked) are converted. */
export function toFloat32(t: RawTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}
