import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { latentsDir } from "../../../test/fixtures/index.ts";
import { readLatentFile, readNpy, readNpz } from "../src/latents/npy.ts";

const dir = path.join(latentsDir, "projected_w");

/** An .npy written the way numpy 1.x/2.x writes version 1.0 headers. */
function npy(descr: string, shape: number[], values: number[], fortran = false) {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += `${" ".repeat(63 - ((10 + header.length) % 64))}\n`;
  const size = descr.endsWith("8") ? 8 : 4;
  const body = Buffer.alloc(values.length * size);
  for (const [i, v] of values.entries()) size === 8 ? body.writeDoubleLE(v, i * 8) : body.writeFloatLE(v, i * 4);
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  return new Uint8Array(Buffer.concat([head, Buffer.from(header, "latin1"), body]));
}

describe("npy / npz", () => {
  it("reads numpy's savez (stored) and savez_compressed (deflated) archives", async () => {
    const stored = await readNpz(new Uint8Array(fs.readFileSync(path.join(dir, "projected_w.npz"))));
    expect([...stored.keys()]).toEqual(["w"]);
    const w = stored.get("w")!;
    expect(w.shape).toEqual([1, 8, 32]);
    // projector.py repeats one w over every layer.
    expect(Array.from(w.data.subarray(32, 64))).toEqual(Array.from(w.data.subarray(0, 32)));
    const deflated = await readLatentFile(new Uint8Array(fs.readFileSync(path.join(dir, "ws_distinct.npz"))));
    expect(deflated.shape).toEqual([2, 8, 32]);
    expect(deflated.data.every(Number.isFinite)).toBe(true);
    expect(Array.from(deflated.data.subarray(32, 64))).not.toEqual(Array.from(deflated.data.subarray(0, 32)));
  });

  it("reads float32 and float64 .npy and refuses what it cannot read", () => {
    expect(readNpy(npy("<f4", [2, 2], [1, 2, 3, 4.5]))).toEqual({ shape: [2, 2], data: Float32Array.from([1, 2, 3, 4.5]) });
    expect(readNpy(npy("<f8", [3], [0.25, -1, 7])).data).toEqual(Float32Array.from([0.25, -1, 7]));
    expect(() => readNpy(npy("<f4", [2, 2], [1, 2, 3, 4], true))).toThrow(/Fortran/);
    expect(() => readNpy(npy("<i8", [1], [1]))).toThrow(/dtype '<i8'/);
    expect(() => readNpy(npy("<f4", [4], [1, 2]))).toThrow(/needs 16/);
    expect(() => readNpy(new Uint8Array([1, 2, 3]))).toThrow(/magic/);
  });
});
