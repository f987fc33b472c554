/**
 * Makes GAN training work on the wasm backend. `wasm-gradient-probe.ts` runs every op our networks use
 * on wasm and cpu; what it found broken is fixed here, each fix built only from kernels wasm has:
 *
 * - wasm kernels that do not exist (tfjs#8474), so backprop through the op throws on wasm:
 *   Conv2DBackpropFilter (conv2d and conv2dTranspose filter grads), DepthwiseConv2dNativeBackpropInput
 *   and DepthwiseConv2dNativeBackpropFilter (StyleGAN2 FIR filtering), UnsortedSegmentSum (gather grad).
 * - gradients that do not exist on any backend: DepthToSpace, GatherNd, and the comparison ops
 *   (Greater, Less, ...) whose outputs feed tf.where inside a differentiated graph.
 * - one gradient that exists but is wrong on every backend: MirrorPad (see `mirrorPadGradient`).
 *
 * Kernels are registered for 'wasm' only and only where wasm has none, so a tfjs release that ships its
 * own kernel wins; the one exception is Conv2DBackpropInput, whose wasm kernel is wrapped with a faster
 * form (`conv2DBackpropInputVia`, measured by bench:train). Gradients are backend-independent
 * in tfjs, so those are global.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WasmMemoryBackend } from "./split-flat.ts";

type Attrs = tf.NamedAttrMap;
type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;

/** Kernel inputs are Tensors when called through ops, bare TensorInfos when called by other kernels. */
function asTensor(info: tf.TensorInfo | undefined): tf.Tensor {
  if (info === undefined) throw new Error("wasm-gradients: kernel called without a required input");
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}

/** Pads (positive) or crops (negative) one spatial axis of an NHWC tensor. */
function padOrCrop(t: tf.Tensor4D, axis: 1 | 2, before: number, after: number): tf.Tensor4D {
  if (before < 0 || after < 0) {
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = Math.max(0, -before);
    size[axis] = t.shape[axis] - begin[axis] - Math.max(0, -after);
    t = tf.slice(t, begin, size);
  }
  if (before > 0 || after > 0) {
    const pads: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
    pads[axis] = [Math.max(0, before), Math.max(0, after)];
    t = tf.pad(t, pads);
  }
  return t;
}

/** Zero-pads x by the conv's top/left/bottom/right padding so every window is an in-bounds slice. */
function padInput(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { top, bottom, left, right } = info.padInfo;
  // 'same' can need less than the full bottom/right pad the formula reports; extra rows are never read.
  return padOrCrop(padOrCrop(x, 1, top, bottom), 2, left, right);
}

/**
 * The windows of x that each filter tap (i, j) sees across all output positions: [n, outH, outW, c].
 * wasm's StridedSlice is slow (50 ms of a 52 ms backprop in the probe), so x is split once into stride
 * phases by reshape + transpose and every tap is a plain slice.
 */
function tapWindows(xPad: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): (i: number, j: number) => tf.Tensor {
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, outHeight: oh, outWidth: ow } = info;
  const [n, , , c] = xPad.shape;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  // Enough rows for the furthest tap, rounded up to whole phases.
  const hq = Math.ceil(Math.max(xPad.shape[1], (kh - 1) * dh + (oh - 1) * sh + 1) / sh);
  const wq = Math.ceil(Math.max(xPad.shape[2], (kw - 1) * dw + (ow - 1) * sw + 1) / sw);
  const fitted = padOrCrop(padOrCrop(xPad, 1, 0, hq * sh - xPad.shape[1]), 2, 0, wq * sw - xPad.shape[2]);
  // Phases stacked on the leading axis: wasm's Slice has a fast path only up to rank 4.
  const phases = tf.reshape(tf.transpose(tf.reshape(fitted, [n, hq, sh, wq, sw, c]), [2, 4, 0, 1, 3, 5]), [sh * sw * n, hq, wq, c]);
  return (i, j) => {
    const [r, q] = [i * dh, j * dw];
    const row = ((r % sh) * sw + (q % sw)) * n;
    return tf.slice(phases, [row, Math.floor(r / sh), Math.floor(q / sw), 0], [n, oh, ow, c]);
  };
}

