export { StyleGAN2Config, MappingKwargs, SynthesisKwargs, derive, parseConfig, type StyleGAN2ConfigInput, type Derived } from "./config.ts";
export {
  StyleGAN2Generator,
  exportStyleGAN2Mapping,
  exportStyleGAN2Synthesis,
  synthesisLayout,
  type GenerateOptions,
  type SynthesisNoise,
  type SynthesisRunOptions,
} from "./generator.ts";
export { MappingNetwork, mappingKeys, type TruncationOptions } from "./mapping.ts";
export { SynthesisNetwork, SynthesisBlock, synthesisKeys, type Architecture } from "./synthesis.ts";
export { FullyConnectedLayer, SynthesisLayer, ToRGBLayer, Conv2dLayer, isNoiseConstKey, type NoiseMode } from "./layers.ts";
