/** The small SPADE training setup both SPADE trainer test files use (wasm and the slow cpu comparison). */
import type { StateDict } from "../../src/checkpoints/tensor.ts";
import { SpadeGenerator } from "../../src/networks/spade/index.ts";
import { syntheticScene } from "../../src/training/spade/synthetic.ts";
import type { TrainerInit } from "../../src/training/types.ts";

export const CONFIG = { label_nc: 4, ngf: 2, crop_size: 64, spade_nhidden: 16 };

export function makeInit(opts: Record<string, unknown> = {}, over: Partial<TrainerInit["options"]> = {}): TrainerInit {
  const g = SpadeGenerator.randomInit(CONFIG, 5);
  const weights = g.stateDict();
  g.dispose();
  const scenes = [0, 1, 2].map((i) => syntheticScene(i));
  return {
    config: CONFIG,
    weights,
    data: { family: "spade", images: scenes.map((s) => s.image), labels: scenes.map((s) => s.labels) },
    options: { steps: 8, batch_size: 1, learning_rate: 2e-4, seed: 7, options: { ndf: 8, ...opts }, ...over },
  };
}

export const flat = (sd: StateDict) => new Map([...sd].map(([k, v]) => [k, Array.from(v.data as Float32Array, Number)]));

export async function timedSteps(t: { trainStep(): Promise<{ losses: Record<string, number> }> }, n: number) {
  const losses: Record<string, number>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) losses.push((await t.trainStep()).losses);
  return { losses, secondsPerStep: (performance.now() - t0) / 1000 / n };
}