const toNHWC = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]);

/**
 * Filter gradient of conv2d, which wasm lacks; conv2d and conv2dTranspose both need it. Two forms, each used where
 * it measured faster (old and new kernel alternated step by step in one process, SPADE, CycleGAN and StyleGAN2
 * demo steps):
 * - at stride 1 with 4 or more output channels, one matrix product (`filterGradAsMatMul`): 20-50 % less time
 *   on the generators' 3×3 convs, a fifth off this kernel's share of a SPADE step;
 * - otherwise one convolution (`filterGradAsConv`). Strided, the matMul form needs x split into stride phases,
 *   which cost more than it saved (2× slower on SPADE's 4×4/2 discriminator input layer); with 1 output channel
 *   the GEMM runs XNNPACK's output tiles nearly empty (2× slower on the discriminators' last layer; 3 was even).
 * tfjs has no dilated Conv2DBackpropFilter.
 */
function conv2DBackpropFilter({ inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: Attrs }): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  return tf.tidy(() => {
    let x = asTensor(inputs.x) as tf.Tensor4D;
    let dy = asTensor(inputs.dy) as tf.Tensor4D;
    if (dataFormat === "NCHW") [x, dy] = [toNHWC(x), toNHWC(dy)];
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad as Pad, dimRoundingMode, false, "channelsLast");
    const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
    const [kh, kw] = filterShape;
    const xPad = padInput(x, info);
    // Exactly the rows and columns some output reads.
    const fitted = padOrCrop(padOrCrop(xPad, 1, 0, (oh - 1) * sh + kh - xPad.shape[1]), 2, 0, (ow - 1) * sw + kw - xPad.shape[2]);
    return sh === 1 && sw === 1 && filterShape[3] >= 4 ? filterGradAsMatMul(fitted, dy, filterShape) : filterGradAsConv(fitted, dy, [sh, sw]);
  });
}

/**
 * dW[(i, j, c), o] = Σ over (n, p, q) of cols[(i, j, c), (n, p, q)] · dy[(n, p, q), o], where row (i, j, c) of
 * `cols` is channel c of every window's tap (i, j) (im2col, transposed; see `im2ColTKernel`). The product comes
 * out in HWIO order and dy is already [n·p·q, o], so only x is transposed, and wasm runs a matMul without
 * transpose flags as one XNNPACK GEMM (a flag sends it to a plain loop). `x` is padded and fitted, stride 1.
 */
function filterGradAsMatMul(x: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw, cin, cout]: number[]): tf.Tensor {
  const xT = tf.transpose(x, [3, 0, 1, 2]);
  // cols has a column for every x column q < W (see im2ColTKernel); those past outW meet zero rows of dy.
  const dyCols = tf.reshape(tf.pad(dy, [[0, 0], [0, 0], [0, x.shape[2] - dy.shape[2]], [0, 0]]), [-1, cout]);
  // cols is kh·kw times x: built a few filter rows at a time where it would pass COLS_LIMIT floats (never fewer
  // than one row, which alone may pass it: the limit bounds the common case, not every shape).
  const perRow = kw * cin * dyCols.shape[0];
  const rowsAtOnce = Math.max(1, Math.min(kh, Math.floor(COLS_LIMIT / perRow)));
  const parts: tf.Tensor[] = [];
  for (let i0 = 0; i0 < kh; i0 += rowsAtOnce) {
    const attrs = { kh, kw, rows: [i0, Math.min(kh, i0 + rowsAtOnce)] };
    parts.push(tf.matMul(tf.engine().runKernel(IM2COL_T, { x: xT }, attrs as unknown as Attrs) as tf.Tensor2D, dyCols));
  }
  return tf.reshape(parts.length === 1 ? parts[0] : tf.concat(parts, 0), [kh, kw, cin, cout]);
}

