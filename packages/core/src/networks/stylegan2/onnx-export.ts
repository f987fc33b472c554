/**
 * stylegan2-ada-pytorch `Generator` as two ONNX graphs, from the same config and official state-dict names as
 * networks/stylegan2:
 * - mapping: z [N, z_dim] (+ c [N, c_dim]) → w [N, w_dim] (one w; broadcasting to num_ws and truncation are a
 *   lerp the engine does on the host, so psi and cutoff need no graph variants);
 * - synthesis: ws [N, num_ws, w_dim] → img NHWC [N, res, res, img_channels], one graph per noise mode:
 *   "const" bakes noise_const * noise_strength in, "none" has no noise, "random" takes one input per noisy layer
 *   (`noise_<i>` [N, 1, r, r], unit normal, drawn by the caller from a seed so results stay deterministic).
 *
 * Modulated convs use the per-sample formulation (scale the input by the style, a conv with the constant weight,
 * scale the output by the demodulation coefficients). It equals upstream's fused grouped conv to float rounding
 * (~5e-6) and keeps every conv weight constant, which is what lets ONNX Runtime prepack it. Up-sampling convs
 * (transposed conv then the [1,3,3,1] FIR) are one composite polyphase conv + DepthToSpace (see polyphaseKernel).
 * Gains are folded into constants where exact: the lrelu gain sqrt(2) commutes with lrelu, so it multiplies the
 * demodulation coefficients, the noise and the bias instead of the activations.
 */
import type { StateDict } from "../../checkpoints/tensor.ts";
import { ACTIVATIONS, type Activation } from "../common/bias_act.ts";
import { derive, parseConfig, type StyleGAN2Config } from "./config.ts";
import { A, GraphBuilder, polyphaseUp, WeightReader } from "../../onnx/graph.ts";

export type SynthesisNoise = "const" | "none" | "random";

const f32 = Math.fround;

/** Layers of the synthesis network that take noise, in forward order (also the random-noise input order). */
export interface NoiseLayer {
  name: string;
  resolution: number;
}

export function synthesisLayout(config: unknown) {
  const cfg = parseConfig(config);
  const d = derive(cfg);
  const noiseLayers: NoiseLayer[] = [];
  if (cfg.synthesis_kwargs.use_noise)
    for (const res of d.blockResolutions) {
      if (res > 4) noiseLayers.push({ name: `synthesis.b${res}.conv0`, resolution: res });
      noiseLayers.push({ name: `synthesis.b${res}.conv1`, resolution: res });
    }
  return { cfg, derived: d, noiseLayers };
}

function activation(g: GraphBuilder, x: string, act: Activation): string {
  switch (act) {
    case "linear":
      return x;
    case "relu":
      return g.op("Relu", [x]);
    case "lrelu":
      return g.leakyRelu(x, 0.2);
    case "tanh":
      return g.op("Tanh", [x]);
    case "sigmoid":
      return g.op("Sigmoid", [x]);
    default:
      throw new Error(`ONNX export: activation ${act} is not supported`);
  }
}

/** Scale-invariant activations, for which act(x) * gain == act(x * gain) when gain > 0. */
const HOMOGENEOUS = new Set<Activation>(["linear", "relu", "lrelu"]);

/** FullyConnectedLayer with its equalized-lr gains folded into the constants: x [N, in] → [N, out]. */
function fc(g: GraphBuilder, r: WeightReader, x: string, prefix: string, inF: number, outF: number, opts: { lr?: number; act?: Activation; styleGain?: number }): string {
  const lr = opts.lr ?? 1;
  const act = opts.act ?? "linear";
  const wGain = f32(lr / Math.sqrt(inF));
  const w = r.get(`${prefix}.weight`, [outF, inF]);
  const b = r.get(`${prefix}.bias`, [outF]);
  const wt = new Float32Array(inF * outF);
  // Upstream multiplies in float32 (weight * weight_gain), so the folded product is the same number it uses.
  for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) wt[i * outF + o] = f32(w[o * inF + i] * wGain);
  const bias = b.map((v) => f32(v * lr));
  let y = g.op("Add", [g.op("MatMul", [x, g.f32("fc_w", [inF, outF], wt)]), g.f32("fc_b", [outF], bias)]);
  y = activation(g, y, act);
  const gain = ACTIVATIONS[act].gain * (opts.styleGain ?? 1);
  return gain === 1 ? y : g.op("Mul", [y, g.scalar("gain", gain)]);
}

