/**
 * DCGAN inputs: a generate request's seeds or z turned into z [n, zDim]. A seed means what the model's notebook
 * meant by it: `torch.manual_seed(seed); torch.randn(1, *z_shape)` for a DCGAN import (the model's seed_rng), or
 * numpy's RandomState when the request says `seed_rng: "numpy"`. z of any shape [nz] or [nz, 1, 1] holds the same
 * nz values, so z given directly is one flat vector of zDim per image.
 */
import { ApiError } from "../errors.ts";
import { zFromRequest } from "../latents/codec.ts";
import { samplerZ } from "../random/index.ts";
import type { DcganEngine } from "./engine.ts";
import { expandSeeds, type GenerateParams } from "./params.ts";

export function dcganLatents(engine: Pick<DcganEngine, "zDim" | "zShape" | "seedRng">, p: GenerateParams): { n: number; z: Float32Array; seeds?: number[] } {
  const given = (["seeds", "z"] as const).filter((k) => p[k] !== undefined);
  if (given.length !== 1) throw new ApiError("validation_failed", `give exactly one of seeds and z (got ${given.length ? given.join(", ") : "none"})`, { fields: given });
  if (p.z) {
    const z = zFromRequest(engine.zDim, engine.zShape, p.z);
    return { n: p.z.length, z };
  }
  const seeds = expandSeeds(p.seeds!);
  const rng = p.seed_rng ?? engine.seedRng;
  const z = new Float32Array(seeds.length * engine.zDim);
  for (const [i, s] of seeds.entries()) z.set(samplerZ(rng, s, engine.zDim), i * engine.zDim);
  return { n: seeds.length, z, seeds };
}
