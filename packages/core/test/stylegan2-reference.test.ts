/**
 * Checks the branches the shipped fixture cannot reach (resnet, orig, class conditioning with embed_features,
 * z_dim 0, conv_clamp that actually clamps, truncation_cutoff, layer_features, 1-channel images, res 4) against
 * a slow float64 reference written independently from the paper/upstream description: NCHW loops, per-sample
 * modulated weights (upstream's fused formulation rather than our x*s → conv → *d), the generic
 * "upsample-with-FIR then convolve" form of every up-conv instead of the transposed-conv fast path, and the
 * closed-form ws index of each layer (conv0 of block b reads ws[2b-1], conv1 ws[2b], torgb ws[2b+1]).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-core/dist/register_all_gradients.js";
import { describe, expect, it } from "vitest";
import type { StateDict } from "../src/checkpoints/tensor.ts";
import { parseConfig, type StyleGAN2Config, type StyleGAN2ConfigInput } from "../src/networks/stylegan2/config.ts";
import { StyleGAN2Generator } from "../src/networks/stylegan2/generator.ts";
import { conv2dResample } from "../src/networks/common/conv2d_resample.ts";
import { setupFilter, upfirdn2d } from "../src/networks/common/upfirdn2d.ts";

// ---------- deterministic randomness ----------
function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, n };
}

/** Realistic non-trivial weights for every key (the randomInit values would leave biases/noise at 0). */
function perturbed(sd: StateDict, cfg: StyleGAN2Config, seed: number): StateDict {
  const r = rng(seed);
  const out: StateDict = new Map();
  for (const [name, t] of sd) {
    const d = new Float32Array(t.data.length);
    for (let i = 0; i < d.length; i++) {
      if (name.endsWith("resample_filter")) d[i] = (t.data as Float32Array)[i];
      else if (name.endsWith("affine.bias")) d[i] = 1 + 0.1 * r.n();
      else if (/^mapping\.(fc\d+|embed)\.weight$/.test(name)) d[i] = r.n() / (name.includes("embed") ? 1 : cfg.mapping_kwargs.lr_multiplier);
      else if (/^mapping\.fc\d+\.bias$/.test(name)) d[i] = 5 * r.n();
      else if (name.endsWith("noise_strength")) d[i] = (r.u() < 0.5 ? -1 : 1) * (0.05 + 0.25 * r.u());
      else if (name.endsWith(".bias")) d[i] = 0.1 * r.n();
      else if (name.endsWith("w_avg")) d[i] = 0.3 * r.n();
      else d[i] = r.n();
    }
    out.set(name, { dtype: "F32", shape: [...t.shape], data: d });
  }
  return out;
}

// ---------- float64 reference ----------
interface Img {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}
const img = (c: number, h: number, w: number): Img => ({ c, h, w, d: new Float64Array(c * h * w) });
const at = (x: Img, c: number, i: number, j: number) => x.d[(c * x.h + i) * x.w + j];

const lrelu = (v: number) => (v < 0 ? 0.2 * v : v) * Math.SQRT2;

function fc(x: number[], W: Float64Array, b: Float64Array | null, inF: number, outF: number, wGain: number, bGain: number, act: boolean): number[] {
  const y: number[] = [];
  for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += x[i] * W[o * inF + i] * wGain;
    if (b) s += b[o] * bGain;
    y.push(act ? lrelu(s) : s);
  }
  return y;
}

function norm2(x: number[]): number[] {
  const m = x.reduce((a, v) => a + v * v, 0) / x.length;
  return x.map((v) => v / Math.sqrt(m + 1e-8));
}