/** 2^24 floats, 64 MiB: SPADE's 3×3 64-channel convs at 256×256, batch 2, would otherwise need 300 MiB of cols. */
const COLS_LIMIT = 2 ** 24;

/**
 * One convolution, the batch playing the channels: a VALID conv2d of x transposed to [c_in, H, W, N] with dy
 * transposed to an [outH, outW, N, c_out] filter dilated by the forward stride, the result transposed to HWIO.
 * `x` is padded and fitted.
 */
function filterGradAsConv(x: tf.Tensor4D, dy: tf.Tensor4D, strides: [number, number]): tf.Tensor {
  const g = tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, "valid", "NHWC", strides);
  return tf.transpose(g, [1, 2, 0, 3]);
}

/**
 * The transposed im2col of a stride-1 conv's windows over the padded, channels-first x [c, n, H, W], for the
 * filter rows i in attrs.rows: row (i, j, ch) holds x[ch, n, p + i, q + j] over columns (n, p, q). The columns
 * run over q < W rather than q < outW, so that per batch item a row is one contiguous stretch of x, moved with
 * TypedArray.set, a native memmove (element by element in JS it cost 3 ns an element and lost to the conv
 * form). The extra columns q ≥ outW read the start of the next row of x (finite values; the last j, past the
 * item's end, are zeroed) and the caller gives them zero rows of dy, so they add exact zeros.
 */
const IM2COL_T = "GanserveIm2ColT";

function im2ColTKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { kh, kw, rows } = attrs as unknown as { kh: number; kw: number; rows: [number, number] };
  const b = backend as WasmMemoryBackend;
  const x = inputs.x as tf.TensorInfo;
  const [c, n, h, w] = x.shape;
  const run = (h - kh + 1) * w;
  const info = b.makeOutput([(rows[1] - rows[0]) * kw * c, n * run], "float32");
  // Heap views, not copies, taken after the allocation (growing the heap would detach earlier ones).
  const out = b.typedArrayFromHeap(info);
  const src = b.typedArrayFromHeap(x);
  let d = 0;
  for (let i = rows[0]; i < rows[1]; i++)
    for (let j = 0; j < kw; j++)
      for (let ch = 0; ch < c; ch++)
        for (let bn = 0; bn < n; bn++, d += run) {
          const from = ((ch * n + bn) * h + i) * w + j;
          out.set(src.subarray(from, from + run - j), d);
          out.fill(0, d + run - j, d + run);
        }
  return info;
}

/**
 * Input gradient of depthwiseConv2d, which wasm lacks (StyleGAN2's FIR up/down filters use it): the
 * transposed depthwise conv, i.e. a stride-1 depthwise conv of the zero-upsampled dy with the flipped
 * filter. A channel multiplier > 1 is a depthwise conv over c*mult channels then a sum over mult.
 */
function depthwiseConv2dNativeBackpropInput({ inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: Attrs }): tf.TensorInfo {
  const { strides, pad, dilations, dimRoundingMode, inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  return tf.tidy(() => {
    const dy = asTensor(inputs.dy) as tf.Tensor4D;
    const filter = asTensor(inputs.filter) as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, dilations, pad as Pad, dimRoundingMode, true);
    const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, inHeight, inWidth } = info;
    const [n, oh, ow, ch] = dy.shape;
    const [kh, kw, cin, mult] = filter.shape;
    let up: tf.Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      // Zero insertion: [n, oh, 1, ow, 1, ch] padded to [n, oh, sh, ow, sw, ch], flattened, tail trimmed.
      const spread = tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, ch]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
      up = tf.slice(tf.reshape(spread, [n, oh * sh, ow * sw, ch]), [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, ch]) as tf.Tensor4D;
    }
    const effH = (kh - 1) * dh;
    const effW = (kw - 1) * dw;
    const { top, left } = info.padInfo;
    up = padOrCrop(up, 1, effH - top, inHeight + effH - (effH - top) - up.shape[1]);
    up = padOrCrop(up, 2, effW - left, inWidth + effW - (effW - left) - up.shape[2]);
    const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, cin * mult, 1]) as tf.Tensor4D;
    const dx = tf.depthwiseConv2d(up, flipped, 1, "valid", "NHWC", [dh, dw]);
    return mult === 1 ? dx : tf.sum(tf.reshape(dx, [n, inHeight, inWidth, cin, mult]), 4);
  });
}

