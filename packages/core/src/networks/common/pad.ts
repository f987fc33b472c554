/** Spatial padding of NHWC tensors with PyTorch semantics. */
export { reflectionPad2d } from "../ops/eager.ts";
