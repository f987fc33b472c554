/**
 * pix2pix/CycleGAN UnetGenerator on NHWC tensors: nested skip blocks, each wrapping a `Sequential` named `model`,
 * so keys nest as `model.model.1.model.3...`. The child block sits at index 1 of the outermost Sequential and at
 * index 3 of a middle one.
 */
import { Conv2d, ConvTranspose2d } from "../common/conv.ts";
import type { NormLayer } from "../common/norm.ts";
import type { Ops } from "../ops/ops.ts";
import { convUsesBias, type CycleGANConfig } from "./config.ts";
import { MODEL, makeNorm } from "./layers.ts";

/** Official names of UnetGenerator's layers: each level's Sequential nests the next one's under `model`. */
export const unetKeys = {
  root: `${MODEL}.${MODEL}`,
  /** Layer j of the Sequential `seq`. */
  layer: (seq: string, j: number) => `${seq}.${j}`,
  /** The child level's Sequential: the outermost block holds it at index 1, the others at 3. */
  child: (seq: string, outermost: boolean) => `${seq}.${outermost ? 1 : 3}.${MODEL}`,
};

type BlockKind = "outermost" | "middle" | "innermost";

class UnetSkipBlock<T, P> {
  readonly downconv: Conv2d<T, P>;
  readonly downnorm?: NormLayer<T>;
  readonly upconv: ConvTranspose2d<T, P>;
  readonly upnorm?: NormLayer<T>;
  readonly child?: UnetSkipBlock<T, P>;

  constructor(
    private readonly ops: Ops<T, P>,
    /** Prefix of this block's Sequential, e.g. `model.model.1.model`. */
    readonly seq: string,
    readonly kind: BlockKind,
    outerNc: number,
    innerNc: number,
    inputNc: number,
    cfg: CycleGANConfig,
    instanceNorms: string[],
    /** Built between the down and up layers, so parameters register in the Sequential's order. */
    makeChild?: () => UnetSkipBlock<T, P>,
  ) {
    const bias = convUsesBias(cfg);
    const at = (j: number) => unetKeys.layer(seq, j);
    const k4 = { stride: 2, padding: 1 };
    switch (kind) {
      case "outermost":
        // [downconv, submodule, uprelu, upconv, tanh]; the final up-conv keeps its bias whatever the norm.
        this.downconv = new Conv2d(ops, at(0), inputNc, innerNc, 4, { ...k4, bias });
        this.child = makeChild?.();
        this.upconv = new ConvTranspose2d(ops, at(3), innerNc * 2, outerNc, 4, { ...k4, bias: true });
        break;
      case "innermost":
        // [downrelu, downconv, uprelu, upconv, upnorm]: nothing below, so the up-conv sees inner_nc channels.
        this.downconv = new Conv2d(ops, at(1), inputNc, innerNc, 4, { ...k4, bias });
        this.upconv = new ConvTranspose2d(ops, at(3), innerNc, outerNc, 4, { ...k4, bias });
        this.upnorm = makeNorm(ops, at(4), outerNc, cfg.norm, instanceNorms);
        break;
      case "middle":
        // [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, (dropout)]
        this.downconv = new Conv2d(ops, at(1), inputNc, innerNc, 4, { ...k4, bias });
        this.downnorm = makeNorm(ops, at(2), innerNc, cfg.norm, instanceNorms);
        this.child = makeChild?.();
        this.upconv = new ConvTranspose2d(ops, at(5), innerNc * 2, outerNc, 4, { ...k4, bias });
        this.upnorm = makeNorm(ops, at(6), outerNc, cfg.norm, instanceNorms);
        break;
    }
  }

  apply(x: T, training: boolean, useDropout: boolean): T {
    const o = this.ops;
    if (this.kind === "outermost") {
      const inner = this.child!.apply(this.downconv.apply(x), training, useDropout);
      return o.tanh(this.upconv.apply(o.relu(inner)));
    }
    // Upstream's down LeakyReLU runs in place, so its `cat([x, model(x)])` really concatenates leaky_relu(x). The
    // parent applies ReLU to the concatenation before anything else reads it, and relu(leaky_relu(x)) == relu(x)
    // (values and gradients), so concatenating x itself is equivalent.
    let h = this.downconv.apply(o.leakyRelu(x, 0.2));
    if (this.downnorm) h = this.downnorm.apply(h, training);
    if (this.child) h = this.child.apply(h, training, useDropout);
    h = this.upconv.apply(o.relu(h));
    if (this.upnorm) h = this.upnorm.apply(h, training);
    if (this.kind === "middle" && useDropout) h = o.dropout(h, 0.5, training);
    return o.concat([x, h]);
  }
}

export class UnetGenerator<T, P> {
  private readonly root: UnetSkipBlock<T, P>;

  constructor(
    ops: Ops<T, P>,
    private readonly cfg: CycleGANConfig,
    inputNc: number,
    outputNc: number,
    readonly numDowns: number,
    instanceNorms: string[],
  ) {
    const { ngf } = cfg;
    // Widths from the outside in; the innermost num_downs-4 levels all run at ngf*8.
    const widths = [ngf, ngf * 2, ngf * 4, ...Array<number>(numDowns - 4).fill(ngf * 8)];
    const build = (level: number, seq: string): UnetSkipBlock<T, P> => {
      const kind: BlockKind = level === 0 ? "outermost" : level === numDowns - 1 ? "innermost" : "middle";
      const outer = level === 0 ? outputNc : widths[level - 1];
      const inner = level === numDowns - 1 ? ngf * 8 : widths[level];
      const input = level === 0 ? inputNc : outer;
      const childSeq = unetKeys.child(seq, kind === "outermost");
      const makeChild = kind === "innermost" ? undefined : () => build(level + 1, childSeq);
      return new UnetSkipBlock(ops, seq, kind, outer, inner, input, cfg, instanceNorms, makeChild);
    };
    this.root = build(0, unetKeys.root);
  }

  apply(x: T, training: boolean): T {
    return this.root.apply(x, training, this.cfg.use_dropout);
  }
}
