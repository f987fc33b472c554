/**
 * Every fixture weight file, in every format it ships in, must decode to exactly weights.safetensors (names,
 * order, shapes, dtypes and bit patterns), and config inference must reproduce each manifest's `config`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCheckpoint, readNetworkPickle, readSafetensors, readTorchLegacy, readTorchZip, type StateDict } from "../src/checkpoints/index.ts";
import { inferModelConfig } from "../src/networks/infer.ts";
import { officialDir } from "../../../test/fixtures/index.ts";

const MODELS = ["cyclegan/resnet_9blocks_instance_ngf8", "cyclegan/unet_128_batch_ngf2", "spade/label6_dontcare_instance_ngf1", "stylegan2/z32_w32_res32_skip"];

interface Manifest {
  family: string;
  config: Record<string, unknown>;
  weights: { safetensors: string; pth?: string; pth_legacy?: string; pkl?: string; num_tensors: number; int64_tensors: string[] };
}
const dir = (m: string) => path.join(officialDir, m);
const manifest = (m: string): Manifest => JSON.parse(readFileSync(path.join(dir(m), "manifest.json"), "utf8"));
const bytes = (m: string, f: string) => new Uint8Array(readFileSync(path.join(dir(m), f)));
const reference = (m: string) => readSafetensors(bytes(m, "weights.safetensors")).tensors;

/** Exact equality: same key order, shapes, dtypes, and identical bits (Object.is also separates -0 and NaN payload-free). */
function expectSameStateDict(actual: StateDict, expected: StateDict) {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [k, e] of expected) {
    const a = actual.get(k)!;
    expect({ k, dtype: a.dtype, shape: a.shape }).toEqual({ k, dtype: e.dtype, shape: e.shape });
    expect(a.data.constructor).toBe(e.data.constructor);
    const ab = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    const eb = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    expect(Buffer.compare(Buffer.from(ab), Buffer.from(eb)), k).toBe(0);
  }
}

describe("checkpoint fixtures", () => {
  for (const m of MODELS) {
    const man = manifest(m);
    describe(m, () => {
      it("weights.safetensors matches the manifest", () => {
        const sd = reference(m);
        expect(sd.size).toBe(man.weights.num_tensors);
        const i64 = [...sd].filter(([, t]) => t.dtype === "I64").map(([k]) => k);
        expect(i64.sort()).toEqual([...man.weights.int64_tensors].sort());
      });

      if (man.weights.pth)
        it("torch zip (weights.pth) equals weights.safetensors", async () => {
          const got = await readTorchZip(bytes(m, man.weights.pth!), "weights.pth");
          expect(got.path).toEqual([]);
          expectSameStateDict(got.stateDict, reference(m));
        });

      if (man.weights.pth_legacy)
        it("legacy torch.save (weights_legacy.pth) equals weights.safetensors", () => {
          const got = readTorchLegacy(bytes(m, man.weights.pth_legacy!), "weights_legacy.pth");
          expectSameStateDict(got.stateDict, reference(m));
        });

      if (man.weights.pkl)
        it("network pickle G_ema equals weights.safetensors, with the Generator kwargs", () => {
          const got = readNetworkPickle(bytes(m, man.weights.pkl!), man.weights.pkl!);
          expect(got.className).toBe("Generator");
          expect(got.networks).toEqual(["G", "D", "G_ema"]);
          expectSameStateDict(got.stateDict, reference(m));
          const c = man.config;
          expect(got.initKwargs).toMatchObject({
            z_dim: c.z_dim,
            w_dim: c.w_dim,
            c_dim: c.c_dim,
            img_resolution: c.img_resolution,
            img_channels: c.img_channels,
            mapping_kwargs: { num_layers: (c.mapping_kwargs as { num_layers: number }).num_layers },
            synthesis_kwargs: { channel_base: 256, channel_max: 64, architecture: "skip", num_fp16_res: 0, conv_clamp: null },
          });
        });

      it("loadCheckpoint detects every shipped format", async () => {
        const files = { safetensors: man.weights.safetensors, "torch-zip": man.weights.pth, "torch-legacy": man.weights.pth_legacy, "network-pickle": man.weights.pkl };
        for (const [format, f] of Object.entries(files)) {
          if (!f) continue;
          const got = await loadCheckpoint(bytes(m, f), f);
          expect(got.format).toBe(format);
          expectSameStateDict(got.stateDict, reference(m));
          if (format === "safetensors") expect(JSON.parse(got.metadata!.config)).toEqual(man.config);
          if (format === "network-pickle") expect(got.initKwargs?.z_dim).toBe(man.config.z_dim);
        }
      });

      it("inferModelConfig reproduces the manifest config", () => {
        const sd = reference(m);
        // Options the weights cannot carry (see networks/spade/infer.ts) come in as hints, as a CLI would pass them.
        const hints =
          man.family === "spade"
            ? { label_nc: 6, contain_dontcare_label: true, no_instance: false, crop_size: 64, aspect_ratio: 1.0, num_upsampling_layers: "normal" }
            : {};
        const got = inferModelConfig(sd, hints);
        expect(got.family).toBe(man.family);
        expect(got.config).toEqual(man.config);
        expect(got.missing).toEqual(
          { stylegan2: ["mapping_kwargs.lr_multiplier", "synthesis_kwargs.conv_clamp"], cyclegan: [], spade: [] }[man.family],
        );
      });
    });
  }

  it("spade without hints lists what only a user can say", () => {
    const got = inferModelConfig(reference(MODELS[2]));
    expect(got.config.semantic_nc).toBe(8);
    expect(got.missing.sort()).toEqual(["aspect_ratio", "contain_dontcare_label", "crop_size", "label_nc", "no_instance", "num_upsampling_layers"]);
    // Two of the three semantic options fix the third.
    const partial = inferModelConfig(reference(MODELS[2]), { contain_dontcare_label: true, no_instance: false });
    expect(partial.config.label_nc).toBe(6);
    expect(partial.missing).not.toContain("label_nc");
  });

  it("network pickle initKwargs are valid hints for inference", () => {
    const m = MODELS[3];
    const pkl = readNetworkPickle(bytes(m, "network-snapshot.pkl"), "network-snapshot.pkl");
    const got = inferModelConfig(pkl.stateDict, pkl.initKwargs);
    expect(got.missing).toEqual(["mapping_kwargs.lr_multiplier"]);
    expect(got.config).toEqual(manifest(m).config);
  });
});