/**
 * Filter gradient of depthwiseConv2d, which wasm lacks. Per tap it is an elementwise product of the
 * tap's input window with dy, reduced over batch and space; kh*kw is small (FIR kernels are 4x4).
 */
function depthwiseConv2dNativeBackpropFilter({ inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: Attrs }): tf.TensorInfo {
  const { strides, pad, dilations, dimRoundingMode, filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  return tf.tidy(() => {
    const x = asTensor(inputs.x) as tf.Tensor4D;
    const dy = asTensor(inputs.dy) as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, dilations, pad as Pad, dimRoundingMode, true);
    const [kh, kw, cin, mult] = filterShape;
    const [n, oh, ow] = dy.shape;
    const dy5 = tf.reshape(dy, [n, oh, ow, cin, mult]);
    const window = tapWindows(padInput(x, info), info);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tf.sum(tf.mul(tf.reshape(window(i, j), [n, oh, ow, cin, 1]), dy5), [0, 1, 2]));
    return tf.reshape(tf.stack(taps), filterShape);
  });
}

/**
 * wasm lacks UnsortedSegmentSum, which the gather gradient calls. ScatterNd sums duplicate indices, which
 * is exactly a segment sum. TF drops out-of-range ids; they are routed to a spare row that is cut off,
 * because ScatterNd on wasm does not bounds-check.
 */
function unsortedSegmentSum({ inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: Attrs }): tf.TensorInfo {
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  return tf.tidy(() => {
    const x = asTensor(inputs.x);
    const ids = tf.cast(asTensor(inputs.segmentIds), "int32");
    const rest = x.shape.slice(ids.rank);
    const flatIds = tf.reshape(ids, [ids.size]);
    const valid = tf.logicalAnd(tf.greaterEqual(flatIds, 0), tf.less(flatIds, numSegments));
    const safeIds = tf.where(valid, flatIds, tf.fill([ids.size], numSegments, "int32"));
    const updates = tf.reshape(x, [ids.size, ...rest]);
    const summed = tf.scatterND(tf.reshape(safeIds, [ids.size, 1]), updates, [numSegments + 1, ...rest]);
    return tf.slice(summed, 0, numSegments);
  });
}

/**
 * A conv filter [kh, kw, in, out] rotated 180° with its channels swapped, [kh, kw, out, in], in one pass in JS
 * over the heap: as reverse + transpose it was two kernels, and wasm's Reverse alone cost more than the
 * convolution it feeds at CycleGAN's filter sizes (`npm run bench:train -- --profile`).
 */
const FLIP_FILTER = "GanserveFlipFilter";

function flipFilterKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const b = backend as WasmMemoryBackend;
  const f = inputs.filter as tf.TensorInfo;
  const [kh, kw, ci, co] = f.shape;
  const info = b.makeOutput([kh, kw, co, ci], "float32");
  // Heap views, not copies, taken after the allocation (growing the heap would detach earlier ones).
  const src = b.typedArrayFromHeap(f);
  const out = b.typedArrayFromHeap(info);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const from = ((kh - 1 - i) * kw + (kw - 1 - j)) * ci * co;
      const to = (i * kw + j) * co * ci;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) out[to + o * ci + c] = src[from + c * co + o];
    }
  return info;
}

