/**
 * StyleGAN2 inputs: seeds and class labels turned into z/c latents, and latents turned into ws by the mapping
 * network. This is where style mixing and interpolation happen (both operate on ws), so the service only has
 * to batch and synthesize.
 */
import { MAX_LATENTS } from "../api/inference.ts";
import { ApiError } from "../errors.ts";
import { wsFromNpz, wsFromW, wsFromWs } from "../latents/codec.ts";
import { applyEdits, type ResolvedEdit } from "./directions.ts";
import { samplerZ } from "../random/index.ts";
import type { StyleGAN2Engine } from "./engine.ts";
import { expandLayers, expandSeeds, type GenerateParams } from "./params.ts";

/** What a generate request asks of the mapping network: mapped inside the batch, all items of a pass at once. */
export interface Latents {
  z: Float32Array;
  c: Float32Array | null;
  truncation: { truncation_psi: number; truncation_cutoff?: number };
  /** style mixing: the ws of these latents replace `layers` */
  mix?: { z: Float32Array; c: Float32Array | null; layers: number[] };
}

/**
 * n images, from ws already computed (interpolation, w inputs) or from latents to map; `edits` move the ws
 * along directions after mapping, and `onWs` receives the ws synthesis gets (return_latents).
 */
export type SynthesisItem = { n: number; edits?: ResolvedEdit[]; onWs?: (ws: Float32Array) => void } & ({ ws: Float32Array } | { latents: Latents });

/**
 * One z per seed (the official seed → z derivation, numpy's RandomState, unless `rng` names torch's) and a
 * one-hot c when the model is class-conditional.
 */
export function styleGanInputs(engine: StyleGAN2Engine, seeds: number[], classIdx: number | undefined, rng: "torch" | "numpy" = "numpy") {
  const n = seeds.length;
  const z = new Float32Array(n * engine.zDim);
  for (const [i, s] of seeds.entries()) z.set(samplerZ(rng, s, engine.zDim), i * engine.zDim);
  let c: Float32Array | null = null;
  if (engine.cDim > 0) {
    if (classIdx === undefined) throw new ApiError("validation_failed", `class_idx: required, the model is conditional on ${engine.cDim} classes`);
    if (classIdx >= engine.cDim) throw new ApiError("validation_failed", `class_idx: ${classIdx} is out of range 0..${engine.cDim - 1}`);
    c = new Float32Array(n * engine.cDim);
    for (let i = 0; i < n; i++) c[i * engine.cDim + classIdx] = 1;
  } else if (classIdx !== undefined) {
    throw new ApiError("validation_failed", "class_idx: the model is not class-conditional");
  }
  return { z, c, n };
}

export function checkCutoff(engine: StyleGAN2Engine, cutoff: number | undefined) {
  if (cutoff !== undefined && cutoff > engine.numWs)
    throw new ApiError("validation_failed", `truncation_cutoff: ${cutoff} exceeds num_ws ${engine.numWs}`);
}

/** `frames` ws evenly spaced between the two rows of `ends` (each numWs × wDim). */
export function interpolateWs(engine: StyleGAN2Engine, ends: Float32Array, frames: number): Float32Array {
  const row = engine.numWs * engine.wDim;
  const ws = new Float32Array(frames * row);
  // Linear in w: the intermediate latent space is where StyleGAN's interpolations look smooth.
  for (let f = 0; f < frames; f++) {
    const t = f / (frames - 1);
    for (let k = 0; k < row; k++) ws[f * row + k] = ends[k] + (ends[row + k] - ends[k]) * t;
  }
  return ws;
}

