/**
 * Parity adapter for stylegan2-ada-pytorch fixtures. Calls (upstream argument names):
 *   forward            inputs [z]        → img (NCHW) + ws intermediates
 *   mapping            inputs [z]        → ws
 *   synthesis          inputs [ws]       → img
 *   mapping+synthesis  inputs [z, z_mix] → img + mixed ws (ws[:, mixing_cutoff:] from z_mix)
 * The class label, for conditional models, is the io tensor `c` when present, else `call.c` (indices), else
 * the fixtures' documented rule: one-hot of [1, 3][i % 2] % c_dim for row i.
 */
import * as tf from "@tensorflow/tfjs-core";
import { toFloat32, type RawTensor, type StateDict } from "../checkpoints/tensor.ts";
import { StyleGAN2Generator } from "../networks/stylegan2/generator.ts";
import type { NoiseMode } from "../networks/stylegan2/layers.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

const NOISE_MODES = new Set<NoiseMode>(["const", "random", "none"]);

function input(io: Map<string, RawTensor>, name: string | undefined, what: string): tf.Tensor {
  const t = name !== undefined ? io.get(name) : undefined;
  if (!t) throw new Error(`stylegan2 parity: ${what} tensor ${String(name)} missing from io`);
  return tf.tensor(toFloat32(t), t.shape, "float32");
}

async function out(t: tf.Tensor): Promise<ParityOutput> {
  return { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) };
}

function classLabels(g: StyleGAN2Generator, kase: ParityCase, io: Map<string, RawTensor>, n: number): tf.Tensor2D | null {
  const cDim = g.config.c_dim;
  if (cDim === 0) return null;
  if (io.has("c")) return input(io, "c", "class label") as tf.Tensor2D;
  const fromCall = kase.call.c;
  const indices =
    typeof fromCall === "number"
      ? Array<number>(n).fill(fromCall)
      : Array.isArray(fromCall)
        ? (fromCall as number[])
        : Array.from({ length: n }, (_, i) => [1, 3][i % 2] % cDim);
  return g.classLabels(indices);
}

export const stylegan2Adapter: FamilyAdapter = {
  family: "stylegan2",
  async load(config: Record<string, unknown>, weights: StateDict): Promise<CaseRunner> {
    const g = StyleGAN2Generator.fromStateDict(config, weights);
    return {
      async run(kase, io) {
        const call = kase.call;
        const psi = typeof call.truncation_psi === "number" ? call.truncation_psi : 1;
        const cutoff = typeof call.truncation_cutoff === "number" ? call.truncation_cutoff : null;
        const noiseMode = (call.noise_mode ?? "const") as NoiseMode;
        if (!NOISE_MODES.has(noiseMode)) throw new Error(`stylegan2 parity: unknown noise_mode ${String(call.noise_mode)}`);
        const trunc = { truncation_psi: psi, truncation_cutoff: cutoff };
        const synth = { noise_mode: noiseMode, noiseSeed: 0 };
        const toNCHW = (img: tf.Tensor4D) => tf.transpose(img, [0, 3, 1, 2]);

        const results = new Map<string, ParityOutput>();
        const keep = new Map<string, tf.Tensor>();
        tf.tidy(() => {
          const put = (name: string | undefined, t: tf.Tensor) => {
            if (name !== undefined) keep.set(name, tf.keep(t));
          };
          const wsNames = (kase.intermediates ?? []).filter((n) => n.startsWith("ws"));
          switch (call.method) {
            case "forward":
            case "mapping": {
              const z = input(io, kase.inputs[0], "z") as tf.Tensor2D;
              const ws = g.mapping(z, classLabels(g, kase, io, z.shape[0]), trunc);
              if (call.method === "mapping") put(kase.expected, ws);
              else {
                put(kase.expected, toNCHW(g.synthesis(ws, synth)));
                for (const n of wsNames) put(n, ws);
              }
              break;
            }
            case "synthesis": {
              const ws = input(io, kase.inputs[0], "ws") as tf.Tensor3D;
              put(kase.expected, toNCHW(g.synthesis(ws, synth)));
              break;
            }
            case "mapping+synthesis": {
              const cut = call.mixing_cutoff;
              if (typeof cut !== "number") throw new Error("stylegan2 parity: mapping+synthesis needs call.mixing_cutoff");
              const z = input(io, kase.inputs[0], "z") as tf.Tensor2D;
              const zMix = input(io, kase.inputs[1], "z_mix") as tf.Tensor2D;
              const c = classLabels(g, kase, io, z.shape[0]);
              const ws = StyleGAN2Generator.mixStyles(g.mapping(z, c, trunc), g.mapping(zMix, c, trunc), cut);
              put(kase.expected, toNCHW(g.synthesis(ws, synth)));
              for (const n of wsNames) put(n, ws);
              break;
            }
            default:
              throw new Error(`stylegan2 parity: unsupported method ${call.method}`);
          }
        });
        try {
          for (const [name, t] of keep) results.set(name, await out(t));
        } finally {
          for (const t of keep.values()) t.dispose();
        }
        return results;
      },
      dispose() {
        g.dispose();
      },
    };
  },
};

export default stylegan2Adapter;
