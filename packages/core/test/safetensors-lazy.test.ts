/**
 * openSafetensors (the serving engines' reader): the same tensors as readSafetensors, decoded when read instead
 * of when opened, each read a copy of its own, and the header checked at open as readSafetensors checks it.
 */
import { describe, expect, it } from "vitest";
import { openSafetensors, readSafetensors, writeSafetensors } from "../src/checkpoints/safetensors.ts";
import { CheckpointError, type RawTensor, type StateDict } from "../src/checkpoints/tensor.ts";

const sd: StateDict = new Map<string, RawTensor>([
  ["a.weight", { dtype: "F32", shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 6]) }],
  ["a.bias", { dtype: "F32", shape: [3], data: Float32Array.from([0.25, 1e-8, -7]) }],
  ["bn.num_batches_tracked", { dtype: "I64", shape: [], data: BigInt64Array.from([42n]) }],
  ["mask", { dtype: "U8", shape: [4], data: Uint8Array.from([1, 0, 255, 3]) }],
]);

const plain = (t: RawTensor | undefined) => t && { dtype: t.dtype, shape: t.shape, data: Array.from(t.data as ArrayLike<number | bigint>) };

describe("openSafetensors", () => {
  for (const float16 of [false, true]) {
    it(`reads what readSafetensors reads${float16 ? " (float16 file)" : ""}: keys in order, then every tensor`, () => {
      const bytes = writeSafetensors(sd, { float16, metadata: { format: "pt" } });
      const eager = readSafetensors(bytes);
      const lazy = openSafetensors(bytes);
      expect(lazy.metadata).toEqual(eager.metadata);
      expect([...lazy.tensors.keys()]).toEqual([...eager.tensors.keys()]);
      expect(lazy.tensors.size).toBe(eager.tensors.size);
      for (const k of eager.tensors.keys()) expect(plain(lazy.tensors.get(k)), k).toEqual(plain(eager.tensors.get(k)));
      expect([...lazy.tensors].map(([k, t]) => [k, plain(t)])).toEqual([...eager.tensors].map(([k, t]) => [k, plain(t)]));
      expect([...lazy.tensors.values()].map(plain)).toEqual([...eager.tensors.values()].map(plain));
      const seen: string[] = [];
      lazy.tensors.forEach((t, k, m) => {
        expect(m).toBe(lazy.tensors);
        expect(plain(t)).toEqual(plain(eager.tensors.get(k)));
        seen.push(k);
      });
      expect(seen).toEqual([...eager.tensors.keys()]);
    });
  }

  it("decodes when a tensor is read, not when the file is opened", () => {
    const bytes = writeSafetensors(sd);
    const lazy = openSafetensors(bytes).tensors;
    expect(lazy.has("a.bias")).toBe(true);
    // The last 3 bytes of the file are "mask"'s last 3 values: changed after open, a read sees them.
    bytes.set([9, 8, 7], bytes.byteLength - 3);
    expect(Array.from(lazy.get("mask")!.data as Uint8Array)).toEqual([1, 9, 8, 7]);
    expect(lazy.get("missing")).toBeUndefined();
  });

  it("gives every read its own copy, aligned and independent of the file", () => {
    const bytes = writeSafetensors(sd);
    const lazy = openSafetensors(bytes).tensors;
    const first = lazy.get("a.weight")!;
    expect(first.data).toBeInstanceOf(Float32Array);
    (first.data as Float32Array)[0] = 100;
    first.shape[0] = 99;
    expect(plain(lazy.get("a.weight"))).toEqual(plain(sd.get("a.weight")));
  });

  it("keeps a tensor set into it and forgets one deleted", () => {
    const lazy = openSafetensors(writeSafetensors(sd)).tensors;
    const replacement: RawTensor = { dtype: "F32", shape: [1], data: Float32Array.from([5]) };
    lazy.set("a.bias", replacement);
    expect(lazy.get("a.bias")).toBe(replacement);
    expect(lazy.delete("a.weight")).toBe(true);
    expect(lazy.has("a.weight")).toBe(false);
    expect(lazy.get("a.weight")).toBeUndefined();
    expect([...lazy.keys()]).toEqual(["a.bias", "bn.num_batches_tracked", "mask"]);
    expect(plain([...lazy.values()][0])).toEqual(plain(replacement));
    lazy.clear();
    expect(lazy.size).toBe(0);
    expect([...lazy]).toEqual([]);
  });

  it("fails loudly when read around its accessors, and copies decode", () => {
    const lazy = openSafetensors(writeSafetensors(sd)).tensors;
    expect(() => (Map.prototype.get.call(lazy, "a.weight") as { data: unknown }).data).toThrow(/read around its accessors/);
    expect(() => structuredClone(lazy)).toThrow(/read around its accessors/);
    const copy = new Map(lazy);
    expect(plain(copy.get("a.weight")!)).toEqual(plain(sd.get("a.weight")!));
  });

  it("checks the header at open, with readSafetensors' messages", () => {
    const bytes = writeSafetensors(sd);
    const truncated = bytes.subarray(0, bytes.byteLength - 1);
    expect(() => openSafetensors(truncated, "w.safetensors")).toThrow(CheckpointError);
    expect(() => openSafetensors(truncated, "w.safetensors")).toThrow(/mask: data ends at byte 48 but the data section has 47/);
    expect(() => readSafetensors(truncated, "w.safetensors")).toThrow(/mask: data ends at byte 48 but the data section has 47/);
    expect(() => openSafetensors(new Uint8Array(4))).toThrow(/truncated: 4 bytes/);
  });
});
