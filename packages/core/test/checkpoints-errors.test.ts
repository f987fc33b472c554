/**
 * Hostile and broken inputs: every one must end in a CheckpointError that names the file, without running code
 * or allocating what the file merely claims. Also covers layouts the fixtures do not: strided tensors, half and
 * bfloat16/double/int64 storages, wrapped state dicts and OrderedDict metadata.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CheckpointError, loadCheckpoint, readTorchLegacy, readTorchZip, type RawTensor } from "../src/checkpoints/index.ts";
import { makeHooks } from "../src/checkpoints/allowlist.ts";
import { floatToHalf } from "../src/checkpoints/safetensors.ts";
import { unpickle } from "../src/checkpoints/unpickler.ts";
import { officialDir } from "../../../test/fixtures/index.ts";

const STYLEGAN = path.join(officialDir, "stylegan2/z32_w32_res32_skip");
const fixture = (f: string) => new Uint8Array(readFileSync(path.join(STYLEGAN, f)));

// ---- a tiny pickle writer (protocol 2 opcodes), enough to hand-craft checkpoints ----
type Op = number[] | Uint8Array;
const enc = new TextEncoder();
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const P = {
  proto: [0x80, 2],
  stop: [0x2e],
  mark: [0x28],
  tuple: [0x74],
  emptyDict: [0x7d],
  setitems: [0x75],
  reduce: [0x52],
  build: [0x62],
  binpersid: [0x51],
  none: [0x4e],
  false: [0x89],
  emptyTuple: [0x29],
  str: (s: string) => {
    const b = enc.encode(s);
    return [0x58, ...u32(b.length), ...b];
  },
  int: (n: number) => [0x4a, ...u32(n)],
  global: (m: string, n: string) => [0x63, ...enc.encode(`${m}\n${n}\n`)],
};
const cat = (...ops: Op[]) => Uint8Array.from(ops.flatMap((o) => [...o]));
const tuple = (...items: Op[]) => [...P.mark, ...items.flatMap((o) => [...o]), ...P.tuple];
const dict = (entries: [string, Op][]) => [...P.emptyDict, ...P.mark, ...entries.flatMap(([k, v]) => [...P.str(k), ...v]), ...P.setitems];

/** _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()) as torch.save writes it. */
function tensorOp(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[], extraPid: Op[] = []): number[] {
  const pid = tuple(P.str("storage"), P.global("torch", storageType), P.str(key), P.str("cpu"), P.int(numel), ...extraPid);
  return [
    ...P.global("torch._utils", "_rebuild_tensor_v2"),
    ...tuple([...pid, ...P.binpersid], P.int(offset), tuple(...size.map(P.int)), tuple(...stride.map(P.int)), P.false, [...P.global("collections", "OrderedDict"), ...P.emptyTuple, ...P.reduce]),
    ...P.reduce,
  ];
}

// ---- a tiny stored (uncompressed) zip writer ----
function zip(entries: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = enc.encode(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, n, data);
    central.push(cd, n);
    offset += 30 + n.length + data.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...parts, ...central, eocd]));
}

const nums = (t: RawTensor) => Array.from(t.data as ArrayLike<number>);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const torchZip = (pkl: Uint8Array, storages: Record<string, Uint8Array>) =>
  zip([["archive/data.pkl", pkl], ["archive/byteorder", enc.encode("little")], ...Object.entries(storages).map(([k, v]) => [`archive/data/${k}`, v] as [string, Uint8Array])]);

async function expectCheckpointError(p: Promise<unknown> | (() => unknown), file: string, message: RegExp) {
  const run = typeof p === "function" ? Promise.resolve().then(p) : p;
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckpointError);
  expect((err as CheckpointError).file).toBe(file);
  expect((err as Error).message).toMatch(message);
}