/** Each item's ws: given ones as they are; latents mapped in one run per distinct truncation. */
export async function mapAll(engine: StyleGAN2Engine, items: SynthesisItem[]): Promise<Float32Array[]> {
  const out = items.map((it) => ("ws" in it ? it.ws : null));
  const groups = new Map<string, { i: number; l: Latents; n: number }[]>();
  items.forEach((it, i) => {
    if (!("latents" in it)) return;
    const k = JSON.stringify(it.latents.truncation);
    groups.set(k, [...(groups.get(k) ?? []), { i, l: it.latents, n: it.n }]);
  });
  const row = engine.numWs * engine.wDim;
  for (const members of groups.values()) {
    // Rows: every member's own latents, then every member's style-mix latents.
    const rows = [...members.map((m) => ({ z: m.l.z, c: m.l.c, n: m.n })), ...members.flatMap((m) => (m.l.mix ? [{ z: m.l.mix.z, c: m.l.mix.c, n: m.n }] : []))];
    const count = rows.reduce((a, r) => a + r.n, 0);
    const z = new Float32Array(count * engine.zDim);
    const c = engine.cDim > 0 ? new Float32Array(count * engine.cDim) : null;
    let at = 0;
    for (const r of rows) {
      z.set(r.z, at * engine.zDim);
      if (c && r.c) c.set(r.c, at * engine.cDim);
      at += r.n;
    }
    const ws = await engine.mapping(z, c, count, members[0].l.truncation);
    let own = 0;
    let mixed = members.reduce((a, m) => a + m.n, 0);
    for (const { i, l, n } of members) {
      const w = ws.slice(own * row, (own + n) * row);
      own += n;
      if (l.mix) {
        for (let k = 0; k < n; k++)
          for (const layer of l.mix.layers) {
            const src = (mixed + k) * row + layer * engine.wDim;
            w.set(ws.subarray(src, src + engine.wDim), k * row + layer * engine.wDim);
          }
        mixed += n;
      }
      out[i] = w;
    }
  }
  const shape = { numWs: engine.numWs, wDim: engine.wDim };
  return items.map((it, i) => {
    const ws = applyEdits(out[i]!, shape, it.edits ?? []);
    it.onWs?.(ws);
    return ws;
  });
}

/** What a generate request synthesizes: n images from seeds (mapped in the batch) or from given w's. */
export interface RequestLatents {
  n: number;
  item: SynthesisItem;
  /** the seeds, when the request gave seeds */
  seeds?: number[];
}

/**
 * A generate request's input: exactly one of seeds, w, ws and projected_w. Given w's are used as they are
 * (they are already what synthesis takes), so truncation and class apply to seeds only and style mixing, which
 * mixes mapped seeds, needs seeds.
 */
export async function requestLatents(engine: StyleGAN2Engine, p: GenerateParams): Promise<RequestLatents> {
  if (p.z !== undefined)
    throw new ApiError("unsupported_parameter", "z: a StyleGAN2 generate takes seeds, w, ws or projected_w; z given directly is for DCGAN models", { field: "z" });
  const given = (["seeds", "w", "ws", "projected_w"] as const).filter((k) => p[k] !== undefined);
  if (given.length !== 1)
    throw new ApiError("validation_failed", `give exactly one of seeds, w, ws and projected_w (got ${given.length ? given.join(", ") : "none"})`, { fields: given });
  const shape = { numWs: engine.numWs, wDim: engine.wDim };
  if (p.seeds === undefined) {
    if (p.style_mix) throw new ApiError("unsupported_parameter", "style_mix: mixes the ws of seeds; with w inputs, send the mixed ws instead", { field: "style_mix" });
    const ws = p.w ? wsFromW(shape, p.w) : p.ws ? wsFromWs(shape, p.ws) : (await wsFromNpz(shape, p.projected_w!, MAX_LATENTS)).ws;
    const n = ws.length / (shape.numWs * shape.wDim);
    return { n, item: { n, ws } };
  }
  const seeds = expandSeeds(p.seeds);
  checkCutoff(engine, p.truncation_cutoff);
  const { z, c, n } = styleGanInputs(engine, seeds, p.class_idx, p.seed_rng);
  const latents: Latents = { z, c, truncation: { truncation_psi: p.truncation_psi, truncation_cutoff: p.truncation_cutoff } };
  if (p.style_mix) {
    const mixSeeds = expandSeeds(p.style_mix.seeds, "style_mix.seeds");
    if (mixSeeds.length !== 1 && mixSeeds.length !== n) throw new ApiError("validation_failed", `style_mix.seeds: give one seed or one per image (${n})`);
    const layers = expandLayers(p.style_mix.layers);
    const bad = layers.find((l) => l >= engine.numWs);
    if (bad !== undefined) throw new ApiError("validation_failed", `style_mix.layers: ${bad} is out of range 0..${engine.numWs - 1}`);
    const mix = styleGanInputs(engine, mixSeeds.length === 1 ? seeds.map(() => mixSeeds[0]) : mixSeeds, p.class_idx, p.seed_rng);
    latents.mix = { z: mix.z, c: mix.c, layers };
  }
  return { n, seeds, item: { n, latents } };
}
