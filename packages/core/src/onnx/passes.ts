/**
 * Inference-time rewrites of an exported graph. Networks emit the plain form of each layer (the same arithmetic
 * as their eager TF.js forward); these passes turn it into what runs fastest on ONNX Runtime without changing
 * the result beyond float rounding. Each pass only fires where its constants are initializers and the value it
 * rewrites has no other reader, and each is tested on its own against the eager form.
 */
import { A, batchNormAffine, convTransposeComposite, type GraphBuilder, type Node, polyphaseUp } from "./graph.ts";

const CONVS = new Set(["Conv", "ConvTranspose"]);

/** The conv producing `value` when nothing else reads it, else undefined. */
function soleConv(g: GraphBuilder, value: string): Node | undefined {
  const p = g.producer(value);
  if (!p || !CONVS.has(p.opType) || g.readers(value) !== 1) return undefined;
  if (p.attrs?.group && p.attrs.group.kind === "int" && p.attrs.group.v !== 1) return undefined;
  if (!g.constant(p.inputs[1]) || (p.inputs[2] && !g.constant(p.inputs[2]))) return undefined;
  return p;
}

/**
 * A conv bias in front of InstanceNormalization is a per-channel constant, which the mean subtraction removes
 * exactly: the bias is dropped.
 */
export function dropBiasBeforeInstanceNorm(g: GraphBuilder): void {
  for (const n of g.nodes) {
    if (n.opType !== "InstanceNormalization") continue;
    const conv = soleConv(g, n.inputs[0]);
    if (conv && conv.inputs.length > 2) conv.inputs.length = 2;
  }
}

/** Eval-mode BatchNormalization after a conv becomes a per-output-channel scale of its weight and a new bias. */
export function foldBatchNorm(g: GraphBuilder): void {
  for (const bn of [...g.nodes]) {
    if (bn.opType !== "BatchNormalization") continue;
    const conv = soleConv(g, bn.inputs[0]);
    const [scale, shift, mean, variance] = bn.inputs.slice(1).map((v) => g.constant(v)?.data as Float32Array | undefined);
    if (!conv || !scale || !shift || !mean || !variance) continue;
    const eps = bn.attrs?.epsilon?.kind === "float" ? bn.attrs.epsilon.v : 1e-5;
    const affine = batchNormAffine(mean, variance, scale, shift, eps);
    const w = g.constant(conv.inputs[1])!;
    const b = conv.inputs[2] ? (g.constant(conv.inputs[2])!.data as Float32Array) : null;
    const wd = w.data as Float32Array;
    // Conv weights are [O, I, kh, kw]; ConvTranspose weights [I, O, kh, kw].
    const transposed = conv.opType === "ConvTranspose";
    const cout = transposed ? w.dims[1] : w.dims[0];
    const inner = w.dims[2] * w.dims[3];
    // Row by row (one kernel of `inner` values shares a scale): an index division per value took seconds on
    // a graph with 373 MB of weights.
    const folded = new Float32Array(wd.length);
    const rows = wd.length / inner;
    const perOut = rows / cout;
    for (let r = 0; r < rows; r++) {
      const s = affine.scale[transposed ? r % cout : Math.floor(r / perOut)];
      for (let i = r * inner, end = i + inner; i < end; i++) folded[i] = wd[i] * s;
    }
    const bias = new Float32Array(cout);
    for (let o = 0; o < cout; o++) bias[o] = (b ? b[o] : 0) * affine.scale[o] + affine.shift[o];
    conv.inputs[1] = g.f32("W", w.dims, folded);
    conv.inputs[2] = g.f32("B", [cout], bias);
    conv.outputs[0] = bn.outputs[0];
    g.nodes.splice(g.nodes.indexOf(bn), 1);
  }
}

/**
 * A stride-s ConvTranspose whose output is exactly s·H x s·W becomes one stride-1 Conv producing the s² phases
 * plus DepthToSpace (see `polyphaseKernel`): ONNX Runtime's CPU provider runs that on its fast conv path instead
 * of the gemm + col2im of ConvTranspose.
 */