describe("restricted unpickler", () => {
  const hooks = makeHooks({ file: "evil.pkl" });

  it("refuses GLOBAL os.system before anything runs", async () => {
    const evil = cat(P.proto, P.global("os", "system"), tuple(P.str("touch /tmp/pwned")), P.reduce, P.stop);
    await expectCheckpointError(() => unpickle(evil, hooks, "evil.pkl"), "evil.pkl", /global os\.system is not allowed/);
    await expectCheckpointError(loadCheckpoint(evil, "evil.pkl"), "evil.pkl", /global os\.system is not allowed/);
  });

  it("refuses STACK_GLOBAL builtins.eval and the py2 spelling __builtin__.eval", async () => {
    const stackGlobal = cat([0x80, 4], P.str("builtins"), P.str("eval"), [0x93], tuple(P.str("1")), P.reduce, P.stop);
    await expectCheckpointError(() => unpickle(stackGlobal, hooks, "evil.pkl"), "evil.pkl", /global builtins\.eval is not allowed/);
    const py2 = cat(P.proto, P.global("__builtin__", "eval"), P.stop);
    await expectCheckpointError(() => unpickle(py2, hooks, "evil.pkl"), "evil.pkl", /global __builtin__\.eval is not allowed/);
  });

  it("refuses calling an allowed non-callable and copyreg extension opcodes", async () => {
    const callStorage = cat(P.proto, P.global("torch", "FloatStorage"), P.emptyTuple, P.reduce, P.stop);
    await expectCheckpointError(() => unpickle(callStorage, hooks, "evil.pkl"), "evil.pkl", /torch\.FloatStorage cannot be called/);
    await expectCheckpointError(() => unpickle(cat(P.proto, [0x82, 1], P.stop), hooks, "evil.pkl"), "evil.pkl", /extension-registry/);
  });

  it("checks length-prefixed data against the bytes left before allocating", async () => {
    // BINUNICODE8 / BINBYTES8 claiming 2^60 bytes.
    const huge = [0, 0, 0, 0, 0, 0, 0, 0x10];
    await expectCheckpointError(() => unpickle(cat([0x80, 4, 0x8d], huge, P.stop), hooks, "x.pkl"), "x.pkl", /needs 1152921504606846976 bytes/);
    await expectCheckpointError(() => unpickle(cat([0x80, 4, 0x8e], huge, P.stop), hooks, "x.pkl"), "x.pkl", /truncated/);
    await expectCheckpointError(() => unpickle(cat(P.proto, [0x58, 0xff, 0xff, 0xff, 0x7f], P.stop), hooks, "x.pkl"), "x.pkl", /truncated/);
  });

  it("caps memo, stack and container sizes", async () => {
    const manyMemo = cat(P.proto, ...Array.from({ length: 20 }, (_, i) => [0x4e, 0x71, i, 0x30]), P.none, P.stop);
    await expectCheckpointError(() => unpickle(manyMemo, hooks, "x.pkl", { limits: { maxMemo: 10 } }), "x.pkl", /memo exceeds 10/);
    const bigList = cat(P.proto, [0x5d], P.mark, ...Array.from({ length: 20 }, () => P.none), [0x65], P.stop);
    await expectCheckpointError(() => unpickle(bigList, hooks, "x.pkl", { limits: { maxContainer: 10 } }), "x.pkl", /container exceeds 10/);
    const deep = cat(P.proto, ...Array.from({ length: 50 }, () => P.none), P.stop);
    await expectCheckpointError(() => unpickle(deep, hooks, "x.pkl", { limits: { maxStack: 20 } }), "x.pkl", /stack exceeds 20/);
  });

  it("reports malformed streams", async () => {
    await expectCheckpointError(() => unpickle(cat(P.proto, P.none), hooks, "x.pkl"), "x.pkl", /before STOP/);
    await expectCheckpointError(() => unpickle(cat(P.proto, [0x68, 5], P.stop), hooks, "x.pkl"), "x.pkl", /memo key 5/);
    await expectCheckpointError(() => unpickle(cat(P.proto, [0xff]), hooks, "x.pkl"), "x.pkl", /unknown opcode 0xff/);
    await expectCheckpointError(() => unpickle(cat(P.proto, P.reduce, P.stop), hooks, "x.pkl"), "x.pkl", /stack underflow/);
  });
});

