/**
 * Parity adapters for DCGAN generators (test/fixtures/dcgan, made by scripts/dcgan-fixture.py). A case's `call`
 * is `{seed, sampler}`: the fixture stores the z that `torch.manual_seed(seed); torch.randn(1, *z_shape)` drew as
 * its input, so the adapter runs the generator on that z (the sampler itself is checked bit for bit by the
 * torch-randn fixtures) and returns the NCHW image. The same case runs on TF.js and on the ONNX export.
 */
import * as tf from "@tensorflow/tfjs-core";
import { type RawTensor, toFloat32 } from "../checkpoints/tensor.ts";
import { dcgan as onnxDcgan } from "../inference/engines/onnx.ts";
import { DcganGenerator } from "../networks/dcgan/generator.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

function zOf(kase: ParityCase, io: Map<string, RawTensor>): { z: Float32Array; n: number } {
  const raw = io.get(kase.inputs[0]);
  if (!raw) throw new Error(`dcgan: input ${kase.inputs[0]} is not in io.safetensors`);
  return { z: Float32Array.from(toFloat32(raw)), n: raw.shape[0] };
}

/** NHWC [n, s, s, c] → NCHW, the fixtures' layout. */
function nchw(data: Float32Array, n: number, s: number, c: number): ParityOutput {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (let k = 0; k < c; k++) out[((b * c + k) * s + y) * s + x] = data[((b * s + y) * s + x) * c + k];
  return { shape: [n, c, s, s], data: out };
}

export const dcganAdapter: FamilyAdapter = {
  family: "dcgan",
  async load(config, weights): Promise<CaseRunner> {
    const g = DcganGenerator.fromStateDict(config, weights);
    const { nc, img_size } = g.config;
    return {
      async run(kase, io) {
        const { z, n } = zOf(kase, io);
        const y = g.forward(tf.tensor2d(z, [n, g.nz]));
        try {
          return new Map([[kase.expected, nchw((await y.data()) as Float32Array, n, img_size, nc)]]);
        } finally {
          y.dispose();
        }
      },
      dispose: () => g.dispose(),
    };
  },
};

export const onnxDcganAdapter: FamilyAdapter = {
  family: "dcgan",
  async load(config, weights): Promise<CaseRunner> {
    const e = await onnxDcgan({ config }, weights, 2);
    return {
      async run(kase, io) {
        const { z, n } = zOf(kase, io);
        return new Map([[kase.expected, nchw(await e.forward(z, n), n, e.resolution, e.channels)]]);
      },
      dispose: () => e.dispose(),
    };
  },
};
