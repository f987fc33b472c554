/**
 * The ONNX export of every family, each its own network run against the graph builder (docs/design/networks.md):
 * a family config + native state dict (official names, the layout of `weights.safetensors`
 * for one generator) → ONNX model bytes, one graph per entry. NHWC float32 I/O with a dynamic batch dimension.
 */
import type { StateDict } from "../checkpoints/tensor.ts";
import type { ModelFamily } from "../families.ts";
import { exportStyleGAN2Mapping, exportStyleGAN2Synthesis, type SynthesisNoise } from "./stylegan2/generator.ts";
import { exportCycleGAN, type CycleGANExportOptions } from "./cyclegan/generator.ts";
import { exportSpade } from "./spade/generator.ts";
import { exportDcgan } from "./dcgan/generator.ts";

export { exportCycleGAN, exportDcgan, exportSpade, exportStyleGAN2Mapping, exportStyleGAN2Synthesis };
export type { CycleGANExportOptions, SynthesisNoise };

/**
 * All graphs of one generator: stylegan2 → mapping, synthesis_const, synthesis_none, synthesis_random;
 * cyclegan → generator (one direction's state dict; see exportCycleGAN for G_B's channels); spade, dcgan → generator.
 */
export function exportOnnx(family: ModelFamily, config: unknown, sd: StateDict): Record<string, Uint8Array> {
  switch (family) {
    case "stylegan2":
      return {
        mapping: exportStyleGAN2Mapping(config, sd),
        synthesis_const: exportStyleGAN2Synthesis(config, sd, "const"),
        synthesis_none: exportStyleGAN2Synthesis(config, sd, "none"),
        synthesis_random: exportStyleGAN2Synthesis(config, sd, "random"),
      };
    case "cyclegan":
      return { generator: exportCycleGAN(config, sd) };
    case "spade":
      return { generator: exportSpade(config, sd) };
    case "dcgan":
      return { generator: exportDcgan(config, sd) };
  }
}