/** Zero-insert by `up`, pad/crop, true convolution with f*gain, decimate by `down`. */
function upfirdn(x: Img, f: Float64Array, fk: number, up: number, down: number, p: [number, number, number, number], gain: number): Img {
  const [px0, px1, py0, py1] = p;
  const H = x.h * up + py0 + py1;
  const W = x.w * up + px0 + px1;
  const src = (c: number, i: number, j: number) => {
    const ii = i - py0;
    const jj = j - px0;
    if (ii < 0 || jj < 0 || ii >= x.h * up || jj >= x.w * up || ii % up || jj % up) return 0;
    return at(x, c, ii / up, jj / up);
  };
  const oh = Math.floor((H - fk) / down) + 1;
  const ow = Math.floor((W - fk) / down) + 1;
  const y = img(x.c, oh, ow);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let s = 0;
        for (let a = 0; a < fk; a++) for (let b = 0; b < fk; b++) s += src(c, i * down + a, j * down + b) * f[(fk - 1 - a) * fk + (fk - 1 - b)] * gain;
        y.d[(c * oh + i) * ow + j] = s;
      }
  return y;
}

/** Correlation (flip=false) or true convolution (flip=true) of x with w [O,I,k,k], symmetric zero padding. */
function conv(x: Img, w: Float64Array, O: number, k: number, pad: number, flip: boolean): Img {
  const I = x.c;
  const oh = x.h + 2 * pad - k + 1;
  const ow = x.w + 2 * pad - k + 1;
  const y = img(O, oh, ow);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let s = 0;
        for (let c = 0; c < I; c++)
          for (let a = 0; a < k; a++)
            for (let b = 0; b < k; b++) {
              const ii = i + a - pad;
              const jj = j + b - pad;
              if (ii < 0 || jj < 0 || ii >= x.h || jj >= x.w) continue;
              const wa = flip ? k - 1 - a : a;
              const wb = flip ? k - 1 - b : b;
              s += at(x, c, ii, jj) * w[((o * I + c) * k + wa) * k + wb];
            }
        y.d[(o * oh + i) * ow + j] = s;
      }
  return y;
}

type Params = (name: string) => Float64Array;
const paramsOf =
  (sd: StateDict): Params =>
  (name) => {
    const t = sd.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return Float64Array.from(t.data as Float32Array);
  };

