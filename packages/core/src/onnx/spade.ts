/**
 * NVlabs SPADE `SPADEGenerator` (use_vae=False) as an ONNX graph, from the same config and official state-dict
 * names as networks/spade. Input "semantics" NHWC [N, H, W, semantic_nc] at the model's output size (one-hot
 * classes, then the instance-edge channel: what `buildSemantics` makes); output "y" NHWC [N, H, W, 3] in [-1, 1].
 *
 * Export-time resolutions: spectral norm becomes its eval weight weight_orig / sigma with the stored u and v (no
 * power iteration, as torch's eval); SPADE's `x_norm * (1 + gamma) + beta` gets its "1 +" folded into the
 * mlp_gamma bias. Convs that read the same tensor are merged into one wider conv (the mlp_shared convs of a block's
 * norms all read the segmap at the block's size; mlp_gamma and mlp_beta read the same hidden map), which runs
 * faster than several narrow ones and changes no arithmetic. The segmap is resized per size with legacy-nearest
 * indices (`min(floor(dst * float32(in/out)), in-1)`): Resize (asymmetric, floor) where the ratio is a power of two
 * and therefore exact in float, else a Gather of the precomputed indices.
 */
import type { StateDict } from "../checkpoints/tensor.ts";
import { canonicalizeSpectral, spectralSigma } from "../networks/common/spectral-norm.ts";
import { legacyNearestIndices } from "../networks/common/nearest-resize.ts";
import { parseSpadeConfig, type SpadeConfig } from "../networks/spade/config.ts";
import { generatorBlocks, generatorSpectralLayers } from "../networks/spade/generator.ts";
import { A, batchNormAffine, GraphBuilder, WeightReader, type KernelOIHW } from "./graph.ts";

const isPow2 = (v: number) => Number.isInteger(Math.log2(v));

class SpadeExporter {
  private readonly segCache = new Map<string, string>();
  constructor(
    readonly g: GraphBuilder,
    readonly r: WeightReader,
    readonly cfg: SpadeConfig,
    readonly seg: string,
    readonly segH: number,
    readonly segW: number,
  ) {}

  segAt(h: number, w: number): string {
    const key = `${h}x${w}`;
    let s = this.segCache.get(key);
    if (s) return s;
    const { g } = this;
    if (h === this.segH && w === this.segW) s = this.seg;
    else if (isPow2(this.segH / h) && isPow2(this.segW / w)) {
      s = g.op("Resize", [this.seg, "", g.f32("scales", [4], Float32Array.of(1, 1, h / this.segH, w / this.segW))], {
        mode: A.s("nearest"),
        coordinate_transformation_mode: A.s("asymmetric"),
        nearest_mode: A.s("floor"),
      });
    } else {
      s = this.seg;
      if (h !== this.segH) s = g.op("Gather", [s, g.i64([...legacyNearestIndices(this.segH, h)])], { axis: A.i(2) });
      if (w !== this.segW) s = g.op("Gather", [s, g.i64([...legacyNearestIndices(this.segW, w)])], { axis: A.i(3) });
    }
    this.segCache.set(key, s);
    return s;
  }

  /** A plain conv's weight and bias. */
  plain(name: string, cin: number, cout: number, k: number, bias = true): { w: KernelOIHW; b: Float32Array | null } {
    return { w: { dims: [cout, cin, k, k], data: this.r.get(`${name}.weight`, [cout, cin, k, k]) }, b: bias ? this.r.get(`${name}.bias`, [cout]) : null };
  }