/**
 * wasm's own Conv2DBackpropInput (the input gradient of conv2d, and conv2dTranspose's forward) is a plain
 * loop, several times slower than the same product run by XNNPACK:
 * - at stride 1, a "full" conv2d of dy with the filter rotated 180° and its channels swapped (64×64×16 at
 *   batch 2: 70 → 34 ms; 32×32×64: 236 → 27 ms);
 * - strided, one GEMM and a scatter (`backpropInputAsMatMul`): SPADE's 4×4/2 discriminator layers at batch 4,
 *   64×64×11 ← 33×33×16: 13.7 → 3.7 ms, 33×33×16 ← 17×17×32: 6.0 → 1.3 ms; a SPADE step 5 %, a StyleGAN2 step
 *   18 % less CPU time (old and new kernel alternated in one process). As a conv it would need dy
 *   zero-inserted, stride² times the work, which measured slower than the plain loop.
 * NCHW keeps wasm's kernel, and so does a strided one whose cols would pass COLS_LIMIT.
 * Wrapped, not replaced: `native` is wasm's kernel.
 */
function conv2DBackpropInputVia(native: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const [sh, sw] = typeof strides === "number" ? [strides, strides] : strides;
    if (dataFormat === "NCHW") return native(args);
    const filterShape = (args.inputs.filter as tf.TensorInfo).shape;
    const cols = (args.inputs.dy as tf.TensorInfo).shape.slice(0, 3).reduce((a, b) => a * b, 1) * filterShape[0] * filterShape[1] * filterShape[2];
    if ((sh !== 1 || sw !== 1) && cols > COLS_LIMIT) return native(args);
    return tf.tidy(() => {
      const dy = asTensor(args.inputs.dy) as tf.Tensor4D;
      const filter = asTensor(args.inputs.filter) as tf.Tensor4D;
      const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, [sh, sw], 1, pad as Pad, dimRoundingMode, false, "channelsLast");
      if (sh !== 1 || sw !== 1) return backpropInputAsMatMul(dy, filter, info);
      const [kh, kw] = filter.shape;
      const { top, left } = info.padInfo;
      // Pad dy so that a VALID conv with a kh × kw filter gives back the input's height and width.
      let up = padOrCrop(dy, 1, kh - 1 - top, info.inHeight + top - dy.shape[1]);
      up = padOrCrop(up, 2, kw - 1 - left, info.inWidth + left - dy.shape[2]);
      return tf.conv2d(up, tf.engine().runKernel(FLIP_FILTER, { filter }) as tf.Tensor4D, 1, "valid");
    });
  };
}

/**
 * dx of a strided conv: cols[(n, p, q), (i, j, c)] = Σ_o dy[(n, p, q), o] · W[(i, j, c), o], one GEMM with the
 * (small) filter transposed beforehand, since a transpose flag sends wasm's matMul to a plain loop; then each
 * column block (i, j) is added onto the input pixel that tap read (col2im, `col2ImKernel`).
 */
