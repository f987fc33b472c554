/**
 * Parity adapter for pix2pix/CycleGAN generators. A case `{method: "forward", direction, args: [input]}` runs the
 * generator of that direction on the NCHW input and returns the NCHW output under the case's `expected` name.
 *
 * A fixture stores one generator state_dict (the `netG` it ran) unless its keys carry netG_A./netG_B. prefixes, so
 * a bare dict serves as the generator for whichever direction the case names (built with that direction's
 * channel counts).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { RawTensor, StateDict } from "../checkpoints/tensor.ts";
import { toFloat32 } from "../checkpoints/tensor.ts";
import { parseCycleGANConfig } from "../networks/cyclegan/config.ts";
import { CycleGANGenerator } from "../networks/cyclegan/generator.ts";
import { CycleGANModel, type Direction } from "../networks/cyclegan/model.ts";
import type { CaseRunner, FamilyAdapter, ParityCase, ParityOutput } from "./types.ts";

const isCombined = (sd: StateDict) => [...sd.keys()].some((k) => /^(netG_[AB]|G_[AB])\./.test(k));

export const cycleganAdapter: FamilyAdapter = {
  family: "cyclegan",
  async load(config, weights): Promise<CaseRunner> {
    const cfg = parseCycleGANConfig(config);
    const model = isCombined(weights) ? CycleGANModel.fromStateDicts(cfg, weights) : undefined;
    const single = new Map<Direction, CycleGANGenerator>();
    const generatorFor = (direction: Direction): CycleGANGenerator => {
      if (model) return model.generator(direction);
      let g = single.get(direction);
      if (!g) {
        const channels = direction === "AtoB" ? { in: cfg.input_nc, out: cfg.output_nc } : { in: cfg.output_nc, out: cfg.input_nc };
        g = CycleGANGenerator.fromStateDict(cfg, weights, channels);
        single.set(direction, g);
      }
      return g;
    };
    return {
      async run(kase: ParityCase, io: Map<string, RawTensor>): Promise<Map<string, ParityOutput>> {
        const { method, direction = "AtoB", args } = kase.call as { method: string; direction?: unknown; args?: unknown };
        if (method !== "forward") throw new Error(`cyclegan: unsupported method ${method}`);
        if (direction !== "AtoB" && direction !== "BtoA") throw new Error(`cyclegan: unknown direction ${String(direction)}`);
        const inputName = Array.isArray(args) && typeof args[0] === "string" ? args[0] : kase.inputs[0];
        const raw = io.get(inputName);
        if (!raw) throw new Error(`cyclegan: input ${inputName} is not in io.safetensors`);
        if (raw.shape.length !== 4) throw new Error(`cyclegan: input ${inputName} must be NCHW, got [${raw.shape}]`);
        const g = generatorFor(direction);
        const out = tf.tidy(() => {
          const x = tf.transpose(tf.tensor4d(toFloat32(raw), raw.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;
          return tf.transpose(g.forward(x), [0, 3, 1, 2]);
        });
        try {
          const data = (await out.data()) as Float32Array;
          return new Map([[kase.expected, { shape: [...out.shape], data: Float32Array.from(data) }]]);
        } finally {
          out.dispose();
        }
      },
      dispose() {
        model?.dispose();
        for (const g of single.values()) g.dispose();
      },
    };
  },
};

export default cycleganAdapter;
