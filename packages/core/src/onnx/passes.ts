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

/**
 * `conv` (stride 1, no pads of its own, constant weights) computed at 1/`block` of its resolution: SpaceToDepth
 * folds each block x block patch of its input into channels, one conv produces the block² output phases as
 * channels, and DepthToSpace interleaves them (the inverse of `polyphaseUp`). The arithmetic is the same sums
 * with zero taps added. It pays where a conv has few output channels: ONNX Runtime's blocked conv pads the output
 * channels to its block (16 with AVX-512), so a 3-channel output runs 16 and a third of them at the speed of a
 * full block; with block² times the channels most of that padding is real work. The input's height and width must
 * be multiples of `block` once padded, which only the caller (the network) knows: it names the conv.
 */
export function spaceToDepthConv(g: GraphBuilder, conv: Node, block: number): void {
  const w = g.constant(conv.inputs[1]);
  const b = conv.inputs[2] ? g.constant(conv.inputs[2]) : undefined;
  const ints = (k: string, d: number[]) => (conv.attrs?.[k]?.kind === "ints" ? [...(conv.attrs[k].v as readonly number[])] : d);
  const plain = ints("strides", [1, 1]).every((v) => v === 1) && ints("dilations", [1, 1]).every((v) => v === 1) && ints("pads", [0, 0, 0, 0]).every((v) => v === 0);
  const group = conv.attrs?.group?.kind === "int" ? conv.attrs.group.v : 1;
  if (conv.opType !== "Conv" || !w || (conv.inputs[2] && !b) || !plain || group !== 1 || w.dims.length !== 4) throw new Error("spaceToDepthConv: not a plain stride-1 conv with constant weights");
  const [O, C, Kh, Kw] = w.dims;
  // Output phase p reads input rows p .. p + K - 1 of its block row: coarse rows 0 .. floor((p + K - 1) / block).
  const [ch, cw] = [Math.floor((block + Kh - 2) / block) + 1, Math.floor((block + Kw - 2) / block) + 1];
  // A valid conv of ch rows keeps block·(ch - 1) fine rows of context; the conv had K - 1.
  if (block * (ch - 1) !== Kh - 1 || block * (cw - 1) !== Kw - 1) throw new Error(`spaceToDepthConv: a ${Kh}x${Kw} kernel does not tile into ${block}x${block} blocks without extra padding`);
  const B2 = block * block;
  const src = w.data as Float32Array;
  const kernel = new Float32Array(B2 * O * B2 * C * ch * cw);
  for (let py = 0; py < block; py++)
    for (let px = 0; px < block; px++)
      for (let qy = 0; qy < block; qy++)
        for (let qx = 0; qx < block; qx++)
          for (let dy = 0; dy < ch; dy++)
            for (let dx = 0; dx < cw; dx++) {
              const ky = block * dy + qy - py;
              const kx = block * dx + qx - px;
              if (ky < 0 || ky >= Kh || kx < 0 || kx >= Kw) continue;
              for (let o = 0; o < O; o++)
                for (let c = 0; c < C; c++) {
                  // Output channel (py·block + px)·O + o as DepthToSpace DCR reads it; input channel (qy·block + qx)·C + c as SpaceToDepth writes it.
                  const to = ((((py * block + px) * O + o) * B2 + qy * block + qx) * C + c) * ch * cw + dy * cw + dx;
                  kernel[to] = src[((o * C + c) * Kh + ky) * Kw + kx];
                }
            }
  let bias: Float32Array | null = null;
  if (b) {
    bias = new Float32Array(B2 * O);
    for (let p = 0; p < B2; p++) bias.set(b.data as Float32Array, p * O);
  }
  const at = g.nodes.indexOf(conv);
  // A node another pass replaced is no longer in the graph: splicing at -1 would drop the last node instead.
  if (at < 0) throw new Error("spaceToDepthConv: the conv is not in the graph (replaced by an earlier pass?)");
  const from = g.nodes.length;
  const folded = g.op("SpaceToDepth", [conv.inputs[0]], { blocksize: A.i(block) });
  const phases = g.conv(folded, { dims: [B2 * O, B2 * C, ch, cw], data: kernel }, bias);
  g.nodes.push({ opType: "DepthToSpace", inputs: [phases], outputs: [conv.outputs[0]], attrs: { blocksize: A.i(block), mode: A.s("DCR") } });
  g.nodes.splice(at, 1, ...g.nodes.splice(from));
}

/** The passes every exported graph gets, in order: bias and norm folds first, then the conv rewrites. */
export function optimize(g: GraphBuilder): void {
  dropBiasBeforeInstanceNorm(g);
  foldBatchNorm(g);
  foldAddIntoConvBias(g);
  mergeSiblingConvs(g);
  polyphaseConvTranspose(g);
}