function backpropInputAsMatMul(dy: tf.Tensor4D, filter: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor {
  const [kh, kw, cin, cout] = filter.shape;
  const wT = tf.transpose(tf.reshape(filter, [kh * kw * cin, cout]), [1, 0]);
  const cols = tf.matMul(tf.reshape(dy, [-1, cout]) as tf.Tensor2D, wT as tf.Tensor2D);
  const { batchSize: n, inHeight, inWidth, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  const attrs = { shape: [n, inHeight, inWidth, cin], out: [oh, ow], taps: [kh, kw], strides: [sh, sw], pads: [top, left] };
  return tf.engine().runKernel(COL2IM, { cols }, attrs as unknown as Attrs) as tf.Tensor;
}

/** Sums every row (n, p, q) of cols, a block of c values per tap (i, j), into the input pixel the tap read. */
const COL2IM = "GanserveCol2Im";

interface Col2ImAttrs {
  shape: [number, number, number, number];
  out: [number, number];
  taps: [number, number];
  strides: [number, number];
  pads: [number, number];
}

function col2ImKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { shape, out: [oh, ow], taps: [kh, kw], strides: [sh, sw], pads: [top, left] } = attrs as unknown as Col2ImAttrs;
  const [n, h, w, c] = shape;
  const b = backend as WasmMemoryBackend;
  const info = b.makeOutput(shape, "float32");
  // Heap views, not copies, taken after the allocation (growing the heap would detach earlier ones).
  const src = b.typedArrayFromHeap(inputs.cols as tf.TensorInfo);
  const dx = b.typedArrayFromHeap(info);
  dx.fill(0);
  const k = kh * kw * c;
  // Per window, only the taps that land inside x (rows i0..i1, columns j0..j1): one tap row's columns are then
  // one contiguous run of cols added onto one of dx, with no branch inside (SPADE's input layer: 2.3 → 1.6 ms), in
  // the same order as tap by tap, so the sums are bit-identical.
  for (let bn = 0; bn < n; bn++)
    for (let p = 0; p < oh; p++) {
      const [i0, i1] = [Math.max(0, top - p * sh), Math.min(kh, h + top - p * sh)];
      for (let q = 0; q < ow; q++) {
        const [j0, j1] = [Math.max(0, left - q * sw), Math.min(kw, w + left - q * sw)];
        const row = ((bn * oh + p) * ow + q) * k;
        for (let i = i0; i < i1; i++) {
          let d = ((bn * h + p * sh + i - top) * w + q * sw + j0 - left) * c;
          const end = row + (i * kw + j1) * c;
          for (let s = row + (i * kw + j0) * c; s < end; s++, d++) dx[d] += src[s];
        }
      }
    }
  return info;
}

/** tfjs registers no gradient for DepthToSpace; its inverse (space-to-depth) is a reshape/transpose. */
const depthToSpaceGradient: tf.GradConfig = {
  kernelName: "DepthToSpace",
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: Attrs) => {
    const { blockSize: b, dataFormat } = attrs as unknown as tf.DepthToSpaceAttrs;
    return {
      x: () => {
        let g = dy as tf.Tensor4D;
        if (dataFormat === "NCHW") g = toNHWC(g);
        const [n, hb, wb, c] = g.shape;
        const [h, w] = [hb / b, wb / b];
        const s2d = tf.reshape(tf.transpose(tf.reshape(g, [n, h, b, w, b, c]), [0, 1, 3, 2, 4, 5]), [n, h, w, b * b * c]);
        return dataFormat === "NCHW" ? tf.transpose(s2d, [0, 3, 1, 2]) : s2d;
      },
    };
  },
};

/** tfjs registers no gradient for GatherNd; its adjoint is a scatter that sums repeated indices. */
const gatherNdGradient: tf.GradConfig = {
  kernelName: "GatherNd",
  inputsToSave: ["params", "indices"],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [params, indices] = saved;
    return { params: () => tf.scatterND(indices, dy as tf.Tensor, params.shape), indices: () => tf.zerosLike(indices) };
  },
};

/**
 * Comparisons are piecewise constant, so their gradient is zero; tfjs registers one only for
 * GreaterEqual, and backprop throws when tf.where(tf.greater(a, b), ...) sits in a differentiated graph.
 */
function zeroGradient(kernelName: string): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ["a", "b"],
    gradFunc: (_dy: tf.Tensor | tf.Tensor[], [a, b]: tf.Tensor[]) => ({ a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) }),
  };
}

/** Where element i of a padded axis (pad `before`, length `len`) came from in the unpadded one. */
function mirrorSource(i: number, before: number, len: number, skip: number): number {
  const j = i - before;
  if (j < 0) return -j - 1 + skip;
  if (j >= len) return 2 * len - 1 - skip - j;
  return j;
}

/**
 * The MirrorPad adjoint as one kernel, in JS over the backend's memory: every element of dy is added to the
 * pixel it was mirrored from. Composed from slices, reverses, pads and adds it took ~18 kernel dispatches
 * per pad, and a CycleGAN step backpropagates through ~84 pads whose tensors are a few thousand elements,
 * where dispatch costs far more than the arithmetic. Registered for wasm only, like the kernels above (the
 * cpu backend, the gradient checks' reference, keeps the composed form).
 */
