export { StyleGAN2Config, MappingKwargs, SynthesisKwargs, derive, parseConfig, type StyleGAN2ConfigInput, type Derived } from "./config.ts";
export { StyleGAN2Generator, type GenerateOptions, type SynthesisRunOptions } from "./generator.ts";
export { MappingNetwork, type TruncationOptions } from "./mapping.ts";
export { SynthesisNetwork, SynthesisBlock, type Architecture } from "./synthesis.ts";
export { FullyConnectedLayer, SynthesisLayer, ToRGBLayer, Conv2dLayer, modulatedConv2d, type NoiseMode } from "./layers.ts";