function reference(cfg: StyleGAN2Config, P: Params, z: number[][], cls: number[] | null, psi: number, cutoff: number | null, noise: "const" | "none"): { ws: number[][][]; imgs: Img[] } {
  const mk = cfg.mapping_kwargs;
  const sk = cfg.synthesis_kwargs;
  const L = Math.log2(cfg.img_resolution);
  const numWs = 2 * L - 2;
  const embedF = cfg.c_dim ? (mk.embed_features ?? cfg.w_dim) : 0;
  const layerF = mk.layer_features ?? cfg.w_dim;
  const feats = [cfg.z_dim + embedF, ...Array(mk.num_layers - 1).fill(layerF), cfg.w_dim];
  const chan = (res: number) => Math.min(Math.floor(sk.channel_base / res), sk.channel_max);
  const ft = sk.resample_filter;
  const fk = ft.length;
  const fsum = ft.reduce((a, b) => a + b, 0) ** 2;
  const f = new Float64Array(fk * fk).map((_, i) => (ft[Math.floor(i / fk)] * ft[i % fk]) / fsum);
  const clampC = sk.conv_clamp;

  const out = { ws: [] as number[][][], imgs: [] as Img[] };
  for (let n = 0; n < z.length; n++) {
    let x: number[] = [];
    if (cfg.z_dim) x = norm2(z[n]);
    if (cfg.c_dim) {
      const c = Array(cfg.c_dim).fill(0);
      c[cls![n]] = 1;
      x = x.concat(norm2(fc(c, P("mapping.embed.weight"), P("mapping.embed.bias"), cfg.c_dim, embedF, 1 / Math.sqrt(cfg.c_dim), 1, false)));
    }
    for (let l = 0; l < mk.num_layers; l++)
      x = fc(x, P(`mapping.fc${l}.weight`), P(`mapping.fc${l}.bias`), feats[l], feats[l + 1], mk.lr_multiplier / Math.sqrt(feats[l]), mk.lr_multiplier, true);
    const avg = P("mapping.w_avg");
    const ws: number[][] = [];
    for (let i = 0; i < numWs; i++)
      ws.push(psi !== 1 && (cutoff === null || i < cutoff) ? x.map((v, j) => avg[j] + psi * (v - avg[j])) : [...x]);
    out.ws.push(ws);

    const layer = (pre: string, h: Img, w: number[], O: number, res: number, up: boolean, gain: number): Img => {
      const I = h.c;
      const s = fc(w, P(`${pre}.affine.weight`), P(`${pre}.affine.bias`), cfg.w_dim, I, 1 / Math.sqrt(cfg.w_dim), 1, false);
      const W0 = P(`${pre}.weight`);
      const Wm = new Float64Array(W0.length);
      for (let o = 0; o < O; o++) {
        let ss = 0;
        for (let i = 0; i < I; i++) for (let t = 0; t < 9; t++) ss += (W0[(o * I + i) * 9 + t] * s[i]) ** 2;
        const d = 1 / Math.sqrt(ss + 1e-8);
        for (let i = 0; i < I; i++) for (let t = 0; t < 9; t++) Wm[(o * I + i) * 9 + t] = W0[(o * I + i) * 9 + t] * s[i] * d;
      }
      // Generic form of the up-conv: FIR-upsample (pad k//2 + filter pads), then a true 3x3 convolution.
      const y = up ? conv(upfirdn(h, f, fk, 2, 1, [3, 2, 3, 2], 4), Wm, O, 3, 0, true) : conv(h, Wm, O, 3, 1, false);
      const ns = P(`${pre}.noise_strength`)[0];
      const nc = P(`${pre}.noise_const`);
      const b = P(`${pre}.bias`);
      for (let o = 0; o < O; o++)
        for (let p = 0; p < res * res; p++) {
          let v = y.d[o * res * res + p] + (noise === "const" ? nc[p] * ns : 0) + b[o];
          v = lrelu(v) * gain;
          if (clampC != null) v = Math.max(-clampC * gain, Math.min(clampC * gain, v));
          y.d[o * res * res + p] = v;
        }
      return y;
    };
    const torgb = (pre: string, h: Img, w: number[]): Img => {
      const I = h.c;
      const s = fc(w, P(`${pre}.affine.weight`), P(`${pre}.affine.bias`), cfg.w_dim, I, 1 / Math.sqrt(cfg.w_dim), 1, false).map((v) => v / Math.sqrt(I));
      const W0 = P(`${pre}.weight`);
      const O = cfg.img_channels;
      const Wm = W0.map((v, idx) => v * s[idx % I]);
      const y = conv(h, Wm, O, 1, 0, false);
      const b = P(`${pre}.bias`);
      for (let o = 0; o < O; o++)
        for (let p = 0; p < h.h * h.w; p++) {
          let v = y.d[o * h.h * h.w + p] + b[o];
          if (clampC != null) v = Math.max(-clampC, Math.min(clampC, v));
          y.d[o * h.h * h.w + p] = v;
        }
      return y;
    };

    let h: Img | null = null;
    let rgb: Img | null = null;
    for (let bi = 0; bi <= L - 2; bi++) {
      const res = 4 << bi;
      const pre = `synthesis.b${res}`;
      const C = chan(res);
      const last = res === cfg.img_resolution;
      if (bi === 0) {
        const k = P(`${pre}.const`);
        h = { c: C, h: 4, w: 4, d: Float64Array.from(k) };
        h = layer(`${pre}.conv1`, h, ws[0], C, res, false, 1);
      } else if (sk.architecture === "resnet") {
        const skipW = P(`${pre}.skip.weight`).map((v) => v / Math.sqrt(h!.c));
        const y = conv(upfirdn(h!, f, fk, 2, 1, [2, 1, 2, 1], 4), skipW, C, 1, 0, false);
        // The skip conv is built without conv_clamp upstream: only its sqrt(0.5) gain applies.
        for (const [i, v] of y.d.entries()) y.d[i] = v * Math.SQRT1_2;
        let m = layer(`${pre}.conv0`, h!, ws[2 * bi - 1], C, res, true, 1);
        m = layer(`${pre}.conv1`, m, ws[2 * bi], C, res, false, Math.SQRT1_2);
        h = { ...m, d: m.d.map((v, i) => v + y.d[i]) };
      } else {
        h = layer(`${pre}.conv0`, h!, ws[2 * bi - 1], C, res, true, 1);
        h = layer(`${pre}.conv1`, h, ws[2 * bi], C, res, false, 1);
      }
      if (rgb) rgb = upfirdn(rgb, f, fk, 2, 1, [2, 1, 2, 1], 4);
      if (last || sk.architecture === "skip") {
        const y = torgb(`${pre}.torgb`, h!, ws[2 * bi + 1]);
        rgb = rgb ? { ...y, d: y.d.map((v, i) => v + rgb!.d[i]) } : y;
      }
    }
    out.imgs.push(rgb!);
  }
  return out;
}

