/**
 * Constant-folding passes (see passes.ts for the rules every pass follows). Layers emit their gains and
 * parameter products as separate nodes, the arithmetic of their eager form; these passes move that arithmetic
 * into the constants once, at export time, so it costs nothing per image.
 */
import type { GraphBuilder, Initializer, Node } from "./graph.ts";

const f32 = Math.fround;

const isScalar = (t: Initializer) => t.data.length === 1;

/** Mul or Add of two float constants, one of them a scalar (or both the same shape), becomes a constant. */
export function foldConstants(g: GraphBuilder): void {
  for (const n of [...g.nodes]) {
    if (n.opType !== "Mul" && n.opType !== "Add") continue;
    const a = g.constant(n.inputs[0]);
    const b = g.constant(n.inputs[1]);
    if (!a || !b) continue;
    const sameShape = a.dims.length === b.dims.length && a.dims.every((d, i) => d === b.dims[i]);
    if (!sameShape && !isScalar(a) && !isScalar(b)) continue;
    const [big, small] = isScalar(b) || sameShape ? [a, b] : [b, a];
    const x = big.data as Float32Array;
    const y = small.data as Float32Array;
    const at = (i: number) => (y.length === 1 ? y[0] : y[i]);
    // Plain loops, not TypedArray#map with a closure: these run over whole weight tensors (seconds of a
    // large model's export). A Float32Array store rounds as Math.fround does, so the bytes are the same.
    const out = new Float32Array(x.length);
    if (n.opType === "Mul") for (let i = 0; i < x.length; i++) out[i] = x[i] * at(i);
    else for (let i = 0; i < x.length; i++) out[i] = x[i] + at(i);
    // The node's output becomes an initializer of the same name, so its readers need no change.
    g.inits.set(n.outputs[0], { dims: big.dims, data: out });
    g.nodes.splice(g.nodes.indexOf(n), 1);
  }
}

type Action = () => void;

/** Replaces input `i` of `n` (a float constant) by a copy scaled by c; other readers keep the original. */
function scaleInput(g: GraphBuilder, n: Node, i: number, c: number): Action {
  return () => {
    const t = g.constant(n.inputs[i])!;
    const src = t.data as Float32Array;
    const out = new Float32Array(src.length);
    for (let j = 0; j < src.length; j++) out[j] = src[j] * c;
    n.inputs[i] = g.f32("scaled", t.dims, out);
  };
}

const SHAPE_ONLY = new Set(["Reshape", "Flatten", "Unsqueeze", "Squeeze", "DepthToSpace", "Transpose", "Identity"]);

/**
 * How to make `value` come out c times larger by changing constants upstream of it, or undefined where that is
 * not possible. Every value on the way must have `value`'s path as its only reader.
 */
function plan(g: GraphBuilder, value: string, c: number): Action[] | undefined {
  if (g.readers(value) !== 1) return undefined;
  const p = g.producer(value);
  if (!p) return undefined;
  const constant = (i: number) => g.constant(p.inputs[i]) !== undefined;
  if (SHAPE_ONLY.has(p.opType)) return plan(g, p.inputs[0], c);
  switch (p.opType) {
    case "Relu":
    case "LeakyRelu":
      // Positive homogeneity: act(x)·c = act(x·c) for c > 0.
      return c > 0 ? plan(g, p.inputs[0], c) : undefined;
    case "Add": {
      const actions: Action[] = [];
      for (const i of [0, 1]) {
        const a = constant(i) ? [scaleInput(g, p, i, c)] : plan(g, p.inputs[i], c);
        if (!a) return undefined;
        actions.push(...a);
      }
      return actions;
    }
    case "Mul":
      if (constant(0)) return [scaleInput(g, p, 0, c)];
      if (constant(1)) return [scaleInput(g, p, 1, c)];
      return plan(g, p.inputs[0], c) ?? plan(g, p.inputs[1], c);
    case "MatMul":
      return constant(1) ? [scaleInput(g, p, 1, c)] : undefined;
    case "Conv":
    case "ConvTranspose":
      if (!constant(1) || (p.inputs[2] && !constant(2))) return undefined;
      return [scaleInput(g, p, 1, c), ...(p.inputs[2] ? [scaleInput(g, p, 2, c)] : [])];
    default:
      return undefined;
  }
}

/**
 * `y · c` with a scalar constant c is folded into the constants that produce y: through shape-only ops and
 * (for c > 0) Relu/LeakyRelu, into both terms of a sum, into one factor of a product, into a constant or a
 * conv/MatMul weight. Activation gains (sqrt 2 after lrelu, a layer's output gain) end up in conv weights,
 * biases and other constants instead of costing a pass over every activation.
 */
export function foldScalarGains(g: GraphBuilder): void {
  for (const m of [...g.nodes]) {
    if (m.opType !== "Mul") continue;
    const k = [1, 0].find((i) => {
      const t = g.constant(m.inputs[i]);
      return t !== undefined && isScalar(t);
    });
    if (k === undefined || g.constant(m.inputs[1 - k])) continue;
    const x = m.inputs[1 - k];
    const actions = plan(g, x, (g.constant(m.inputs[k])!.data as Float32Array)[0]);
    if (!actions) continue;
    for (const a of actions) a();
    const p = g.producer(x)!;
    p.outputs[p.outputs.indexOf(x)] = m.outputs[0];
    g.nodes.splice(g.nodes.indexOf(m), 1);
  }
}

/** `conv(x) + b` with b a per-channel constant ([1, C, 1, 1] or [C, 1, 1]) becomes the conv's own bias. */
export function foldBiasIntoConv(g: GraphBuilder): void {
  for (const add of [...g.nodes]) {
    if (add.opType !== "Add") continue;
    for (const i of [0, 1]) {
      const b = g.constant(add.inputs[1 - i]);
      const conv = g.producer(add.inputs[i]);
      if (!b || conv?.opType !== "Conv" || g.readers(add.inputs[i]) !== 1) continue;
      const w = g.constant(conv.inputs[1]);
      if (!w || (conv.inputs[2] && !g.constant(conv.inputs[2]))) continue;
      const cout = w.dims[0];
      const dims = b.dims.length === 4 ? b.dims.slice(1) : b.dims;
      const perChannel = (b.dims.length === 4 ? b.dims[0] === 1 : b.dims.length === 3) && dims[0] === cout && dims[1] === 1 && dims[2] === 1;
      if (!perChannel) continue;
      const old = conv.inputs[2] ? (g.constant(conv.inputs[2])!.data as Float32Array) : new Float32Array(cout);
      const bias = b.data as Float32Array;
      conv.inputs[2] = g.f32("B", [cout], old.map((v, o) => f32(v + bias[o])));
      conv.outputs[0] = add.outputs[0];
      g.nodes.splice(g.nodes.indexOf(add), 1);
      break;
    }
  }
}

/** The folds, in order; `GraphOps.finish` runs them before `optimize` (passes.ts). */
export function foldAll(g: GraphBuilder): void {
  foldConstants(g);
  foldScalarGains(g);
  foldBiasIntoConv(g);
}