export function polyphaseConvTranspose(g: GraphBuilder): void {
  for (const n of [...g.nodes]) {
    if (n.opType !== "ConvTranspose" || !n.attrs) continue;
    const ints = (k: string) => (n.attrs?.[k]?.kind === "ints" ? (n.attrs[k].v as readonly number[]) : undefined);
    const [s, s2] = ints("strides") ?? [1, 1];
    const [p, ...ps] = ints("pads") ?? [0, 0, 0, 0];
    const [op, op2] = ints("output_padding") ?? [0, 0];
    const w = g.constant(n.inputs[1]);
    const b = n.inputs[2] ? g.constant(n.inputs[2]) : undefined;
    if (!w || (n.inputs[2] && !b) || s < 2 || s2 !== s || ps.some((v) => v !== p) || op2 !== op) continue;
    const [cin, cout, k, k2] = w.dims;
    if (k2 !== k || k - 2 * p + op !== s) continue;
    const at = g.nodes.indexOf(n);
    const from = g.nodes.length;
    const y = polyphaseUp(g, n.inputs[0], convTransposeComposite(w.data as Float32Array, cin, cout, k), cout, cin, k, k, s, p, p, (b?.data as Float32Array) ?? null);
    const added = g.nodes.splice(from);
    added[added.length - 1].outputs[added[added.length - 1].outputs.indexOf(y)] = n.outputs[0];
    g.nodes.splice(at, 1, ...added);
  }
}

/** `conv(x) + c` with a scalar constant c becomes the conv with c added to its bias (a modulation written `x * (1 + gamma)`). */
export function foldAddIntoConvBias(g: GraphBuilder): void {
  for (const add of [...g.nodes]) {
    if (add.opType !== "Add") continue;
    const c = g.constant(add.inputs[1]);
    const conv = c && c.data.length === 1 && c.dims.length === 0 ? soleConv(g, add.inputs[0]) : undefined;
    if (conv?.opType !== "Conv" || !c) continue;
    const w = g.constant(conv.inputs[1])!;
    const cout = w.dims[0];
    const old = conv.inputs[2] ? (g.constant(conv.inputs[2])!.data as Float32Array) : new Float32Array(cout);
    conv.inputs[2] = g.f32("B", [cout], old.map((b) => b + (c.data[0] as number)));
    conv.outputs[0] = add.outputs[0];
    g.nodes.splice(g.nodes.indexOf(add), 1);
  }
}

/**
 * Convs that read the same value with the same attributes become one conv with their output channels
 * concatenated, then a Split: one wide conv runs faster than several narrow ones, and no arithmetic changes.
 * The merged conv takes the place of the first of them, where its input is already computed.
 */
export function mergeSiblingConvs(g: GraphBuilder): void {
  const groups = new Map<string, Node[]>();
  for (const n of g.nodes) {
    if (n.opType !== "Conv" || !g.constant(n.inputs[1]) || (n.inputs[2] && !g.constant(n.inputs[2]))) continue;
    const key = JSON.stringify([n.inputs[0], n.inputs.length, g.constant(n.inputs[1])!.dims.slice(1), n.attrs]);
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  for (const convs of groups.values()) {
    if (convs.length < 2) continue;
    const ws = convs.map((n) => g.constant(n.inputs[1])!);
    const outs = ws.map((w) => w.dims[0]);
    const weight = new Float32Array(ws.reduce((k, w) => k + w.data.length, 0));
    let at = 0;
    for (const w of ws) {
      weight.set(w.data as Float32Array, at);
      at += w.data.length;
    }
    const total = outs.reduce((a, b) => a + b, 0);
    const ins = [convs[0].inputs[0], g.f32("W", [total, ...ws[0].dims.slice(1)], weight)];
    if (convs[0].inputs[2]) {
      const bias = new Float32Array(total);
      let o = 0;
      for (const [i, n] of convs.entries()) {
        bias.set(g.constant(n.inputs[2])!.data as Float32Array, o);
        o += outs[i];
      }
      ins.push(g.f32("B", [total], bias));
    }
    const merged = g.fresh("conv");
    const conv: Node = { opType: "Conv", inputs: ins, outputs: [merged], attrs: convs[0].attrs };
    const split: Node = { opType: "Split", inputs: [merged, g.i64(outs)], outputs: convs.map((n) => n.outputs[0]), attrs: { axis: A.i(1) } };
    for (const n of convs.slice(1)) g.nodes.splice(g.nodes.indexOf(n), 1);
    g.nodes.splice(g.nodes.indexOf(convs[0]), 1, conv, split);
  }
}

/** The passes every exported graph gets, in order: bias and norm folds first, then the conv rewrites. */
export function optimize(g: GraphBuilder): void {
  dropBiasBeforeInstanceNorm(g);
  foldBatchNorm(g);
  foldAddIntoConvBias(g);
  mergeSiblingConvs(g);
  polyphaseConvTranspose(g);
}
