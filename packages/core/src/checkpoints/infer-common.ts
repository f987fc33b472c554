import type { StateDict } from "./tensor.ts";

export interface Inference {
  config: Record<string, unknown>;
  /** Options the weights cannot determine and no hint supplied; a default was used. */
  missing: string[];
  notes: string[];
}

export const shapeOf = (sd: StateDict, key: string): number[] | undefined => sd.get(key)?.shape;