describe("crafted torch zip checkpoints", () => {
  const f32 = (...v: number[]) => bytesOf(Float32Array.from(v));

  it("copies non-contiguous strides into row-major order", async () => {
    // A transposed 2x3 → 3x2 view: size (3,2), stride (1,3) over storage [0..5].
    const pkl = cat(P.proto, dict([["t", tensorOp("FloatStorage", "0", 6, 0, [3, 2], [1, 3])], ["off", tensorOp("FloatStorage", "0", 6, 1, [2, 2], [3, 1])]]), P.stop);
    const got = await readTorchZip(torchZip(pkl, { "0": f32(0, 1, 2, 3, 4, 5) }), "t.pth");
    expect(got.stateDict.get("t")).toEqual({ dtype: "F32", shape: [3, 2], data: Float32Array.from([0, 3, 1, 4, 2, 5]) });
    expect(nums(got.stateDict.get("off")!)).toEqual([1, 2, 4, 5]);
  });

  it("decodes half, bfloat16, double and int64 storages", async () => {
    const half = Uint16Array.from([1.5, -2, 0.099975586].map(floatToHalf));
    const bf16 = Uint16Array.from([0x3fc0, 0xc000]); // 1.5, -2
    const pkl = cat(
      P.proto,
      dict([
        ["h", tensorOp("HalfStorage", "h", 3, 0, [3], [1])],
        ["b", tensorOp("BFloat16Storage", "b", 2, 0, [2], [1])],
        ["d", tensorOp("DoubleStorage", "d", 2, 1, [1], [1])],
        ["n", tensorOp("LongStorage", "n", 1, 0, [], [])],
      ]),
      P.stop,
    );
    const got = await readTorchZip(
      torchZip(pkl, { h: bytesOf(half), b: bytesOf(bf16), d: bytesOf(Float64Array.from([1, 0.1])), n: bytesOf(BigInt64Array.from([123456789012345n])) }),
      "mixed.pth",
    );
    expect(nums(got.stateDict.get("h")!)).toEqual([1.5, -2, 0.0999755859375]); // nearest half to 0.1
    expect(got.stateDict.get("h")!.dtype).toBe("F32");
    expect(nums(got.stateDict.get("b")!)).toEqual([1.5, -2]);
    expect(nums(got.stateDict.get("d")!)).toEqual([Math.fround(0.1)]);
    expect(got.stateDict.get("n")).toEqual({ dtype: "I64", shape: [], data: BigInt64Array.from([123456789012345n]) });
  });

  it("finds a wrapped state dict and says where; refuses to guess between two", async () => {
    const sd = () => dict([["w", tensorOp("FloatStorage", "0", 2, 0, [2], [1])]]);
    const wrapped = cat(P.proto, dict([["epoch", P.int(3)], ["state_dict", sd()]]), P.stop);
    const got = await loadCheckpoint(torchZip(wrapped, { "0": f32(1, 2) }), "wrapped.pth");
    expect(got.stateDictPath).toEqual(["state_dict"]);
    expect(nums(got.stateDict.get("w")!)).toEqual([1, 2]);

    const two = cat(P.proto, dict([["encoder", sd()], ["decoder", sd()]]), P.stop);
    await expectCheckpointError(loadCheckpoint(torchZip(two, { "0": f32(1, 2) }), "two.pth"), "two.pth", /several state dicts found \(encoder, decoder\)/);
    const chosen = await loadCheckpoint(torchZip(two, { "0": f32(1, 2) }), "two.pth", { stateDictKey: "decoder" });
    expect(chosen.stateDictPath).toEqual(["decoder"]);
  });

  it("accepts OrderedDict state dicts with _metadata (BUILD on a dict)", async () => {
    const od = [
      ...P.global("collections", "OrderedDict"),
      ...P.emptyTuple,
      ...P.reduce,
      ...P.mark,
      ...P.str("w"),
      ...tensorOp("FloatStorage", "0", 1, 0, [1], [1]),
      ...P.setitems,
      ...dict([["_metadata", [...P.global("collections", "OrderedDict"), ...P.emptyTuple, ...P.reduce]]]),
      ...P.build,
    ];
    const got = await readTorchZip(torchZip(cat(P.proto, od, P.stop), { "0": f32(7) }), "od.pth");
    expect([...got.stateDict.keys()]).toEqual(["w"]);
  });

  it("rejects a zip without data.pkl", async () => {
    await expectCheckpointError(loadCheckpoint(zip([["archive/version", enc.encode("3\n")]]), "nopkl.pth"), "nopkl.pth", /no <archive>\/data\.pkl/);
  });

  it("rejects a disallowed global inside data.pkl", async () => {
    const pkl = cat(P.proto, P.global("subprocess", "Popen"), tuple(P.str("id")), P.reduce, P.stop);
    await expectCheckpointError(loadCheckpoint(torchZip(pkl, {}), "evil.pth"), "evil.pth", /global subprocess\.Popen is not allowed/);
  });

  it("rejects missing or short storage entries and out-of-bounds views", async () => {
    const pkl = (numel: number, size: number[], stride: number[]) => cat(P.proto, dict([["w", tensorOp("FloatStorage", "0", numel, 0, size, stride)]]), P.stop);
    await expectCheckpointError(loadCheckpoint(torchZip(pkl(4, [4], [1]), {}), "a.pth"), "a.pth", /has no entry archive\/data\/0/);
    await expectCheckpointError(loadCheckpoint(torchZip(pkl(4, [4], [1]), { "0": f32(1, 2) }), "a.pth"), "a.pth", /entry has 8 bytes, the pickle expects 16/);
    await expectCheckpointError(loadCheckpoint(torchZip(pkl(2, [4], [1]), { "0": f32(1, 2) }), "a.pth"), "a.pth", /reaches element 3 of a 2-element storage/);
  });

  it("refuses stride-0 tensors that would decode to more than the byte budget", async () => {
    const pkl = cat(P.proto, dict([["w", tensorOp("FloatStorage", "0", 1, 0, [100000, 100000], [0, 0])]]), P.stop);
    await expectCheckpointError(loadCheckpoint(torchZip(pkl, { "0": f32(1) }), "big.pth", { maxTensorBytes: 1 << 20 }), "big.pth", /exceeds the remaining memory budget/);
  });
});

