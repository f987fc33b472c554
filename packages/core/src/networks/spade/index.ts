export { parseSpadeConfig, pyRound, SpadeConfigError, SpadeConfigInput, NUM_UPSAMPLING, type SpadeConfig } from "./config.ts";
export { buildSemantics, instanceEdges, LabelMapError, semanticsTensor, validateLabels, type IdMap, type Semantics, type SemanticsOptions } from "./preprocess.ts";
export { generatorBlocks, generatorSpectralLayers, SpadeGenerator, type SpadeForwardOptions } from "./generator.ts";
export { SpadeEncoder } from "./encoder.ts";
export { resolveSpectralNorm, readSpectralState, spectralSigma, canonicalizeSpectral } from "../common/spectral-norm.ts";