function normalize2ndMoment(g: GraphBuilder, x: string): string {
  const ms = g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: A.ints([1]), keepdims: A.i(1) });
  return g.op("Mul", [x, g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, g.scalar("eps", 1e-8)])])])]);
}

/** Mapping graph: "z" [N, z_dim] (and "c" [N, c_dim] when conditional) → "w" [N, w_dim]. */
export function exportStyleGAN2Mapping(config: unknown, sd: StateDict, file?: string): Uint8Array {
  const cfg = parseConfig(config);
  const mk = cfg.mapping_kwargs;
  const g = new GraphBuilder("stylegan2_mapping");
  const r = new WeightReader(sd, file);
  const embedFeatures = cfg.c_dim === 0 ? 0 : (mk.embed_features ?? cfg.w_dim);
  const layerFeatures = mk.layer_features ?? cfg.w_dim;
  const features = [cfg.z_dim + embedFeatures, ...Array<number>(mk.num_layers - 1).fill(layerFeatures), cfg.w_dim];
  const parts: string[] = [];
  if (cfg.z_dim > 0) parts.push(normalize2ndMoment(g, g.input("z", ["N", cfg.z_dim])));
  if (cfg.c_dim > 0) parts.push(normalize2ndMoment(g, fc(g, r, g.input("c", ["N", cfg.c_dim]), "mapping.embed", cfg.c_dim, embedFeatures, {})));
  let x = parts.length === 1 ? parts[0] : g.op("Concat", parts, { axis: A.i(1) });
  for (let i = 0; i < mk.num_layers; i++) x = fc(g, r, x, `mapping.fc${i}`, features[i], features[i + 1], { lr: mk.lr_multiplier, act: mk.activation });
  // w_avg stays on the host (truncation); the synthesis weights belong to the other graph.
  r.skip("mapping.w_avg");
  r.finish((k) => k.startsWith("synthesis."));
  g.output("w", x, ["N", cfg.w_dim]);
  return g.encode(JSON.stringify({ family: "stylegan2", graph: "mapping" }));
}

interface Ctx {
  g: GraphBuilder;
  r: WeightReader;
  cfg: StyleGAN2Config;
  noise: SynthesisNoise;
  noiseInputs: string[];
}

/** The block's resample filter times up² (upstream's FIR gain for 2x up-sampling), as a float64 2-D array. */
function gainFilter(c: Ctx, prefix: string): { g: Float64Array; size: number } {
  const n = c.cfg.synthesis_kwargs.resample_filter.length;
  const f = c.r.get(`${prefix}.resample_filter`, [n, n]);
  return { g: Float64Array.from(f, (v) => f32(v * 4)), size: n };
}

/** Full 2-D convolution of each kernel w[o][i] (kh x kw) with the filter: the composite up-sampling kernel. */
function composite(w: Float32Array, O: number, I: number, kh: number, kw: number, filt: { g: Float64Array; size: number }): { K: Float64Array; Kh: number; Kw: number } {
  const fs = filt.size;
  const Kh = kh + fs - 1;
  const Kw = kw + fs - 1;
  const K = new Float64Array(O * I * Kh * Kw);
  for (let oi = 0; oi < O * I; oi++)
    for (let a = 0; a < kh; a++)
      for (let b = 0; b < kw; b++) {
        const wv = w[(oi * kh + a) * kw + b];
        if (wv === 0) continue;
        for (let u = 0; u < fs; u++) for (let v = 0; v < fs; v++) K[(oi * Kh + a + u) * Kw + b + v] += wv * filt.g[u * fs + v];
      }
  return { K, Kh, Kw };
}

/** Style [N, C] → [N, C, 1, 1]. */
const perChannel = (g: GraphBuilder, s: string) => g.op("Unsqueeze", [s, g.i64([2, 3])]);

