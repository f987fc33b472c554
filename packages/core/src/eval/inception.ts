/**
 * pytorch-fid's FID Inception-v3 (`fid_inception_v3()` in mseitzer/pytorch-fid), the network behind published
 * FIDs, up to its 2048-d pool3 features, on tfjs-core ops so it runs on every backend. Weights come from the
 * pytorch-fid release file `pt_inception-2015-12-05-6726825d.pth` (a PyTorch port of TensorFlow's 2015-12-05
 * Inception graph) through our own checkpoint reader; nothing is downloaded.
 *
 * Structure: torchvision's Inception3(num_classes=1008, aux_logits=False) with pytorch-fid's patches:
 * Mixed_5b-d (InceptionA), Mixed_6b-e (InceptionC) and Mixed_7b (InceptionE) average-pool their pool branch
 * without counting the zero padding (TF's behaviour, count_include_pad=False), and Mixed_7c max-pools it.
 * Every BasicConv2d is conv (no bias) + BatchNorm(eps 0.001) + ReLU; the BatchNorm is folded into the conv
 * weights and a bias at load, so a layer is one fused conv + bias + ReLU.
 *
 * Input exactly as pytorch-fid's InceptionV3(resize_input=True, normalize_input=True): RGB in [0, 1] (8-bit
 * / 255, as torchvision's ToTensor), bilinear resize to 299×299 with align_corners=False — TF.js's
 * resizeBilinear with halfPixelCenters: true computes the same source coordinate (dst + 0.5)·in/out − 0.5,
 * clamped at 0, which packages/core/test/inception.test.ts checks against PyTorch on up- and downsampling —
 * then 2x − 1. NHWC throughout; PyTorch's NCHW channel order is kept in the concatenations, so feature j is
 * pytorch-fid's feature j.
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadCheckpoint } from "../checkpoints/index.ts";
import { CheckpointError, numel, toFloat32, type StateDict } from "../checkpoints/tensor.ts";
import type { RgbImage } from "../images/codec.ts";

/** The release file's name; its first 8 hex digits are the start of its SHA-256 (torch.hub's convention). */
export const INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth";
export const INCEPTION_WEIGHTS_SHA256_PREFIX = "6726825d";
export const INCEPTION_FEATURE_DIM = 2048;
export const INCEPTION_INPUT = 299;
const BN_EPS = 1e-3;
/** pytorch-fid's fc has 1008 outputs (the TF graph's classes); torchvision's ImageNet model has 1000. */
const FID_CLASSES = 1008;

export interface ConvSpec {
  /** BasicConv2d module path, e.g. "Mixed_5b.branch5x5_2": keys are `<name>.conv.weight` and `<name>.bn.*`. */
  name: string;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  stride: 1 | 2;
  /** PyTorch padding (kh−1)/2, (kw−1)/2 — at stride 1 that is TF's "same"; otherwise no padding. */
  same: boolean;
}

