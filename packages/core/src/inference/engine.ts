/**
 * What serving needs from a loaded generator, independent of the tensor engine behind it (TF.js today;
 * an ONNX Runtime engine implements the same interface). Arrays are plain typed arrays in NHWC order so
 * batching, encoding and the HTTP layer never see engine tensors. Compute may be synchronous (TF.js) or
 * asynchronous (ONNX Runtime's `run()`), so callers await it.
 */

type Out = Float32Array | Promise<Float32Array>;
import type { ModelJson } from "../models/model-json.ts";

export interface NoiseOptions {
  noise_mode: "const" | "random" | "none";
  /** seeds the per-layer noise when noise_mode is random, so the same request gives the same image */
  noiseSeed?: number;
}

export interface StyleGAN2Engine {
  family: "stylegan2";
  zDim: number;
  cDim: number;
  numWs: number;
  wDim: number;
  resolution: number;
  /** z [n, zDim], c [n, cDim] or null → ws [n, numWs, wDim] */
  mapping(z: Float32Array, c: Float32Array | null, n: number, opts: { truncation_psi: number; truncation_cutoff?: number }): Out;
  /** ws [n, numWs, wDim] → image NHWC [n, res, res, 3] in the generator's raw scale (~[-1, 1]) */
  synthesis(ws: Float32Array, n: number, noise: NoiseOptions): Out;
  dispose(): void;
}

export interface CycleGANEngine {
  family: "cyclegan";
  /** H and W must be multiples of this */
  sizeMultiple: number;
  /** the square size the network was trained at (load_size for preprocess=resize) */
  trainSize: number;
  /** x NHWC [n, h, w, 3] in [-1, 1] → same shape in [-1, 1] */
  forward(direction: "AtoB" | "BtoA", x: Float32Array, n: number, h: number, w: number): Out;
  dispose(): void;
}

export interface SpadeEngine {
  family: "spade";
  labelNc: number;
  containDontcare: boolean;
  useInstance: boolean;
  useVae: boolean;
  height: number;
  width: number;
  /**
   * label [n, h, w] class ids (and instance ids) at the model's size → image NHWC [n, h, w, 3] in [-1, 1].
   * Throws ApiError invalid_label_map for out-of-range ids.
   */
  forward(label: Int32Array, instance: Int32Array | null, n: number, opts: { seed: number; style?: Float32Array }): Out;
  dispose(): void;
}

export interface DcganEngine {
  family: "dcgan";
  /** values in one z (nz); the network's z shape is [nz] or [nz, 1, 1], the same values either way */
  zDim: number;
  zShape: number[];
  /** 1 (grayscale) or 3 (RGB) */
  channels: 1 | 3;
  resolution: number;
  /** what a seed means unless the request says otherwise (config seed_rng; DCGAN imports: torch) */
  seedRng: "torch" | "numpy";
  /** z [n, zDim] → image NHWC [n, res, res, channels] in the generator's range (Tanh: [-1, 1]) */
  forward(z: Float32Array, n: number): Out;
  dispose(): void;
}

export type Engine = StyleGAN2Engine | CycleGANEngine | SpadeEngine | DcganEngine;

export interface EngineFactory {
  name: string;
  /** Build a serving engine from a version record and its verified safetensors bytes. */
  load(record: ModelJson, weights: Uint8Array): Promise<Engine>;
  /** Waits for work a load left running (copies of compiled graphs to the model store): before a process exits. */
  flush?(): Promise<void>;
}
