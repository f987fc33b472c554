export { RandomState, seedToZ } from "./randomstate.ts";
export { TorchGenerator, torchSeedToZ } from "./torch-randn.ts";
