/**
 * Contract between the parity runner (`npm run parity`) and each family's adapter. A fixture manifest's case
 * names a `call` in upstream terms; the adapter builds the network from the manifest config and a state
 * dict, runs the call on the active backend and returns named outputs in the official NCHW layout so they
 * compare element-wise with the stored `expected` and `intermediates` tensors.
 */
import type { RawTensor, StateDict } from "../checkpoints/tensor.ts";
import type { ModelFamily } from "../families.ts";

export interface ParityCase {
  name: string;
  call: Record<string, unknown> & { method: string };
  inputs: string[];
  expected: string;
  intermediates?: string[];
  atol: number;
  rtol: number;
}

export interface ParityOutput {
  shape: number[];
  data: Float32Array;
}

export interface FamilyAdapter {
  family: ModelFamily;
  /** Build once per (manifest, weights format); the returned runner is called for each case. */
  load(config: Record<string, unknown>, weights: StateDict): Promise<CaseRunner>;
}

export interface CaseRunner {
  /** Must return the `expected` tensor under its name and every listed intermediate it can produce. */
  run(kase: ParityCase, io: Map<string, RawTensor>): Promise<Map<string, ParityOutput>>;
  dispose(): void;
}