function synthesisLayer(c: Ctx, x: string | null, constInput: string | null, w: string, prefix: string, inC: number, outC: number, res: number, up: number, gain: number): string {
  const { g, r, cfg } = c;
  const sk = cfg.synthesis_kwargs;
  const k = sk.kernel_size ?? 3;
  const act = sk.activation ?? "lrelu";
  const weight = r.get(`${prefix}.weight`, [outC, inC, k, k]);
  const styles = fc(g, r, w, `${prefix}.affine`, cfg.w_dim, inC, {});
  // Demodulation: sum over (i, kh, kw) of (W s_i)^2 = s^2 · sum_{kh,kw} W^2, a [N, I] x [I, O] product.
  const wsq = new Float32Array(inC * outC);
  for (let o = 0; o < outC; o++)
    for (let i = 0; i < inC; i++) {
      let s = 0;
      for (let t = 0; t < k * k; t++) s += weight[(o * inC + i) * k * k + t] ** 2;
      wsq[i * outC + o] = s;
    }
  const actGain = ACTIVATIONS[act].gain * gain;
  const fold = HOMOGENEOUS.has(act) ? actGain : 1;
  let d = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [g.op("MatMul", [g.op("Mul", [styles, styles]), g.f32("wsq", [inC, outC], wsq)]), g.scalar("eps", 1e-8)])])]);
  if (fold !== 1) d = g.op("Mul", [d, g.scalar("gain", fold)]);
  const xs = g.op("Mul", [x ?? constInput!, perChannel(g, styles)]);
  let y: string;
  const p = Math.floor(k / 2);
  if (up === 1) {
    y = g.conv(xs, { dims: [outC, inC, k, k], data: weight }, null, { pads: [p, p, p, p] });
  } else {
    // Upstream: conv_transpose2d(x, w, stride 2) (w not flipped) then upfirdn2d(f, gain 4) with the padding below.
    const filt = gainFilter(c, prefix);
    const fs = filt.size;
    const py0 = p + Math.floor((fs + up - 1) / 2) - (k - 1);
    const { K, Kh, Kw } = composite(weight, outC, inC, k, k, filt);
    y = polyphaseUp(g, xs, K, outC, inC, Kh, Kw, up, fs - 1 - py0, fs - 1 - py0, null);
  }
  if (up === 1) r.skip(`${prefix}.resample_filter`);
  y = g.op("Mul", [y, perChannel(g, d)]);
  const useNoise = sk.use_noise;
  if (useNoise) {
    const strength = r.get(`${prefix}.noise_strength`, [])[0];
    const nc = r.get(`${prefix}.noise_const`, [res, res]);
    if (c.noise === "const") {
      y = g.op("Add", [y, g.f32("noise", [1, 1, res, res], nc.map((v) => f32(f32(v * strength) * fold)))]);
    } else if (c.noise === "random") {
      const input = g.input(`noise_${c.noiseInputs.length}`, ["N", 1, res, res]);
      c.noiseInputs.push(input);
      y = g.op("Add", [y, g.op("Mul", [input, g.scalar("strength", strength * fold)])]);
    }
  }
  const bias = r.get(`${prefix}.bias`, [outC]);
  y = g.op("Add", [y, g.f32("bias", [1, outC, 1, 1], bias.map((v) => f32(v * fold)))]);
  y = activation(g, y, act);
  if (fold === 1 && actGain !== 1) y = g.op("Mul", [y, g.scalar("gain", actGain)]);
  if (sk.conv_clamp != null) {
    const cl = sk.conv_clamp * gain;
    y = g.op("Clip", [y, g.scalar("lo", -cl), g.scalar("hi", cl)]);
  }
  return y;
}

function toRGB(c: Ctx, x: string, w: string, prefix: string, inC: number): string {
  const { g, r, cfg } = c;
  const outC = cfg.img_channels;
  const weight = r.get(`${prefix}.weight`, [outC, inC, 1, 1]);
  const styles = fc(g, r, w, `${prefix}.affine`, cfg.w_dim, inC, { styleGain: 1 / Math.sqrt(inC) });
  let y = g.conv(g.op("Mul", [x, perChannel(g, styles)]), { dims: [outC, inC, 1, 1], data: weight }, r.get(`${prefix}.bias`, [outC]));
  const clamp = cfg.synthesis_kwargs.conv_clamp;
  if (clamp != null) y = g.op("Clip", [y, g.scalar("lo", -clamp), g.scalar("hi", clamp)]);
  return y;
}

