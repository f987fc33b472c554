/**
 * pix2pix/CycleGAN generators (ResnetGenerator, UnetGenerator) as ONNX graphs, from the same config and official
 * state-dict names as networks/cyclegan. I/O is NHWC [N, H, W, C] with dynamic N, H and W (H, W multiples of the
 * network's size multiple); inside the graph everything is NCHW.
 *
 * Eval-mode only: BatchNorm is folded into the preceding conv; InstanceNorm (affine=False, no running stats) is the
 * InstanceNormalization op, and the conv bias in front of it is dropped (the mean subtraction cancels it exactly).
 */
import type { StateDict } from "../checkpoints/tensor.ts";
import { convUsesBias, parseCycleGANConfig, type CycleGANConfig } from "../networks/cyclegan/config.ts";
import { RUNNING_STAT_LEAVES } from "../networks/common/norm.ts";
import { A, batchNormAffine, convTransposeComposite, GraphBuilder, polyphaseUp, WeightReader, type KernelOIHW } from "./graph.ts";

export interface CycleGANExportOptions {
  /** Channels in/out (G_B swaps the config's input_nc and output_nc); default G_A's. */
  channels?: { in: number; out: number };
  /**
   * How stride-2 transposed convs are emitted: "polyphase" (one conv + DepthToSpace; default, faster on ONNX
   * Runtime's CPU provider) or "convtranspose" (the ConvTranspose op, kept for comparison).
   */
  upsample?: "polyphase" | "convtranspose";
  file?: string;
}

type Norm = CycleGANConfig["norm"];

class Exporter {
  readonly instanceNorms: string[] = [];
  constructor(
    readonly g: GraphBuilder,
    readonly r: WeightReader,
    readonly cfg: CycleGANConfig,
    readonly opts: CycleGANExportOptions,
  ) {}

  /** Reads a norm layer: its per-channel affine for BatchNorm, "instance", or null (Identity). */
  private norm(name: string, c: number, norm: Norm): { scale: Float32Array; shift: Float32Array } | "instance" | null {
    if (norm === "none") return null;
    if (norm === "instance") {
      this.instanceNorms.push(name);
      return "instance";
    }
    const weight = this.r.get(`${name}.weight`, [c]);
    const bias = this.r.get(`${name}.bias`, [c]);
    const mean = this.r.get(`${name}.running_mean`, [c]);
    const variance = this.r.get(`${name}.running_var`, [c]);
    this.r.skip(`${name}.num_batches_tracked`);
    return batchNormAffine(mean, variance, weight, bias);
  }

  private instanceNorm(x: string, c: number): string {
    return this.g.op("InstanceNormalization", [x, this.g.f32("in_scale", [c], new Float32Array(c).fill(1)), this.g.f32("in_bias", [c], new Float32Array(c))], {
      epsilon: A.f(1e-5),
    });
  }

  /** Conv2d (+ its norm). `normName` null means no norm layer follows. */
  conv(x: string, name: string, cin: number, cout: number, k: number, opts: { stride?: number; pad?: number; bias: boolean; normName: string | null }): string {
    const w = this.r.get(`${name}.weight`, [cout, cin, k, k]);
    let b = opts.bias ? this.r.get(`${name}.bias`, [cout]) : null;
    const norm = opts.normName ? this.norm(opts.normName, cout, this.cfg.norm) : null;
    let kernel: KernelOIHW = { dims: [cout, cin, k, k], data: w };
    if (norm === "instance") b = null;
    else if (norm) ({ kernel, bias: b } = foldOut(kernel, b, norm));
    const p = opts.pad ?? 0;
    const y = this.g.conv(x, kernel, b, { stride: opts.stride, pads: [p, p, p, p] });
    return norm === "instance" ? this.instanceNorm(y, cout) : y;
  }