describe("broken fixture files", () => {
  it("truncated files fail in every format", async () => {
    for (const [f, re] of [
      ["weights.safetensors", /truncated/],
      ["weights.pth", /not a readable zip|corrupt zip/],
      ["weights_legacy.pth", /truncated/],
      ["network-snapshot.pkl", /truncated/],
    ] as const) {
      const full = fixture(f);
      for (const frac of [0.1, 0.5, 0.999]) await expectCheckpointError(loadCheckpoint(full.subarray(0, Math.floor(full.length * frac)), f), f, re);
    }
  });

  it("legacy files cut inside the pickles or storages say which part is missing", async () => {
    const full = fixture("weights_legacy.pth");
    await expectCheckpointError(() => readTorchLegacy(full.subarray(0, 200), "l.pth"), "l.pth", /truncated/);
    await expectCheckpointError(() => readTorchLegacy(full.subarray(0, full.length - 3), "l.pth"), "l.pth", /needs \d+ bytes, \d+ remain \(truncated file\)/);
  });

  it("legacy storages claiming huge element counts fail without allocating", async () => {
    const full = fixture("weights_legacy.pth");
    // The first storage's int64 element count sits at 11225 (after the key list pickle).
    const bad = full.slice();
    new DataView(bad.buffer).setBigInt64(11225, 1n << 40n, true);
    await expectCheckpointError(() => readTorchLegacy(bad, "l.pth"), "l.pth", /file says 1099511627776 elements/);
  });

  it("wrong magic numbers are named", async () => {
    await expectCheckpointError(loadCheckpoint(enc.encode("GIF89a not a checkpoint"), "cat.gif"), "cat.gif", /unrecognised format/);
    await expectCheckpointError(loadCheckpoint(new Uint8Array(0), "empty.pth"), "empty.pth", /unrecognised format/);
    const legacy = fixture("weights_legacy.pth").slice();
    legacy[5] ^= 0xff; // inside the magic number's LONG1 payload
    await expectCheckpointError(() => readTorchLegacy(legacy, "l.pth"), "l.pth", /bad magic number/);
  });

  it("safetensors whose header claims more bytes than the file has", async () => {
    const st = fixture("weights.safetensors").slice();
    new DataView(st.buffer).setBigUint64(0, BigInt(st.length), true);
    await expectCheckpointError(loadCheckpoint(st, "w.safetensors"), "w.safetensors", /header claims/);
  });

  it("network pickles without the requested network list the ones they have", async () => {
    await expectCheckpointError(loadCheckpoint(fixture("network-snapshot.pkl"), "n.pkl", { networkKey: "G_running" }), "n.pkl", /no network "G_running" \(networks: G, D, G_ema\)/);
    const d = await loadCheckpoint(fixture("network-snapshot.pkl"), "n.pkl", { networkKey: "D" });
    expect([...d.stateDict.keys()].some((k) => k.startsWith("b32."))).toBe(true);
  });
});

describe("mutated fixtures", () => {
  it("random byte corruption ends in success or a CheckpointError, never another exception", async () => {
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const outcomes = { ok: 0, rejected: 0 };
    for (const f of ["weights.safetensors", "weights.pth", "weights_legacy.pth", "network-snapshot.pkl"]) {
      const full = fixture(f);
      for (let trial = 0; trial < 60; trial++) {
        const bad = full.slice();
        // Aim half the flips at the first 12 KB, where headers, pickles and zip directories live.
        for (let k = 0; k < 4; k++) bad[Math.floor(rand() * (rand() < 0.5 ? Math.min(12288, bad.length) : bad.length))] ^= 1 + Math.floor(rand() * 255);
        try {
          await loadCheckpoint(bad, f);
          outcomes.ok++;
        } catch (e) {
          expect(e, `${f} trial ${trial}: ${String(e)}`).toBeInstanceOf(CheckpointError);
          // Every failure should be one we diagnose, not a crash that loadCheckpoint had to wrap.
          expect((e as Error).message, `${f} trial ${trial}`).not.toMatch(/unexpected error/);
          outcomes.rejected++;
        }
      }
    }
    expect(outcomes.ok + outcomes.rejected).toBe(240);
  });
});