/** upfirdn2d.upsample2d (2x, FIR gain 4), as a polyphase conv with an identity channel mix. */
function upsampleImg(c: Ctx, img: string, prefix: string, channels: number, weight?: Float32Array): string {
  const filt = gainFilter(c, prefix);
  const fs = filt.size;
  const w = weight ?? Float32Array.from({ length: channels * channels }, (_, i) => (i % (channels + 1) === 0 ? 1 : 0));
  const O = weight ? weight.length / channels : channels;
  const { K, Kh, Kw } = composite(w, O, channels, 1, 1, filt);
  const pad0 = Math.floor((fs + 1) / 2);
  return polyphaseUp(c.g, img, K, O, channels, Kh, Kw, 2, fs - 1 - pad0, fs - 1 - pad0, null);
}

/**
 * Synthesis graph for one noise mode: "ws" [N, num_ws, w_dim] (+ "noise_<i>" for "random") → "img" NHWC.
 */
export function exportStyleGAN2Synthesis(config: unknown, sd: StateDict, noise: SynthesisNoise, file?: string): Uint8Array {
  const { cfg, derived } = synthesisLayout(config);
  const sk = cfg.synthesis_kwargs;
  const g = new GraphBuilder(`stylegan2_synthesis_${noise}`);
  const r = new WeightReader(sd, file);
  const c: Ctx = { g, r, cfg, noise, noiseInputs: [] };
  const numWs = derived.numWs;
  const ws = g.input("ws", ["N", numWs, cfg.w_dim]);
  const wList = g.opN("Split", [ws], numWs, { axis: A.i(1) }).map((t) => g.op("Squeeze", [t, g.i64([1])]));
  let x: string | null = null;
  let img: string | null = null;
  let idx = 0;
  const last = derived.blockResolutions[derived.blockResolutions.length - 1];
  for (const res of derived.blockResolutions) {
    const prefix = `synthesis.b${res}`;
    const outC = derived.channels[res];
    const inC = res > 4 ? derived.channels[res / 2] : 0;
    const isLast = res === last;
    const hasRGB = isLast || sk.architecture === "skip";
    const mine = wList.slice(idx, idx + (res > 4 ? 2 : 1) + (hasRGB ? 1 : 0));
    idx += res > 4 ? 2 : 1;
    let i = 0;
    let h: string;
    if (res === 4) {
      const cst = r.get(`${prefix}.const`, [outC, 4, 4]);
      h = synthesisLayer(c, null, g.f32("const", [1, outC, 4, 4], cst), mine[i++], `${prefix}.conv1`, outC, outC, res, 1, 1);
    } else if (sk.architecture === "resnet") {
      const sw = r.get(`${prefix}.skip.weight`, [outC, inC, 1, 1]);
      const gain = f32(1 / Math.sqrt(inC));
      const skip = upsampleImg(c, x!, prefix, inC, sw.map((v) => f32(f32(v * gain) * Math.SQRT1_2)));
      r.skip(`${prefix}.skip.resample_filter`);
      h = synthesisLayer(c, x, null, mine[i++], `${prefix}.conv0`, inC, outC, res, 2, 1);
      h = synthesisLayer(c, h, null, mine[i++], `${prefix}.conv1`, outC, outC, res, 1, Math.SQRT1_2);
      h = g.op("Add", [skip, h]);
    } else {
      h = synthesisLayer(c, x, null, mine[i++], `${prefix}.conv0`, inC, outC, res, 2, 1);
      h = synthesisLayer(c, h, null, mine[i++], `${prefix}.conv1`, outC, outC, res, 1, 1);
    }
    if (img) img = upsampleImg(c, img, prefix, cfg.img_channels);
    else r.get(`${prefix}.resample_filter`, [sk.resample_filter.length, sk.resample_filter.length]);
    if (hasRGB) {
      const y = toRGB(c, h, mine[i++], `${prefix}.torgb`, outC);
      img = img ? g.op("Add", [img, y]) : y;
    }
    x = h;
  }
  r.finish((k) => k.startsWith("mapping."));
  g.output("img", g.toNHWC(img!), ["N", cfg.img_resolution, cfg.img_resolution, cfg.img_channels]);
  return g.encode(JSON.stringify({ family: "stylegan2", graph: "synthesis", noise }));
}