  /** A block conv: spectral (weight_orig / sigma from the stored u, v) or plain. */
  blockConv(name: string, cin: number, cout: number, k: number, bias: boolean): { w: KernelOIHW; b: Float32Array | null } {
    if (!this.cfg.spade.spectral) return this.plain(name, cin, cout, k, bias);
    const orig = this.r.get(`${name}.weight_orig`, [cout, cin, k, k]);
    const u = this.r.get(`${name}.weight_u`, [cout]);
    const v = this.r.get(`${name}.weight_v`, [cin * k * k]);
    const sigma = Math.fround(
      spectralSigma({ dtype: "F32", shape: [cout, cin, k, k], data: orig }, { dtype: "F32", shape: [cout], data: u }, { dtype: "F32", shape: [cin * k * k], data: v }),
    );
    return { w: { dims: [cout, cin, k, k], data: orig.map((a) => a / sigma) }, b: bias ? this.r.get(`${name}.bias`, [cout]) : null };
  }

  conv(x: string, p: { w: KernelOIHW; b: Float32Array | null }): string {
    const pad = Math.floor(p.w.dims[2] / 2);
    return this.g.conv(x, p.w, p.b, { pads: [pad, pad, pad, pad] });
  }

  /** Parameter-free norm of x (eval BatchNorm with running stats, or InstanceNorm). */
  paramFree(x: string, name: string, c: number): string {
    const { g, r } = this;
    if (this.cfg.spade.paramFree === "instance") {
      for (const leaf of ["running_mean", "running_var", "num_batches_tracked"]) r.skip(`${name}.param_free_norm.${leaf}`);
      return g.op("InstanceNormalization", [x, g.f32("one", [c], new Float32Array(c).fill(1)), g.f32("zero", [c], new Float32Array(c))], { epsilon: A.f(1e-5) });
    }
    const mean = r.get(`${name}.param_free_norm.running_mean`, [c]);
    const variance = r.get(`${name}.param_free_norm.running_var`, [c]);
    r.skip(`${name}.param_free_norm.num_batches_tracked`);
    const { scale, shift } = batchNormAffine(mean, variance, null, null);
    return g.op("Add", [g.op("Mul", [x, g.f32("bn_scale", [1, c, 1, 1], scale)]), g.f32("bn_shift", [1, c, 1, 1], shift)]);
  }

  /**
   * The SPADE norms of one block at one size: one merged mlp_shared conv over the segmap, then per norm one merged
   * gamma/beta conv. Returns a function applying norm `i` to a tensor.
   */
  spadeNorms(names: string[], channels: number[], h: number, w: number): ((x: string, i: number) => string)[] {
    const { g, r, cfg } = this;
    const k = cfg.spade.kernel;
    const nh = cfg.spade_nhidden;
    const snc = cfg.semantic_nc;
    const shared = new Float32Array(names.length * nh * snc * k * k);
    const sharedB = new Float32Array(names.length * nh);
    names.forEach((n, j) => {
      shared.set(r.get(`${n}.mlp_shared.0.weight`, [nh, snc, k, k]), j * nh * snc * k * k);
      sharedB.set(r.get(`${n}.mlp_shared.0.bias`, [nh]), j * nh);
    });
    const pad = Math.floor(k / 2);
    const hidden = g.op("Relu", [g.conv(this.segAt(h, w), { dims: [names.length * nh, snc, k, k], data: shared }, sharedB, { pads: [pad, pad, pad, pad] })]);
    const parts = names.length === 1 ? [hidden] : g.opN("Split", [hidden], names.length, { axis: A.i(1) });
    return names.map((n, j) => {
      const c = channels[j];
      const gw = r.get(`${n}.mlp_gamma.weight`, [c, nh, k, k]);
      const gb = r.get(`${n}.mlp_gamma.bias`, [c]);
      const bw = r.get(`${n}.mlp_beta.weight`, [c, nh, k, k]);
      const bb = r.get(`${n}.mlp_beta.bias`, [c]);
      const wgb = new Float32Array(2 * c * nh * k * k);
      wgb.set(gw, 0);
      wgb.set(bw, gw.length);
      const bgb = new Float32Array(2 * c);
      // x_norm * (1 + gamma): the 1 rides on gamma's bias.
      for (let o = 0; o < c; o++) bgb[o] = gb[o] + 1;
      bgb.set(bb, c);
      const gammaBeta = g.conv(parts[j], { dims: [2 * c, nh, k, k], data: wgb }, bgb, { pads: [pad, pad, pad, pad] });
      const [gamma, beta] = g.opN("Split", [gammaBeta], 2, { axis: A.i(1) });
      return (x: string) => g.op("Add", [g.op("Mul", [this.paramFree(x, n, c), gamma]), beta]);
    });
  }