const MIRROR_PAD_GRAD = "GanserveMirrorPadGrad";

interface MirrorPadGradAttrs {
  paddings: Array<[number, number]>;
  mode: "reflect" | "symmetric";
  xShape: number[];
}

function mirrorPadGradKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { paddings, mode, xShape } = attrs as unknown as MirrorPadGradAttrs;
  const b = backend as WasmMemoryBackend;
  const dy = inputs.dy as tf.TensorInfo;
  const skip = mode === "reflect" ? 1 : 0;
  const rank = xShape.length;
  // Per axis, the x offset (index × stride) each dy index lands on; then one pass over dy.
  const offsets: Int32Array[] = [];
  let stride = 1;
  for (let a = rank - 1; a >= 0; a--) {
    const [before] = paddings[a];
    const map = new Int32Array(dy.shape[a]);
    for (let i = 0; i < map.length; i++) map[i] = mirrorSource(i, before, xShape[a], skip) * stride;
    offsets[a] = map;
    stride *= xShape[a];
  }
  const info = b.makeOutput(xShape, "float32");
  // Views of the wasm heap, taken after the allocation: valid while nothing allocates, and nothing below does.
  const src = b.typedArrayFromHeap(dy);
  const out = b.typedArrayFromHeap(info);
  out.fill(0);
  const idx = new Array<number>(rank).fill(0);
  const inner = offsets[rank - 1];
  const innerLen = inner.length;
  for (let k = 0; k < src.length; k += innerLen) {
    let base = 0;
    for (let a = 0; a < rank - 1; a++) base += offsets[a][idx[a]];
    for (let i = 0; i < innerLen; i++) out[base + inner[i]] += src[k + i];
    for (let a = rank - 2; a >= 0; a--) {
      if (++idx[a] < dy.shape[a]) break;
      idx[a] = 0;
    }
  }
  return info;
}

/** The adjoint of the fold is the pad itself, so the fused kernel stays differentiable. */
const mirrorPadGradGradient: tf.GradConfig = {
  kernelName: MIRROR_PAD_GRAD,
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: Attrs) => {
    const { paddings, mode } = attrs as unknown as MirrorPadGradAttrs;
    return { dy: () => tf.mirrorPad(dy as tf.Tensor, paddings, mode) };
  },
};

/** The fold composed from kernels every backend has: each border reversed and added onto what it mirrored. */
function composedMirrorPadGrad(dy: tf.Tensor, xShape: number[], paddings: Array<[number, number]>, skip: number): tf.Tensor {
  let g = dy;
  paddings.forEach(([before, after], axis) => {
    if (before === 0 && after === 0) return;
    const len = xShape[axis];
    const part = (start: number, size: number): tf.Tensor => {
      const begin = g.shape.map(() => 0);
      const sz = g.shape.map(() => -1);
      begin[axis] = start;
      sz[axis] = size;
      return tf.slice(g, begin, sz);
    };
    const along = (lo: number, hi: number): [number, number][] => g.shape.map((_, a) => (a === axis ? [lo, hi] : [0, 0]));
    let folded = part(before, len);
    if (before > 0) folded = tf.add(folded, tf.pad(tf.reverse(part(0, before), axis), along(skip, len - before - skip)));
    if (after > 0) folded = tf.add(folded, tf.pad(tf.reverse(part(before + len, after), axis), along(len - after - skip, skip)));
    g = folded;
  });
  return g;
}

/**
 * The upstream MirrorPad gradient only slices the centre out of dy, dropping what flowed into the
 * reflected border (wrong on every backend: 3.1 max error on a 3-pixel reflect pad in the probe), which
 * corrupts CycleGAN's reflection-padded convs. The correct adjoint folds each border back, reversed,
 * onto the pixels it mirrored; padding is separable, so one axis at a time is exact, corners included.
 */