/** Every BasicConv2d of the network with its hyper-parameters, in module order (the table the loader checks). */
export const INCEPTION_CONVS: readonly ConvSpec[] = (() => {
  const out: ConvSpec[] = [];
  const c = (name: string, cin: number, cout: number, k: number | [number, number], opts: { stride?: 1 | 2; same?: boolean } = {}) => {
    const [kh, kw] = typeof k === "number" ? [k, k] : k;
    out.push({ name, cin, cout, kh, kw, stride: opts.stride ?? 1, same: opts.same ?? false });
  };
  const same = { same: true };
  c("Conv2d_1a_3x3", 3, 32, 3, { stride: 2 });
  c("Conv2d_2a_3x3", 32, 32, 3);
  c("Conv2d_2b_3x3", 32, 64, 3, same);
  c("Conv2d_3b_1x1", 64, 80, 1);
  c("Conv2d_4a_3x3", 80, 192, 3);
  const blockA = (m: string, cin: number, poolFeatures: number) => {
    c(`${m}.branch1x1`, cin, 64, 1);
    c(`${m}.branch5x5_1`, cin, 48, 1);
    c(`${m}.branch5x5_2`, 48, 64, 5, same);
    c(`${m}.branch3x3dbl_1`, cin, 64, 1);
    c(`${m}.branch3x3dbl_2`, 64, 96, 3, same);
    c(`${m}.branch3x3dbl_3`, 96, 96, 3, same);
    c(`${m}.branch_pool`, cin, poolFeatures, 1);
  };
  blockA("Mixed_5b", 192, 32);
  blockA("Mixed_5c", 256, 64);
  blockA("Mixed_5d", 288, 64);
  c("Mixed_6a.branch3x3", 288, 384, 3, { stride: 2 });
  c("Mixed_6a.branch3x3dbl_1", 288, 64, 1);
  c("Mixed_6a.branch3x3dbl_2", 64, 96, 3, same);
  c("Mixed_6a.branch3x3dbl_3", 96, 96, 3, { stride: 2 });
  const blockC = (m: string, c7: number) => {
    c(`${m}.branch1x1`, 768, 192, 1);
    c(`${m}.branch7x7_1`, 768, c7, 1);
    c(`${m}.branch7x7_2`, c7, c7, [1, 7], same);
    c(`${m}.branch7x7_3`, c7, 192, [7, 1], same);
    c(`${m}.branch7x7dbl_1`, 768, c7, 1);
    c(`${m}.branch7x7dbl_2`, c7, c7, [7, 1], same);
    c(`${m}.branch7x7dbl_3`, c7, c7, [1, 7], same);
    c(`${m}.branch7x7dbl_4`, c7, c7, [7, 1], same);
    c(`${m}.branch7x7dbl_5`, c7, 192, [1, 7], same);
    c(`${m}.branch_pool`, 768, 192, 1);
  };
  blockC("Mixed_6b", 128);
  blockC("Mixed_6c", 160);
  blockC("Mixed_6d", 160);
  blockC("Mixed_6e", 192);
  c("Mixed_7a.branch3x3_1", 768, 192, 1);
  c("Mixed_7a.branch3x3_2", 192, 320, 3, { stride: 2 });
  c("Mixed_7a.branch7x7x3_1", 768, 192, 1);
  c("Mixed_7a.branch7x7x3_2", 192, 192, [1, 7], same);
  c("Mixed_7a.branch7x7x3_3", 192, 192, [7, 1], same);
  c("Mixed_7a.branch7x7x3_4", 192, 192, 3, { stride: 2 });
  const blockE = (m: string, cin: number) => {
    c(`${m}.branch1x1`, cin, 320, 1);
    c(`${m}.branch3x3_1`, cin, 384, 1);
    c(`${m}.branch3x3_2a`, 384, 384, [1, 3], same);
    c(`${m}.branch3x3_2b`, 384, 384, [3, 1], same);
    c(`${m}.branch3x3dbl_1`, cin, 448, 1);
    c(`${m}.branch3x3dbl_2`, 448, 384, 3, same);
    c(`${m}.branch3x3dbl_3a`, 384, 384, [1, 3], same);
    c(`${m}.branch3x3dbl_3b`, 384, 384, [3, 1], same);
    c(`${m}.branch_pool`, cin, 192, 1);
  };
  blockE("Mixed_7b", 1280);
  blockE("Mixed_7c", 2048);
  return out;
})();

/** The state-dict keys one BasicConv2d reads, with their PyTorch shapes. */
export function convKeys(s: ConvSpec): [string, number[]][] {
  return [
    [`${s.name}.conv.weight`, [s.cout, s.cin, s.kh, s.kw]],
    [`${s.name}.bn.weight`, [s.cout]],
    [`${s.name}.bn.bias`, [s.cout]],
    [`${s.name}.bn.running_mean`, [s.cout]],
    [`${s.name}.bn.running_var`, [s.cout]],
  ];
}