// ---------- the checks ----------
const CONFIGS: { name: string; cfg: StyleGAN2ConfigInput; psi: number; cutoff: number | null; noise: "const" | "none"; batch: number }[] = [
  {
    name: "resnet 32, c_dim 5 + embed_features, clamping conv_clamp, psi 0.6 cutoff 3",
    cfg: {
      z_dim: 12, w_dim: 8, c_dim: 5, img_resolution: 32, img_channels: 3,
      mapping_kwargs: { num_layers: 3, embed_features: 6, layer_features: 10 },
      synthesis_kwargs: { architecture: "resnet", channel_base: 128, channel_max: 12, conv_clamp: 0.5 },
    },
    psi: 0.6, cutoff: 3, noise: "const", batch: 2,
  },
  {
    name: "orig 16, unconditional, psi 1, noise none",
    cfg: { z_dim: 8, w_dim: 8, img_resolution: 16, mapping_kwargs: { num_layers: 2 }, synthesis_kwargs: { architecture: "orig", channel_base: 64, channel_max: 8 } },
    psi: 1, cutoff: null, noise: "none", batch: 2,
  },
  {
    name: "skip 16, z_dim 0 (class only), 1 channel, psi 0.3",
    cfg: { z_dim: 0, w_dim: 6, c_dim: 3, img_resolution: 16, img_channels: 1, mapping_kwargs: { num_layers: 1 }, synthesis_kwargs: { channel_base: 64, channel_max: 8, conv_clamp: 256 } },
    psi: 0.3, cutoff: null, noise: "const", batch: 3,
  },
  {
    name: "res 4 (single block), skip",
    cfg: { z_dim: 4, w_dim: 4, img_resolution: 4, mapping_kwargs: { num_layers: 2 }, synthesis_kwargs: { channel_base: 32, channel_max: 8 } },
    psi: 1, cutoff: null, noise: "const", batch: 1,
  },
];

