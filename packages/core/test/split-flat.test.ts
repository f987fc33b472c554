import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { describe, expect, test } from "vitest";
import { concatFlat, splitInto } from "../src/engine/split-flat.ts";

const SHAPES = [[3, 3, 4, 8], [8], [], [1, 1, 8, 2], [5, 7]];

async function split(backend: string): Promise<{ shapes: number[][]; values: number[][]; packed: number[]; leaked: number }> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const total = SHAPES.reduce((a, s) => a + tf.util.sizeFromShape(s), 0);
  const flat = tf.tensor1d(Float32Array.from({ length: total }, (_, i) => i * 0.5 - 7));
  const parts = splitInto(flat, SHAPES);
  const packed = concatFlat(parts);
  const out = { shapes: parts.map((p) => p.shape), values: parts.map((p) => Array.from(p.dataSync())), packed: Array.from(packed.dataSync()) };
  tf.dispose([flat, packed, ...parts]);
  return { ...out, leaked: tf.memory().numTensors - before };
}

describe("splitInto", () => {
  test("wasm's one-kernel split and concat give what tf.split, tf.concat and reshape give on cpu", async () => {
    const cpu = await split("cpu");
    const wasm = await split("wasm");
    expect(wasm.shapes).toEqual(SHAPES);
    expect(wasm.values).toEqual(cpu.values);
    // Packing the pieces again gives back the input, element for element.
    expect(wasm.packed).toEqual(cpu.packed);
    expect(wasm.packed).toEqual(wasm.values.flat());
    expect(wasm.values[2]).toEqual([(3 * 3 * 4 * 8 + 8) * 0.5 - 7]);
    expect([cpu.leaked, wasm.leaked]).toEqual([0, 0]);
  });

  test("refuses pieces that do not add up to the input", () => {
    expect(() => splitInto(tf.zeros([5]) as tf.Tensor1D, [[2], [2]])).toThrow(/do not make up 5/);
  });
});