interface FoldedConv {
  spec: ConvSpec;
  /** HWIO, BatchNorm scale folded in */
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
}

/** Tells torchvision's ImageNet Inception (a different network and weights) apart from pytorch-fid's. */
function checkIsFidInception(sd: StateDict, file: string): void {
  const fc = sd.get("fc.weight");
  if (fc && fc.shape.length === 2 && fc.shape[0] !== FID_CLASSES)
    throw new CheckpointError(
      file,
      `fc.weight is [${fc.shape}], pytorch-fid's FID Inception has [${FID_CLASSES}, 2048]: ` +
        (fc.shape[0] === 1000 ? "this looks like torchvision's ImageNet Inception-v3, whose features give FIDs that are not comparable" : "not the FID Inception weights"),
    );
  if ([...sd.keys()].some((k) => k.startsWith("AuxLogits.")))
    throw new CheckpointError(file, "has AuxLogits.* weights: this looks like torchvision's ImageNet Inception-v3, not pytorch-fid's FID Inception (which has no aux head)");
}

export class InceptionV3 {
  private constructor(private readonly convs: Map<string, FoldedConv>) {}

  /**
   * From a state dict with pytorch-fid's key names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_var`, …).
   * Every key the features need must be there with its exact shape; extra keys (fc.*, num_batches_tracked) are ignored.
   */
  static fromStateDict(sd: StateDict, file = "inception weights"): InceptionV3 {
    checkIsFidInception(sd, file);
    const weights = new Map<string, Float32Array>();
    for (const spec of INCEPTION_CONVS)
      for (const [key, shape] of convKeys(spec)) {
        const t = sd.get(key);
        if (!t) throw new CheckpointError(file, `${key} is missing (expected a [${shape}] tensor): not pytorch-fid's FID Inception weights`);
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
          throw new CheckpointError(file, `${key} is [${t.shape}], expected [${shape}]`);
        if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64")
          throw new CheckpointError(file, `${key} is ${t.dtype}, expected a floating-point tensor`);
        weights.set(key, toFloat32(t));
      }
    const convs = new Map<string, FoldedConv>();
    try {
      for (const spec of INCEPTION_CONVS) {
        const { filter, bias } = foldBatchNorm(spec, (leaf) => weights.get(`${spec.name}.${leaf}`)!);
        convs.set(spec.name, {
          spec,
          filter: tf.tensor4d(filter, [spec.kh, spec.kw, spec.cin, spec.cout]),
          bias: tf.tensor1d(bias),
        });
      }
    } catch (e) {
      for (const c of convs.values()) tf.dispose([c.filter, c.bias]);
      throw e;
    }
    return new InceptionV3(convs);
  }

  /** A torch.save file (zip or legacy) or safetensors holding the state dict, e.g. pytorch-fid's release file. */
  static async fromBytes(bytes: Uint8Array, file: string): Promise<InceptionV3> {
    const { stateDict } = await loadCheckpoint(bytes, file);
    return InceptionV3.fromStateDict(stateDict, file);
  }

  private layer(name: string, x: tf.Tensor4D): tf.Tensor4D {
    const c = this.convs.get(name)!;
    return tf.fused.conv2d({ x, filter: c.filter, strides: c.spec.stride, pad: c.spec.same ? "same" : "valid", bias: c.bias, activation: "relu" });
  }

  private chain(x: tf.Tensor4D, ...names: string[]): tf.Tensor4D {
    return names.reduce((h, n) => this.layer(n, h), x);
  }

  private blockA(m: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat(
      [
        this.layer(`${m}.branch1x1`, x),
        this.chain(x, `${m}.branch5x5_1`, `${m}.branch5x5_2`),
        this.chain(x, `${m}.branch3x3dbl_1`, `${m}.branch3x3dbl_2`, `${m}.branch3x3dbl_3`),
        this.layer(`${m}.branch_pool`, avgPoolExcludingPad(x)),
      ],
      3,
    );
  }