  /** ConvTranspose2d (stride 2) with output size exactly 2H x 2W (+ its norm). */
  convT(x: string, name: string, cin: number, cout: number, k: number, pad: number, outPad: number, bias: boolean, normName: string | null): string {
    let w = this.r.get(`${name}.weight`, [cin, cout, k, k]);
    let b = bias ? this.r.get(`${name}.bias`, [cout]) : null;
    const norm = normName ? this.norm(normName, cout, this.cfg.norm) : null;
    if (norm === "instance") b = null;
    else if (norm) {
      // Weight [I, O, k, k]: the output channel is axis 1.
      const w2 = new Float32Array(w.length);
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) for (let t = 0; t < k * k; t++) w2[(i * cout + o) * k * k + t] = w[(i * cout + o) * k * k + t] * norm.scale[o];
      w = w2;
      b = foldBias(b, norm, cout);
    }
    let y: string;
    if ((this.opts.upsample ?? "polyphase") === "polyphase") {
      y = polyphaseUp(this.g, x, convTransposeComposite(w, cin, cout, k), cout, cin, k, k, 2, pad, pad, b);
    } else {
      const ins = [x, this.g.f32("Wt", [cin, cout, k, k], w)];
      if (b) ins.push(this.g.f32("Bt", [cout], b));
      y = this.g.op("ConvTranspose", ins, {
        kernel_shape: A.ints([k, k]),
        strides: A.ints([2, 2]),
        pads: A.ints([pad, pad, pad, pad]),
        output_padding: A.ints([outPad, outPad]),
      });
    }
    return norm === "instance" ? this.instanceNorm(y, cout) : y;
  }

  reflectPad(x: string, p: number): string {
    return this.g.op("Pad", [x, this.g.i64([0, 0, p, p, 0, 0, p, p])], { mode: A.s("reflect") });
  }
}

function foldBias(b: Float32Array | null, norm: { scale: Float32Array; shift: Float32Array }, c: number): Float32Array {
  const out = new Float32Array(c);
  for (let o = 0; o < c; o++) out[o] = (b ? b[o] : 0) * norm.scale[o] + norm.shift[o];
  return out;
}

/** BatchNorm after a Conv2d, folded into it (weight [O, ...]: the output channel is axis 0). */
function foldOut(k: KernelOIHW, b: Float32Array | null, norm: { scale: Float32Array; shift: Float32Array }): { kernel: KernelOIHW; bias: Float32Array } {
  const { dims, data: w } = k;
  const cout = dims[0];
  const perOut = w.length / cout;
  const data = new Float32Array(w.length);
  for (let o = 0; o < cout; o++) for (let t = 0; t < perOut; t++) data[o * perOut + t] = w[o * perOut + t] * norm.scale[o];
  return { kernel: { dims, data }, bias: foldBias(b, norm, cout) };
}

function resnet(e: Exporter, x: string, inNc: number, outNc: number, nBlocks: number): string {
  const { g, cfg } = e;
  const { ngf } = cfg;
  const bias = convUsesBias(cfg);
  let i = 1; // model.0 is ReflectionPad2d(3)
  const next = () => `model.${i++}`;
  const stem = next();
  let h = g.op("Relu", [e.conv(e.reflectPad(x, 3), stem, inNc, ngf, 7, { bias, normName: next() })]);
  i++; // ReLU
  for (let d = 0; d < 2; d++) {
    const c = ngf * 2 ** d;
    const conv = next();
    h = g.op("Relu", [e.conv(h, conv, c, c * 2, 3, { stride: 2, pad: 1, bias, normName: next() })]);
    i++;
  }
  const dim = ngf * 4;
  const second = cfg.use_dropout ? 5 : 4;
  for (let b = 0; b < nBlocks; b++) {
    const name = next();
    const blk = (j: number) => `${name}.conv_block.${j}`;
    let y = g.op("Relu", [e.conv(e.reflectPad(h, 1), blk(1), dim, dim, 3, { bias, normName: blk(2) })]);
    y = e.conv(e.reflectPad(y, 1), blk(second + 1), dim, dim, 3, { bias, normName: blk(second + 2) });
    h = g.op("Add", [h, y]);
  }
  for (let u = 0; u < 2; u++) {
    const c = ngf * 2 ** (2 - u);
    const conv = next();
    h = g.op("Relu", [e.convT(h, conv, c, c / 2, 3, 1, 1, bias, next())]);
    i++;
  }
  i++; // ReflectionPad2d(3)
  return g.op("Tanh", [e.conv(e.reflectPad(h, 3), next(), ngf, outNc, 7, { bias: true, normName: null })]);
}