describe("stylegan2 vs. an independent float64 reference", () => {
  for (const backend of ["wasm", "cpu"])
    for (const { name, cfg: raw, psi, cutoff, noise, batch } of CONFIGS)
      it(`${name} on ${backend}`, async () => {
        await tf.setBackend(backend);
        await tf.ready();
        const cfg = parseConfig(raw);
        const init = StyleGAN2Generator.randomInit(cfg, 5);
        const sd = perturbed(init.stateDict(), cfg, 11);
        init.dispose();
        const g = StyleGAN2Generator.fromStateDict(cfg, sd);
        const r = rng(3);
        const z = Array.from({ length: batch }, () => Array.from({ length: cfg.z_dim }, r.n));
        const cls = cfg.c_dim ? Array.from({ length: batch }, (_, i) => (2 * i + 1) % cfg.c_dim) : null;
        const ref = reference(cfg, paramsOf(sd), z, cls, psi, cutoff, noise);

        const [ws, im] = tf.tidy(() => {
          const zt = cfg.z_dim ? tf.tensor2d(z.flat(), [batch, cfg.z_dim]) : null;
          const ct = cls ? g.classLabels(cls) : null;
          const w = g.mapping(zt, ct, { truncation_psi: psi, truncation_cutoff: cutoff });
          return [w, g.synthesis(w, { noise_mode: noise })];
        });
        const wsGot = ws.dataSync();
        const wsWant = ref.ws.flat(2);
        const wsScale = Math.max(...wsWant.map(Math.abs));
        let wsDiff = 0;
        for (const [i, v] of wsWant.entries()) wsDiff = Math.max(wsDiff, Math.abs(v - wsGot[i]));

        const got = tf.tidy(() => tf.transpose(im, [0, 3, 1, 2])).dataSync();
        const want = ref.imgs.flatMap((x) => Array.from(x.d));
        expect(im.shape).toEqual([batch, cfg.img_resolution, cfg.img_resolution, cfg.img_channels]);
        const scale = Math.max(...want.map(Math.abs));
        let diff = 0;
        for (const [i, v] of want.entries()) diff = Math.max(diff, Math.abs(v - got[i]));
        console.log(`[stylegan2-ref] ${backend} ${name}: ws max|diff| ${wsDiff.toExponential(2)} (|ws| ${wsScale.toFixed(2)}), img max|diff| ${diff.toExponential(2)} (|img| ${scale.toFixed(2)})`);
        expect(scale).toBeGreaterThan(0);
        expect(wsDiff).toBeLessThanOrEqual(1e-5 * Math.max(1, wsScale));
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
        tf.dispose([ws, im]);
        g.dispose();
      });
});

