/**
 * A CycleGAN pair of generators: G_A maps domain A → B (direction "AtoB"), G_B maps B → A ("BtoA"). Upstream
 * trains them as `netG_A = define_G(input_nc, output_nc, ...)` and `netG_B = define_G(output_nc, input_nc, ...)`
 * and saves them as `latest_net_G_A.pth` / `latest_net_G_B.pth`. A pix2pix or single-direction checkpoint is just
 * G_A. All tensors are NHWC in [-1, 1].
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { StateDict } from "../../checkpoints/tensor.ts";
import { parseCycleGANConfig, sizeConstraints, type CycleGANConfig } from "./config.ts";
import { CycleGANGenerator, type ForwardOptions } from "./generator.ts";

export type Direction = "AtoB" | "BtoA";

export class CycleGANModel {
  readonly sizeMultiple: number;
  readonly minSize: number;

  private constructor(
    readonly config: CycleGANConfig,
    readonly G_A: CycleGANGenerator,
    readonly G_B?: CycleGANGenerator,
  ) {
    ({ sizeMultiple: this.sizeMultiple, minSize: this.minSize } = sizeConstraints(config.netG));
  }

  /**
   * `dicts` is either `{G_A, G_B?}` (one state_dict per generator file), or a single state_dict that holds both
   * under `netG_A.` / `netG_B.` (or `G_A.` / `G_B.`) prefixes, or a single bare generator state_dict (taken as G_A).
   */
  static fromStateDicts(config: unknown, dicts: { G_A: StateDict; G_B?: StateDict } | StateDict): CycleGANModel {
    const cfg = parseCycleGANConfig(config);
    const { G_A, G_B } = dicts instanceof Map ? splitCombined(dicts) : dicts;
    const a = CycleGANGenerator.fromStateDict(cfg, G_A, { in: cfg.input_nc, out: cfg.output_nc }, "G_A");
    try {
      const b = G_B ? CycleGANGenerator.fromStateDict(cfg, G_B, { in: cfg.output_nc, out: cfg.input_nc }, "G_B") : undefined;
      return new CycleGANModel(cfg, a, b);
    } catch (e) {
      a.dispose();
      throw e;
    }
  }

  /** Both generators freshly initialised like upstream (`init_type='normal'`, std `init_gain`, default 0.02). */
  static randomInit(config: unknown, seed: number): CycleGANModel {
    const cfg = parseCycleGANConfig(config);
    const a = CycleGANGenerator.randomInit(cfg, seed, { in: cfg.input_nc, out: cfg.output_nc });
    const b = CycleGANGenerator.randomInit(cfg, seed + 1, { in: cfg.output_nc, out: cfg.input_nc });
    return new CycleGANModel(cfg, a, b);
  }

  directions(): Direction[] {
    return this.G_B ? ["AtoB", "BtoA"] : ["AtoB"];
  }

  generator(direction: Direction): CycleGANGenerator {
    if (direction === "AtoB") return this.G_A;
    if (!this.G_B) throw new Error("this model has no G_B (only a G_A checkpoint was loaded), so BtoA is unavailable");
    return this.G_B;
  }

  /** NHWC in [-1, 1] → NHWC in [-1, 1]; the caller disposes the result. */
  translate(x: tf.Tensor4D, direction: Direction = "AtoB", opts?: ForwardOptions): tf.Tensor4D {
    return this.generator(direction).forward(x, opts);
  }

  /** Official state_dicts, one per generator, as `latest_net_G_A.pth` / `latest_net_G_B.pth` would hold them. */
  stateDicts(): { G_A: StateDict; G_B?: StateDict } {
    return { G_A: this.G_A.stateDict(), ...(this.G_B ? { G_B: this.G_B.stateDict() } : {}) };
  }

  /** Trainable parameters, named `G_A.<official name>` / `G_B.<official name>`. */
  trainableVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [tag, g] of [["G_A", this.G_A], ["G_B", this.G_B]] as const)
      if (g) for (const [n, v] of g.trainableVariables()) out.set(`${tag}.${n}`, v);
    return out;
  }

  dispose(): void {
    this.G_A.dispose();
    this.G_B?.dispose();
  }
}

const PREFIXES = { G_A: ["netG_A.", "G_A."], G_B: ["netG_B.", "G_B."] } as const;
const DISCRIMINATOR_PREFIXES = ["netD_A.", "netD_B.", "D_A.", "D_B."];

function splitCombined(sd: StateDict): { G_A: StateDict; G_B?: StateDict } {
  const pick = (prefixes: readonly string[]) => {
    const out: StateDict = new Map();
    for (const [k, v] of sd) {
      const p = prefixes.find((q) => k.startsWith(q));
      if (p) out.set(k.slice(p.length), v);
    }
    return out;
  };
  const a = pick(PREFIXES.G_A);
  const b = pick(PREFIXES.G_B);
  if (a.size === 0) return { G_A: sd };
  // Discriminators are not needed to translate; anything else unclaimed means the dict is not what we think.
  const stray = [...sd.keys()].filter((k) => ![...PREFIXES.G_A, ...PREFIXES.G_B, ...DISCRIMINATOR_PREFIXES].some((p) => k.startsWith(p)));
  if (stray.length) throw new Error(`combined CycleGAN state_dict has key(s) outside netG_A./netG_B.: ${stray.slice(0, 5).join(", ")}`);
  return b.size ? { G_A: a, G_B: b } : { G_A: a };
}
