/**
 * Parity adapter for NVlabs SPADE. Methods (upstream names):
 * - "Pix2PixModel.preprocess_input": (label, instance) → semantics, exact.
 * - "forward": semantics → image (`call.z` may name a latent in io for use_vae models; otherwise `call.seed`).
 * - "preprocess_input+forward": (label, instance) → image, plus the `semantics` intermediate.
 * Inputs and outputs are NCHW as stored; the network runs NHWC.
 *
 * Weights: the full state dict (spectral convs as weight_orig/u/v), or one where spectral convs are resolved
 * (`<layer>.weight` + `<layer>.sigma`, as `weights_resolved.safetensors`). The resolved file holds only the
 * spectral convs, so it must be overlaid on the full dict first (`overlayResolved`, networks/common/spectral-norm.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { RawTensor } from "../checkpoints/tensor.ts";
import { toFloat32 } from "../checkpoints/tensor.ts";
import { parseSpadeConfig, type SpadeConfig } from "../networks/spade/config.ts";
import { holdsOnlyResolvedSpectral, SpadeGenerator } from "../networks/spade/generator.ts";
import { buildSemantics, type IdMap } from "../networks/spade/preprocess.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

/** The fixtures' resolved spectral convs overlaid on the full state dict (defined with spectral norm). */

const nchwToNhwc = (raw: RawTensor) =>
  tf.transpose(tf.tensor4d(toFloat32(raw), raw.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;

/** NHWC host array → NCHW ParityOutput. */
function nhwcToNchw(data: Float32Array, [n, h, w, c]: readonly number[]): ParityOutput {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const src = ((b * h + y) * w + x) * c;
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = data[src + k];
      }
  return { shape: [n, c, h, w], data: out };
}

async function runGenerator(g: SpadeGenerator, semantics: tf.Tensor4D, kase: ParityCase, io: Map<string, RawTensor>): Promise<ParityOutput> {
  const zName = kase.call.z;
  const zRaw = typeof zName === "string" ? io.get(zName) : undefined;
  if (typeof zName === "string" && !zRaw) throw new Error(`spade: z ${zName} is not in io.safetensors`);
  const z = zRaw ? tf.tensor2d(toFloat32(zRaw), zRaw.shape as [number, number]) : undefined;
  try {
    const y = g.forward(semantics, { z, seed: typeof kase.call.seed === "number" ? kase.call.seed : undefined });
    try {
      return nhwcToNchw((await y.data()) as Float32Array, y.shape);
    } finally {
      y.dispose();
    }
  } finally {
    z?.dispose();
  }
}

function semanticsFromIo(cfg: SpadeConfig, kase: ParityCase, io: Map<string, RawTensor>) {
  const args = Array.isArray(kase.call.args) ? (kase.call.args as unknown[]) : kase.inputs;
  const [labelName, instanceName] = args.map(String);
  const label = io.get(labelName);
  if (!label) throw new Error(`spade: label ${labelName} is not in io.safetensors`);
  const instance = instanceName ? io.get(instanceName) : undefined;
  if (instanceName && !instance) throw new Error(`spade: instance ${instanceName} is not in io.safetensors`);
  const asMap = (t: RawTensor): IdMap => ({ data: t.data as ArrayLike<number | bigint>, shape: t.shape });
  return buildSemantics(cfg, asMap(label), instance && asMap(instance));
}

export const spadeAdapter: FamilyAdapter = {
  family: "spade",
  async load(config, weights): Promise<CaseRunner> {
    const cfg = parseSpadeConfig(config);
    if (holdsOnlyResolvedSpectral(cfg, weights))
      throw new Error("spade: these weights hold only the resolved spectral convs; overlay them on the full state dict (overlayResolved)");
    let g: SpadeGenerator | undefined;
    const generator = () => (g ??= SpadeGenerator.fromStateDict(cfg, weights));
    return {
      async run(kase: ParityCase, io: Map<string, RawTensor>): Promise<Map<string, ParityOutput>> {
        const method = kase.call.method;
        if (method === "Pix2PixModel.preprocess_input") {
          const s = semanticsFromIo(cfg, kase, io);
          return new Map([[kase.expected, nhwcToNchw(s.data, s.shape)]]);
        }
        if (method === "forward") {
          const name = Array.isArray(kase.call.args) ? String(kase.call.args[0]) : kase.inputs[0];
          const raw = io.get(name);
          if (!raw) throw new Error(`spade: input ${name} is not in io.safetensors`);
          if (raw.shape.length !== 4) throw new Error(`spade: ${name} must be NCHW, got [${raw.shape}]`);
          const x = nchwToNhwc(raw);
          try {
            return new Map([[kase.expected, await runGenerator(generator(), x, kase, io)]]);
          } finally {
            x.dispose();
          }
        }
        if (method === "preprocess_input+forward") {
          const s = semanticsFromIo(cfg, kase, io);
          const x = tf.tensor4d(s.data, s.shape);
          try {
            const out = new Map([[kase.expected, await runGenerator(generator(), x, kase, io)]]);
            for (const name of kase.intermediates ?? []) if (name === "semantics") out.set(name, nhwcToNchw(s.data, s.shape));
            return out;
          } finally {
            x.dispose();
          }
        }
        throw new Error(`spade: unsupported method ${method}`);
      },
      dispose() {
        g?.dispose();
      },
    };
  },
};

export default spadeAdapter;
