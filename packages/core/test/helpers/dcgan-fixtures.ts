/** The DCGAN fixtures of test/fixtures/dcgan (scripts/dcgan-fixture.py): manifests, weights, and what a user passes. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadCheckpoint, readSafetensors, type StateDict } from "../../src/checkpoints/index.ts";
import { dcganDir } from "../../../../test/fixtures/index.ts";

export interface DcganManifest {
  model: string;
  config: { layout: string; z_shape: number[]; nc: number; img_size: number; layers: unknown[] };
  weights: Record<string, unknown>;
  cases: { name: string; call: { seed: number }; inputs: string[]; expected: string; atol: number; rtol: number }[];
}

export const DCGAN_MODELS = ["fc_deconv_nz100_rgb64", "main_nz100_rgb64", "main_nz100_gray32", "mlp_nz100_gray28", "mlp_bn_lrelu_gray28", "sequential_mlp_gray28"];
export const DCGAN_FORMATS = ["safetensors", "pth", "pth_legacy", "module"] as const;

export const dcganManifest = (m: string) => JSON.parse(readFileSync(path.join(dcganDir, m, "manifest.json"), "utf8")) as DcganManifest;

export async function loadDcgan(model: string, format: (typeof DCGAN_FORMATS)[number] = "safetensors"): Promise<StateDict> {
  const file = dcganManifest(model).weights[format] as string;
  return (await loadCheckpoint(new Uint8Array(readFileSync(path.join(dcganDir, model, file))), file)).stateDict;
}

/** Inputs and expected outputs of a fixture model, by tensor name. */
export function dcganIO(model: string): StateDict {
  return readSafetensors(new Uint8Array(readFileSync(path.join(dcganDir, model, "io.safetensors"))), "io.safetensors").tensors;
}

/** What an MLP's activation and BatchNorm eps were (not in a state_dict), as a user would pass them. */
export const DCGAN_MLP_HINTS: Record<string, Record<string, unknown>> = {
  mlp_nz100_gray28: { hidden_act: "relu" },
  mlp_bn_lrelu_gray28: { hidden_act: "leaky_relu", leaky_slope: 0.2, bn_eps: 0.8 },
  sequential_mlp_gray28: { hidden_act: "relu" },
};