function unet(e: Exporter, x: string, inNc: number, outNc: number, numDowns: number): string {
  const { g, cfg } = e;
  const { ngf } = cfg;
  const bias = convUsesBias(cfg);
  const widths = [ngf, ngf * 2, ngf * 4, ...Array<number>(numDowns - 4).fill(ngf * 8)];
  const block = (level: number, seq: string, input: string): string => {
    const kind = level === 0 ? "outermost" : level === numDowns - 1 ? "innermost" : "middle";
    const outer = level === 0 ? outNc : widths[level - 1];
    const inner = level === numDowns - 1 ? ngf * 8 : widths[level];
    const inC = level === 0 ? inNc : outer;
    const at = (j: number) => `${seq}.${j}`;
    if (kind === "outermost") {
      const d = e.conv(input, at(0), inC, inner, 4, { stride: 2, pad: 1, bias, normName: null });
      const child = block(level + 1, `${seq}.1.model`, d);
      return g.op("Tanh", [e.convT(g.op("Relu", [child]), at(3), inner * 2, outer, 4, 1, 0, true, null)]);
    }
    // Upstream's in-place LeakyReLU makes its skip concatenate leaky_relu(x); the parent's ReLU comes first, and
    // relu(leaky_relu(x)) == relu(x), so concatenating x itself is the same.
    if (kind === "innermost") {
      const d = e.conv(g.leakyRelu(input), at(1), inC, inner, 4, { stride: 2, pad: 1, bias, normName: null });
      const u = e.convT(g.op("Relu", [d]), at(3), inner, outer, 4, 1, 0, bias, at(4));
      return g.op("Concat", [input, u], { axis: A.i(1) });
    }
    const d = e.conv(g.leakyRelu(input), at(1), inC, inner, 4, { stride: 2, pad: 1, bias, normName: at(2) });
    const child = block(level + 1, `${seq}.3.model`, d);
    const u = e.convT(g.op("Relu", [child]), at(5), inner * 2, outer, 4, 1, 0, bias, at(6));
    return g.op("Concat", [input, u], { axis: A.i(1) });
  };
  return block(0, "model.model", x);
}

/** ONNX model bytes for one generator: input "x" NHWC [N, H, W, in] in [-1, 1] → output "y" NHWC [N, H, W, out]. */
export function exportCycleGAN(config: unknown, sd: StateDict, opts: CycleGANExportOptions = {}): Uint8Array {
  const cfg = parseCycleGANConfig(config);
  const dict = sd.size > 0 && [...sd.keys()].every((k) => k.startsWith("module.")) ? new Map([...sd].map(([k, v]) => [k.slice(7), v])) : sd;
  const inNc = opts.channels?.in ?? cfg.input_nc;
  const outNc = opts.channels?.out ?? cfg.output_nc;
  const g = new GraphBuilder(`cyclegan_${cfg.netG}`);
  const r = new WeightReader(dict, opts.file);
  const e = new Exporter(g, r, cfg, opts);
  const x = g.toNCHW(g.input("x", ["N", "H", "W", inNc]));
  let y: string;
  switch (cfg.netG) {
    case "resnet_6blocks":
    case "resnet_9blocks":
      y = resnet(e, x, inNc, outNc, cfg.netG === "resnet_6blocks" ? 6 : 9);
      break;
    case "unet_128":
    case "unet_256":
      y = unet(e, x, inNc, outNc, cfg.netG === "unet_128" ? 7 : 8);
      break;
  }
  // 2018-era checkpoints carry running stats on InstanceNorm layers; upstream deletes them on load, and so do we.
  const stale = new Set(e.instanceNorms.flatMap((n) => RUNNING_STAT_LEAVES.map((leaf) => `${n}.${leaf}`)));
  r.finish((k) => stale.has(k));
  g.output("y", g.toNHWC(y), ["N", "H", "W", outNc]);
  return g.encode(JSON.stringify({ family: "cyclegan", netG: cfg.netG }));
}