  resBlock(x: string, name: string, fin: number, fout: number, h: number, w: number): string {
    const { g } = this;
    const learned = fin !== fout;
    const fmid = Math.min(fin, fout);
    const conv0 = this.blockConv(`${name}.conv_0`, fin, fmid, 3, true);
    const conv1 = this.blockConv(`${name}.conv_1`, fmid, fout, 3, true);
    const convS = learned ? this.blockConv(`${name}.conv_s`, fin, fout, 1, false) : null;
    const names = [`${name}.norm_0`, `${name}.norm_1`, ...(learned ? [`${name}.norm_s`] : [])];
    const norms = this.spadeNorms(names, [fin, fmid, ...(learned ? [fin] : [])], h, w);
    const xs = convS ? this.conv(norms[2](x, 2), convS) : x;
    const dx = this.conv(g.leakyRelu(norms[0](x, 0)), conv0);
    const dy = this.conv(g.leakyRelu(norms[1](dx, 1)), conv1);
    return g.op("Add", [xs, dy]);
  }
}

/** ONNX model bytes for the generator; semantics must be at the config's output size. */
export function exportSpade(config: unknown, sd: StateDict, file?: string): Uint8Array {
  const cfg = parseSpadeConfig(config);
  if (cfg.use_vae) throw new Error("ONNX export: SPADE with use_vae (a style encoder and a latent input) is not supported; serve it with the TF.js engine");
  const dict = canonicalizeSpectral(
    new Map([...sd].filter(([k]) => !k.startsWith("netE."))),
    generatorSpectralLayers(cfg),
    file,
  );
  const [H, W] = cfg.output_hw;
  const g = new GraphBuilder("spade_generator");
  const r = new WeightReader(dict, file);
  const seg = g.toNCHW(g.input("semantics", ["N", H, W, cfg.semantic_nc]));
  const e = new SpadeExporter(g, r, cfg, seg, H, W);
  const nf = cfg.ngf;
  let x = e.conv(e.segAt(cfg.sh, cfg.sw), e.plain("fc", cfg.semantic_nc, 16 * nf, 3));
  let h = cfg.sh;
  let w = cfg.sw;
  const up = (t: string) => {
    h *= 2;
    w *= 2;
    return g.op("Resize", [t, "", g.f32("scales", [4], Float32Array.of(1, 1, 2, 2))], {
      mode: A.s("nearest"),
      coordinate_transformation_mode: A.s("asymmetric"),
      nearest_mode: A.s("floor"),
    });
  };
  const [head, middle0, middle1, ...ups] = generatorBlocks(cfg);
  x = e.resBlock(x, head.name, head.fin, head.fout, h, w);
  x = up(x);
  x = e.resBlock(x, middle0.name, middle0.fin, middle0.fout, h, w);
  if (cfg.num_upsampling_layers !== "normal") x = up(x);
  x = e.resBlock(x, middle1.name, middle1.fin, middle1.fout, h, w);
  for (const b of ups) {
    x = up(x);
    x = e.resBlock(x, b.name, b.fin, b.fout, h, w);
  }
  const last = ups.length ? ups[ups.length - 1].fout : middle1.fout;
  x = g.op("Tanh", [e.conv(g.leakyRelu(x), e.plain("conv_img", last, 3, 3))]);
  r.finish();
  g.output("y", g.toNHWC(x), ["N", H, W, 3]);
  return g.encode(JSON.stringify({ family: "spade" }));
}