const mirrorPadGradient: tf.GradConfig = {
  kernelName: "MirrorPad",
  inputsToSave: ["x"],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], [x]: tf.Tensor[], attrs: Attrs) => {
    const { paddings, mode } = attrs as unknown as tf.MirrorPadAttrs;
    const skip = mode === "reflect" ? 1 : 0;
    const g = dy as tf.Tensor;
    return {
      x: () =>
        tf.getKernel(MIRROR_PAD_GRAD, tf.getBackend()) && g.dtype === "float32"
          ? tf.engine().runKernel(MIRROR_PAD_GRAD, { dy: g }, { paddings, mode, xShape: x.shape } as unknown as Attrs) as tf.Tensor
          : composedMirrorPadGrad(g, x.shape, paddings, skip),
    };
  },
};

const MISSING_GRADIENTS: tf.GradConfig[] = [
  depthToSpaceGradient,
  gatherNdGradient,
  ...["Greater", "Less", "LessEqual", "Equal", "NotEqual"].map(zeroGradient),
];

export interface WasmGradientRegistration {
  kernels: string[];
  gradients: string[];
}

/** The kernels wasm lacks, and ours that the gradients above run on; each registered where none is. */
const WASM_KERNELS: Array<[string, tf.KernelFunc]> = [
  ["Conv2DBackpropFilter", conv2DBackpropFilter as tf.KernelFunc],
  ["DepthwiseConv2dNativeBackpropInput", depthwiseConv2dNativeBackpropInput as tf.KernelFunc],
  ["DepthwiseConv2dNativeBackpropFilter", depthwiseConv2dNativeBackpropFilter as tf.KernelFunc],
  ["UnsortedSegmentSum", unsortedSegmentSum as tf.KernelFunc],
  [IM2COL_T, im2ColTKernel as tf.KernelFunc],
  [COL2IM, col2ImKernel as tf.KernelFunc],
  [FLIP_FILTER, flipFilterKernel as tf.KernelFunc],
  [MIRROR_PAD_GRAD, mirrorPadGradKernel as tf.KernelFunc],
];

const WRAPPED = new WeakSet<tf.KernelFunc>();

/**
 * Registers the fixes above; idempotent, so every entry point may call it. Call it after the wasm backend
 * has been imported (registration checks which kernels that backend already has). Gradient registration
 * also needs tfjs-core's own gradients loaded first, or this would fill gaps that are not gaps.
 * Returns what this call registered (empty on repeat calls).
 */
export function registerWasmGradientKernels(): WasmGradientRegistration {
  const done: WasmGradientRegistration = { kernels: [], gradients: [] };
  for (const [kernelName, kernelFunc] of WASM_KERNELS) {
    if (tf.getKernel(kernelName, "wasm")) continue;
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
    done.kernels.push(kernelName);
  }
  // Replaced where ours measured faster (see conv2DBackpropInputVia); once: the wrapper is marked.
  const backpropInput = tf.getKernel("Conv2DBackpropInput", "wasm");
  if (backpropInput && !WRAPPED.has(backpropInput.kernelFunc)) {
    const wrapped = conv2DBackpropInputVia(backpropInput.kernelFunc);
    WRAPPED.add(wrapped);
    tf.unregisterKernel("Conv2DBackpropInput", "wasm");
    tf.registerKernel({ ...backpropInput, kernelFunc: wrapped });
    done.kernels.push("Conv2DBackpropInput");
  }
  for (const config of MISSING_GRADIENTS) {
    if (tf.getGradient(config.kernelName)) continue;
    tf.registerGradient(config);
    done.gradients.push(config.kernelName);
  }
  if (!tf.getGradient(MIRROR_PAD_GRAD)) tf.registerGradient(mirrorPadGradGradient);
  if (tf.getGradient("MirrorPad") !== mirrorPadGradient) {
    tf.registerGradient(mirrorPadGradient);
    done.gradients.push("MirrorPad");
  }
  return done;
}

/** Whether tfjs-core's gradients are loaded at all; its Node bundle registers none by itself. */
export function gradientsRegistered(): boolean {
  return tf.getGradient("Conv2D") !== undefined;
}
