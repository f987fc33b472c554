/**
 * TF.js pix2pix/CycleGAN generators (junyanz/pytorch-CycleGAN-and-pix2pix `define_G`): ResnetGenerator
 * (resnet_6blocks, resnet_9blocks) and UnetGenerator (unet_128, unet_256), with instance, batch or no norm.
 * Public tensors are NHWC float32 in [-1, 1]; checkpoints use the official names and NCHW-era layouts.
 */
export { CycleGANConfigSchema, NET_G, parseCycleGANConfig, sizeConstraints, type CycleGANConfig, type CycleGANConfigInput, type NetG, type SizeConstraints } from "./config.ts";
export { CycleGANGenerator, type ForwardOptions } from "./generator.ts";
export { CycleGANModel, type Direction } from "./model.ts";
export { inferCycleGANConfig, type InferredCycleGANConfig } from "./infer.ts";
