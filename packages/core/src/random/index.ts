import { seedToZ } from "./randomstate.ts";
import { torchSeedToZ } from "./torch-randn.ts";

export { RandomState, seedToZ } from "./randomstate.ts";
export { TorchGenerator, torchSeedToZ } from "./torch-randn.ts";

/**
 * z for a seed with the named sampler: `torch` is `torch.manual_seed(seed); torch.randn(1, zDim)` (the tutorials'
 * DCGANs), `numpy` is `np.random.RandomState(seed).randn(1, zDim)` (StyleGAN2's generate.py). Both float32.
 */
export function samplerZ(rng: "torch" | "numpy", seed: number, zDim: number): Float32Array {
  return rng === "torch" ? torchSeedToZ(seed, zDim) : seedToZ(seed, zDim);
}