describe("stylegan2 gradients vs. float64 finite differences of the reference", () => {
  const cases = [CONFIGS[0], { ...CONFIGS[1], cfg: { ...CONFIGS[1].cfg, synthesis_kwargs: { architecture: "skip", channel_base: 64, channel_max: 8 } } }];
  for (const { name, cfg: raw, psi, cutoff, noise, batch } of cases)
    it(`${name}: per-parameter-group directional derivatives (cpu)`, async () => {
      await tf.setBackend("cpu");
      await tf.ready();
      const cfg = parseConfig(raw);
      const init = StyleGAN2Generator.randomInit(cfg, 5);
      const sd = perturbed(init.stateDict(), cfg, 11);
      init.dispose();
      const g = StyleGAN2Generator.fromStateDict(cfg, sd);
      const r = rng(3);
      const z = Array.from({ length: batch }, () => Array.from({ length: cfg.z_dim }, r.n));
      const cls = cfg.c_dim ? Array.from({ length: batch }, (_, i) => (2 * i + 1) % cfg.c_dim) : null;
      const res = cfg.img_resolution;
      const probeLen = batch * cfg.img_channels * res * res;
      const probe = Array.from({ length: probeLen }, r.n); // NCHW order
      const vars = g.trainableVariables();
      const names = [...vars.keys()];
      const { grads } = tf.tidy(() => {
        const zt = cfg.z_dim ? tf.tensor2d(z.flat(), [batch, cfg.z_dim]) : null;
        const ct = cls ? g.classLabels(cls) : null;
        const pr = tf.transpose(tf.tensor4d(probe, [batch, cfg.img_channels, res, res]), [0, 2, 3, 1]);
        const out = tf.variableGrads(() => tf.sum(tf.mul(g.generate(zt, ct, { truncation_psi: psi, truncation_cutoff: cutoff, noise_mode: noise }), pr)) as tf.Scalar, [...vars.values()]);
        return { grads: out.grads };
      });
      // Gradients come back in the TF layout; bring them to the official one to pair with the reference's params.
      const official = new Map<string, Float64Array>();
      const sdGrad = StyleGAN2Generator.fromStateDict(cfg, sd);
      // A parameter the loss does not touch (noise_strength under noise_mode "none") gets no gradient entry.
      for (const n of names) sdGrad.variable(n).assign(grads[vars.get(n)!.name] ?? tf.zerosLike(vars.get(n)!));
      for (const [n, t] of sdGrad.stateDict()) if (vars.has(n)) official.set(n, Float64Array.from(t.data as Float32Array));
      sdGrad.dispose();
      tf.dispose(Object.values(grads));

      const lossAt = (P: Params) => {
        const out = reference(cfg, P, z, cls, psi, cutoff, noise);
        let s = 0;
        for (const [n, im] of out.imgs.entries()) for (const [i, v] of im.d.entries()) s += v * probe[n * im.d.length + i];
        return s;
      };
      const base = paramsOf(sd);
      const groups: Record<string, (n: string) => boolean> = {
        mapping: (n) => n.startsWith("mapping."),
        affine: (n) => n.includes(".affine."),
        const: (n) => n.endsWith(".const"),
        conv_weight: (n) => /conv[01]\.weight$/.test(n),
        conv_bias: (n) => /conv[01]\.bias$/.test(n),
        noise_strength: (n) => n.endsWith("noise_strength"),
        torgb: (n) => /torgb\.(weight|bias)$/.test(n),
        skip: (n) => n.includes(".skip."),
      };
      const report: string[] = [];
      const checks: [string, number, number][] = [];
      for (const [gname, sel] of Object.entries(groups)) {
        const members = names.filter(sel);
        if (!members.length) continue;
        const dir = new Map(members.map((n) => [n, official.get(n)!.map(() => r.n())]));
        const analytic = members.reduce((a, n) => a + official.get(n)!.reduce((b, v, i) => b + v * dir.get(n)![i], 0), 0);
        // Small enough that (almost) no lrelu/clamp kink falls inside ±eps; float64 keeps the quotient exact.
        const eps = 1e-7;
        const shifted = (sign: number): Params => (n) => {
          const v = base(n);
          const d = dir.get(n);
          return d ? v.map((x, i) => x + sign * eps * d[i]) : v;
        };
        const numeric = (lossAt(shifted(1)) - lossAt(shifted(-1))) / (2 * eps);
        report.push(`${gname} ${analytic.toPrecision(5)}/${numeric.toPrecision(5)}`);
        checks.push([gname, Math.abs(analytic - numeric), 1e-3 * Math.max(1, Math.abs(numeric))]);
      }
      console.log(`[stylegan2-grad] ${name}: analytic/numeric ${report.join(", ")}`);
      for (const [gname, diff, tol] of checks) expect(diff, gname).toBeLessThanOrEqual(tol);
      g.dispose();
    });
});