  private blockB(m: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat(
      [this.layer(`${m}.branch3x3`, x), this.chain(x, `${m}.branch3x3dbl_1`, `${m}.branch3x3dbl_2`, `${m}.branch3x3dbl_3`), tf.maxPool(x, 3, 2, "valid")],
      3,
    );
  }

  private blockC(m: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat(
      [
        this.layer(`${m}.branch1x1`, x),
        this.chain(x, `${m}.branch7x7_1`, `${m}.branch7x7_2`, `${m}.branch7x7_3`),
        this.chain(x, `${m}.branch7x7dbl_1`, `${m}.branch7x7dbl_2`, `${m}.branch7x7dbl_3`, `${m}.branch7x7dbl_4`, `${m}.branch7x7dbl_5`),
        this.layer(`${m}.branch_pool`, avgPoolExcludingPad(x)),
      ],
      3,
    );
  }

  private blockD(m: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat(
      [
        this.chain(x, `${m}.branch3x3_1`, `${m}.branch3x3_2`),
        this.chain(x, `${m}.branch7x7x3_1`, `${m}.branch7x7x3_2`, `${m}.branch7x7x3_3`, `${m}.branch7x7x3_4`),
        tf.maxPool(x, 3, 2, "valid"),
      ],
      3,
    );
  }

  /** FIDInceptionE_1 (pool "avg", count_include_pad=False) and FIDInceptionE_2 (pool "max"). */
  private blockE(m: string, x: tf.Tensor4D, pool: "avg" | "max"): tf.Tensor4D {
    const b3 = this.layer(`${m}.branch3x3_1`, x);
    const d3 = this.chain(x, `${m}.branch3x3dbl_1`, `${m}.branch3x3dbl_2`);
    return tf.concat(
      [
        this.layer(`${m}.branch1x1`, x),
        this.layer(`${m}.branch3x3_2a`, b3),
        this.layer(`${m}.branch3x3_2b`, b3),
        this.layer(`${m}.branch3x3dbl_3a`, d3),
        this.layer(`${m}.branch3x3dbl_3b`, d3),
        this.layer(`${m}.branch_pool`, pool === "avg" ? avgPoolExcludingPad(x) : tf.maxPool(x, 3, 1, "same")),
      ],
      3,
    );
  }

  /**
   * x: [N, 299, 299, 3] already normalised to [−1, 1] → the block outputs pytorch-fid names 0–3 (block 3 is the
   * pool3 features [N, 2048]; blocks 0–2 are the feature maps after maxpool1, maxpool2 and Mixed_6e).
   */
  blocks(x: tf.Tensor4D): { block0: tf.Tensor4D; block1: tf.Tensor4D; block2: tf.Tensor4D; pool3: tf.Tensor2D } {
    const block0 = tf.maxPool(this.chain(x, "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"), 3, 2, "valid");
    const block1 = tf.maxPool(this.chain(block0, "Conv2d_3b_1x1", "Conv2d_4a_3x3"), 3, 2, "valid");
    let h = block1;
    for (const m of ["Mixed_5b", "Mixed_5c", "Mixed_5d"]) h = this.blockA(m, h);
    h = this.blockB("Mixed_6a", h);
    for (const m of ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]) h = this.blockC(m, h);
    const block2 = h;
    h = this.blockD("Mixed_7a", h);
    h = this.blockE("Mixed_7b", h, "avg");
    h = this.blockE("Mixed_7c", h, "max");
    return { block0, block1, block2, pool3: tf.mean(h, [1, 2]) as tf.Tensor2D };
  }

  /** x: [N, H, W, 3] RGB in [0, 1], any size → pool3 features [N, 2048] (resize to 299 and 2x − 1 included). */
  features(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.blocks(preprocess(x)).pool3);
  }

  dispose(): void {
    for (const c of this.convs.values()) tf.dispose([c.filter, c.bias]);
    this.convs.clear();
  }
}

