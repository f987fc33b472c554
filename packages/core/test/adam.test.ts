/**
 * The fused Adam (every parameter updated at once, concatenated; on wasm, computed in JS with float32 rounding
 * after each operation) against the per-parameter tensor form it replaced, kept here as the reference: the same
 * operations in the same order per element, so the two must agree bit for bit
 * on both backends, including a step where one parameter has no gradient (torch skips grad=None: its value
 * and moments stay) and a save/load of the moments in between.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { describe, expect, test } from "vitest";
import { Adam } from "../src/training/common/adam.ts";

const SHAPES: Record<string, number[]> = { "conv.weight": [3, 3, 2, 4], "conv.bias": [4], scale: [], "fc.weight": [5, 3] };
const OPTS = { beta1: 0.5, beta2: 0.999, eps: 1e-8 };

/** The per-parameter update as it was before the fusion (torch.optim.Adam's arithmetic). */
class ReferenceAdam {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  constructor(readonly params: Map<string, tf.Variable>) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }
  apply(grads: tf.NamedTensorMap, lr: number, t: number): void {
    const { beta1, beta2, eps } = OPTS;
    const stepSize = lr / (1 - beta1 ** t);
    const sqrtBc2 = Math.sqrt(1 - beta2 ** t);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads[p.name];
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m1, denom), stepSize)));
      }
    });
  }
}

/** Deterministic values that are not round in binary, so any change of arithmetic order shows. */
const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * (1 + (i % 5)) * 0.37);

function makeParams(tag: string): Map<string, tf.Variable> {
  return new Map(Object.entries(SHAPES).map(([name, shape], k) => [name, tf.variable(tf.tensor(values(tf.util.sizeFromShape(shape), k), shape), true, `${tag}/${name}`)]));
}

/** Gradients for step t, keyed by variable name; `skip` leaves one parameter without a gradient. */
function gradsFor(params: Map<string, tf.Variable>, t: number, skip?: string): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  let k = 0;
  for (const [name, p] of params) {
    k++;
    if (name !== skip) out[p.name] = tf.tensor(values(p.size, 10 * t + k), p.shape);
  }
  return out;
}

const read = (params: Map<string, tf.Variable>) => Object.fromEntries([...params].map(([n, p]) => [n, Array.from(p.dataSync())]));

async function run(backend: string) {
  await tf.setBackend(backend);
  const fusedParams = makeParams(`fused-${backend}`);
  const refParams = makeParams(`ref-${backend}`);
  let fused = new Adam(fusedParams, OPTS);
  const ref = new ReferenceAdam(refParams);
  const steps: { lr: number; skip?: string }[] = [{ lr: 2e-3 }, { lr: 1e-3, skip: "conv.bias" }, { lr: 5e-4 }];
  for (const [i, { lr, skip }] of steps.entries()) {
    const t = i + 1;
    const gf = gradsFor(fusedParams, t, skip);
    const gr = gradsFor(refParams, t, skip);
    fused.apply(gf, lr, t);
    ref.apply(gr, lr, t);
    tf.dispose([...Object.values(gf), ...Object.values(gr)]);
    if (t === 2) {
      // A checkpoint in the middle: a fresh optimiser loaded from the saved moments carries on identically.
      const state = fused.saveState("opt.");
      fused.dispose();
      fused = new Adam(fusedParams, OPTS);
      fused.loadState(state, "opt.");
    }
  }
  const moments = fused.saveState("opt.");
  const result = {
    fused: read(fusedParams),
    ref: read(refParams),
    m: Object.fromEntries([...ref.m].map(([n, t]) => [n, [Array.from(moments.get(`opt.${n}.m`)!.data as Float32Array), Array.from(t.dataSync())]])),
    v: Object.fromEntries([...ref.v].map(([n, t]) => [n, [Array.from(moments.get(`opt.${n}.v`)!.data as Float32Array), Array.from(t.dataSync())]])),
    initialBias: Array.from(values(4, 1)),
  };
  fused.dispose();
  tf.dispose([...fusedParams.values(), ...refParams.values(), ...ref.m.values(), ...ref.v.values()]);
  return result;
}

describe("Adam", () => {
  for (const backend of ["cpu", "wasm"]) {
    test(`fused update equals the per-parameter form bit for bit (${backend}), with a missing gradient and a reload`, async () => {
      const r = await run(backend);
      expect(r.fused).toEqual(r.ref);
      for (const name of Object.keys(SHAPES)) {
        expect(r.m[name][0]).toEqual(r.m[name][1]);
        expect(r.v[name][0]).toEqual(r.v[name][1]);
      }
      // The parameters did move (a no-op optimiser would pass the equalities above).
      expect(r.fused["conv.weight"]).not.toEqual(Array.from(values(72, 0)));
      expect(r.fused["conv.bias"]).not.toEqual(r.initialBias);
    });
  }

  test("on wasm, steps do not grow the heap (it never shrinks, so a growth per step ends a long run)", async () => {
    await tf.setBackend("wasm");
    // SPADE's generator in miniature: one large parameter among many small ones.
    const shapes = [[3, 3, 128, 256], ...Array.from({ length: 60 }, (_, i) => [3, 3, 8, 8 + (i % 7)])];
    const params = new Map(shapes.map((shape, i) => [`p${i}`, tf.variable(tf.tensor(values(tf.util.sizeFromShape(shape), i), shape), true, `adam-heap/p${i}`)] as const));
    const adam = new Adam(params, OPTS);
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const step = (t: number) => {
      const grads = gradsFor(params, t);
      // A long-lived tensor made between updates, as a training step leaves some (BN statistics, EMA).
      const kept = tf.tensor(values(1000 + t, t));
      adam.apply(grads, 1e-3, t);
      tf.dispose(Object.values(grads));
      return kept;
    };
    const kept = [step(1), step(2), step(3)];
    const before = heap();
    for (let t = 4; t <= 40; t++) kept.push(step(t));
    expect(heap()).toBe(before);
    adam.dispose();
    tf.dispose([...params.values(), ...kept]);
  });

  test("loadState refuses missing or misshapen moments", () => {
    const params = new Map([["w", tf.variable(tf.zeros([2, 3]), true, "adam-strict/w")]]);
    const adam = new Adam(params, OPTS);
    expect(() => adam.loadState(new Map(), "opt.")).toThrow(/missing opt\.w\.m/);
    const bad = new Map([
      ["opt.w.m", { dtype: "F32" as const, shape: [3, 2], data: new Float32Array(6) }],
      ["opt.w.v", { dtype: "F32" as const, shape: [2, 3], data: new Float32Array(6) }],
    ]);
    expect(() => adam.loadState(bad, "opt.")).toThrow(/does not match/);
    adam.dispose();
    params.get("w")!.dispose();
  });
});