describe("conv2dResample up-sampling vs. the generic upfirdn-then-conv definition (float64)", () => {
  // Generic definition (upstream's slow path, which its fast paths must equal): FIR-upsample with the padding
  // conv2d_resample computes, then a valid conv that is a true convolution unless flipWeight.
  const grid: { k: number; taps: number[]; up: number; pad: number; flipWeight: boolean; flipFilter: boolean }[] = [];
  for (const k of [1, 3, 5])
    for (const taps of [[1, 3, 3, 1], [1, 2, 1], [1, 1], [1, 4, 2], [3, 1, 0.5, 2]])
      for (const up of [2, 4])
        for (const flipFilter of [false, true]) grid.push({ k, taps, up, pad: Math.floor(k / 2), flipWeight: (k + up + taps.length) % 2 === 0, flipFilter });
  grid.push({ k: 3, taps: [1, 3, 3, 1], up: 2, pad: 0, flipWeight: false, flipFilter: false });
  grid.push({ k: 3, taps: [1, 3, 3, 1], up: 2, pad: 2, flipWeight: true, flipFilter: false });
  for (const backend of ["wasm", "cpu"])
    it(`${grid.length} shapes on ${backend}`, async () => {
      await tf.setBackend(backend);
      await tf.ready();
      const r = rng(17);
      for (const { k, taps, up, pad, flipWeight, flipFilter } of grid) {
        const [N, I, O, H, W] = [2, 3, 4, 5, 6];
        const x = Array.from({ length: N * I * H * W }, r.n);
        const w = Array.from({ length: O * I * k * k }, r.n);
        const fw = taps.length;
        const f2 = setupFilter(taps);
        const fData = Float64Array.from(f2.dataSync());
        const fUse = flipFilter ? fData.slice().reverse() : fData; // reversing a flat fw x fw filter flips both axes
        const p0 = pad + Math.floor((fw + up - 1) / 2);
        const p1 = pad + Math.floor((fw - up) / 2);
        const want: number[] = [];
        for (let n = 0; n < N; n++) {
          const xi: Img = { c: I, h: H, w: W, d: Float64Array.from(x.slice(n * I * H * W, (n + 1) * I * H * W)) };
          const u = upfirdn(xi, fUse, fw, up, 1, [p0, p1, p0, p1], up * up);
          want.push(...conv(u, Float64Array.from(w), O, k, 0, !flipWeight).d);
        }
        const got = tf.tidy(() => {
          const xt = tf.transpose(tf.tensor4d(x, [N, I, H, W]), [0, 2, 3, 1]) as tf.Tensor4D;
          const wt = tf.transpose(tf.tensor4d(w, [O, I, k, k]), [2, 3, 1, 0]) as tf.Tensor4D;
          const y = conv2dResample(xt, wt, { f: f2, up, padding: pad, flipWeight, flipFilter });
          return tf.transpose(y, [0, 3, 1, 2]);
        });
        const g = got.dataSync();
        const label = `k${k} taps[${taps}] up${up} pad${pad} flipW ${flipWeight} flipF ${flipFilter}`;
        expect(g.length, label).toBe(want.length);
        let diff = 0;
        for (const [i, v] of want.entries()) diff = Math.max(diff, Math.abs(v - g[i]));
        expect(diff, label).toBeLessThan(2e-5 * Math.max(1, ...want.map(Math.abs)));
        tf.dispose([got, f2]);
      }
    });
});

describe("upfirdn2d up-sampling (polyphase path) vs. the float64 definition", () => {
  for (const backend of ["wasm", "cpu"])
    it(`taps, factors, pads and filter flips on ${backend}`, async () => {
      await tf.setBackend(backend);
      await tf.ready();
      const r = rng(23);
      const [N, C, H, W] = [2, 3, 5, 4];
      for (const taps of [[1, 3, 3, 1], [1, 4, 2], [1, 1], [2, 1, 0.5, 3, 1]])
        for (const up of [2, 3])
          for (const flipFilter of [false, true])
            for (const pad of [[2, 1, 2, 1], [1, 3, 0, 2], [0, 0, 0, 0]] as [number, number, number, number][]) {
              const fw = taps.length;
              const x = Array.from({ length: N * C * H * W }, r.n);
              const f2 = setupFilter(taps);
              const fData = Float64Array.from(f2.dataSync());
              const want: number[] = [];
              for (let n = 0; n < N; n++) {
                const xi: Img = { c: C, h: H, w: W, d: Float64Array.from(x.slice(n * C * H * W, (n + 1) * C * H * W)) };
                want.push(...upfirdn(xi, flipFilter ? fData.slice().reverse() : fData, fw, up, 1, pad, 1.5).d);
              }
              const got = tf.tidy(() => {
                const xt = tf.transpose(tf.tensor4d(x, [N, C, H, W]), [0, 2, 3, 1]) as tf.Tensor4D;
                return tf.transpose(upfirdn2d(xt, f2, { up, padding: pad, gain: 1.5, flipFilter }), [0, 3, 1, 2]);
              });
              const g = got.dataSync();
              const label = `taps[${taps}] up${up} pad[${pad}] flipF ${flipFilter}`;
              expect(g.length, label).toBe(want.length);
              let diff = 0;
              for (const [i, v] of want.entries()) diff = Math.max(diff, Math.abs(v - g[i]));
              expect(diff, label).toBeLessThan(1e-5 * Math.max(1, ...want.map(Math.abs)));
              tf.dispose([got, f2]);
            }
    });
});