/** conv(x)·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε)), with the OIHW weight rearranged to HWIO; computed in float64. */
export function foldBatchNorm(spec: ConvSpec, get: (leaf: "conv.weight" | "bn.weight" | "bn.bias" | "bn.running_mean" | "bn.running_var") => Float32Array) {
  const { cin, cout, kh, kw } = spec;
  const w = get("conv.weight");
  const gamma = get("bn.weight");
  const beta = get("bn.bias");
  const mean = get("bn.running_mean");
  const variance = get("bn.running_var");
  const filter = new Float32Array(numel([kh, kw, cin, cout]));
  const bias = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    const scale = gamma[o] / Math.sqrt(variance[o] + BN_EPS);
    bias[o] = beta[o] - mean[o] * scale;
    for (let i = 0; i < cin; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) filter[((y * kw + x) * cin + i) * cout + o] = w[((o * cin + i) * kh + y) * kw + x] * scale;
  }
  return { filter, bias };
}

/** 3×3, stride 1, padding 1, count_include_pad=False: TF's "same" average pool divides by the in-bounds count. */
function avgPoolExcludingPad(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 3, 1, "same");
}

/** [N, H, W, 3] in [0, 1] → [N, 299, 299, 3] in [−1, 1]: F.interpolate(bilinear, align_corners=False), then 2x − 1. */
export function preprocess(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const r = x.shape[1] === INCEPTION_INPUT && x.shape[2] === INCEPTION_INPUT ? x : tf.image.resizeBilinear(x, [INCEPTION_INPUT, INCEPTION_INPUT], false, true);
    return tf.sub(tf.mul(r, 2), 1) as tf.Tensor4D;
  });
}

/** HWC uint8 images → [N, H, W, 3] in [0, 1] (as torchvision's ToTensor); all must share one size. */
export function rgbBatch(images: readonly RgbImage[]): tf.Tensor4D {
  const { width: w, height: h } = images[0];
  const x = new Float32Array(images.length * h * w * 3);
  images.forEach((img, k) => {
    if (img.width !== w || img.height !== h) throw new Error(`images in one batch must share a size: ${img.width}×${img.height} vs ${w}×${h}`);
    if (img.data.length !== w * h * 3) throw new Error(`image ${k} has ${img.data.length} bytes, expected ${w * h * 3} (RGB)`);
    for (let i = 0; i < img.data.length; i++) x[k * w * h * 3 + i] = img.data[i] / 255;
  });
  return tf.tensor4d(x, [images.length, h, w, 3]);
}

export interface FeatureProgress {
  done: number;
  total: number;
}

/**
 * pool3 features of many 8-bit RGB images, in batches of equal-sized images: row-major [N, 2048] in input order.
 * `onProgress` is called after every batch.
 */
export async function inceptionFeatures(
  net: InceptionV3,
  images: readonly RgbImage[],
  opts: { batch?: number; onProgress?: (p: FeatureProgress) => void } = {},
): Promise<Float32Array> {
  const batch = opts.batch ?? 8;
  const out = new Float32Array(images.length * INCEPTION_FEATURE_DIM);
  let done = 0;
  for (let i = 0; i < images.length; ) {
    // A batch is a run of same-sized images (a dataset of mixed sizes just makes smaller batches).
    let j = i + 1;
    while (j < images.length && j - i < batch && images[j].width === images[i].width && images[j].height === images[i].height) j++;
    const f = tf.tidy(() => net.features(rgbBatch(images.slice(i, j))));
    out.set((await f.data()) as Float32Array, i * INCEPTION_FEATURE_DIM);
    f.dispose();
    done += j - i;
    i = j;
    opts.onProgress?.({ done, total: images.length });
  }
  return out;
}
