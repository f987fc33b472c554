/**
 * DCGAN layouts read from state_dicts alone. The fixtures (scripts/dcgan-fixture.py) record in manifest.json the
 * modules torch actually built, class by class, so the inferred layer list is checked against torch's own
 * description, for every file format the fixture saved.
 */
import { describe, expect, it } from "vitest";
import { CheckpointError, type StateDict } from "../src/checkpoints/index.ts";
import { DcganLayoutError, inferDCGAN } from "../src/networks/dcgan/infer.ts";
import { parseDcganConfig } from "../src/networks/dcgan/config.ts";
import { DCGAN_FORMATS as FORMATS, DCGAN_MLP_HINTS as MLP_HINTS, DCGAN_MODELS as MODELS, dcganManifest as manifest, loadDcgan as load } from "./helpers/dcgan-fixtures.ts";

describe("DCGAN layout inference", () => {
  for (const model of MODELS) {
    const m = manifest(model);
    for (const format of FORMATS.filter((f) => m.weights[f])) {
      it(`${model} (${format}) gives the modules torch built`, async () => {
        const got = inferDCGAN(await load(model, format), MLP_HINTS[model] ?? {}, model);
        expect(got.config.layers).toEqual(m.config.layers);
        expect({ layout: got.config.layout, z_shape: got.config.z_shape, nc: got.config.nc, img_size: got.config.img_size }).toEqual({
          layout: m.config.layout,
          z_shape: m.config.z_shape,
          nc: m.config.nc,
          img_size: m.config.img_size,
        });
        expect(got.config.seed_rng).toBe("torch");
        expect(got.missing).toEqual([]);
        expect(() => parseDcganConfig(got.config)).not.toThrow();
      });
    }
  }

  it("asks what an MLP's weights cannot say", async () => {
    expect(inferDCGAN(await load("mlp_nz100_gray28"), {}).missing).toEqual(["hidden_act"]);
    expect(inferDCGAN(await load("mlp_bn_lrelu_gray28"), {}).missing).toEqual(["hidden_act", "bn_eps"]);
  });

  it("reads bias and BatchNorm from the names", async () => {
    const main = inferDCGAN(await load("main_nz100_rgb64"), {}).config;
    expect([main.bias, main.batch_norm]).toEqual([false, true]);
    const mlp = inferDCGAN(await load("mlp_nz100_gray28"), {}).config;
    expect([mlp.bias, mlp.batch_norm]).toEqual([true, false]);
  });

  it("takes layers given in full and checks them against the tensors", async () => {
    const m = manifest("mlp_bn_lrelu_gray28");
    const sd = await load("mlp_bn_lrelu_gray28");
    const got = inferDCGAN(sd, { layers: m.config.layers });
    expect(got.config.layers).toEqual(m.config.layers);
    const wrong = structuredClone(m.config.layers) as { op: string; out?: number; in?: number }[];
    wrong[0].out = 17;
    wrong[2].in = 17;
    expect(() => inferDCGAN(sd, { layers: wrong })).toThrow(/first unexpected tensor model\.0\.weight: shape \[16,100\], the layers need \[17,100\]/);
  });

  it("names the first unexpected tensor and the layouts tried", async () => {
    const sd = await load("main_nz100_rgb64");
    sd.set("main.2.scale", { dtype: "F32", shape: [8], data: new Float32Array(8) });
    const err = catchError(() => inferDCGAN(sd, {}, "generator.pth"));
    expect(err).toBeInstanceOf(DcganLayoutError);
    expect((err as DcganLayoutError).unexpected).toBe("main.2.scale");
    expect((err as DcganLayoutError).tried).toEqual(["fc_deconv", "main", "mlp"]);
    expect(err.message).toMatch(/^generator\.pth: first unexpected tensor main\.2\.scale: .*fc_deconv .*main .*mlp /);
  });

  it("refuses names no layout uses", () => {
    const sd: StateDict = new Map([["conv1.weight", { dtype: "F32", shape: [8, 3, 3, 3], data: new Float32Array(216) }]]);
    const err = catchError(() => inferDCGAN(sd, {}));
    expect((err as DcganLayoutError).unexpected).toBe("conv1.weight");
  });

  it("refuses a discriminator's Conv2d stack (channels do not chain as ConvTranspose2d)", () => {
    const conv = (o: number, i: number) => ({ dtype: "F32" as const, shape: [o, i, 4, 4], data: new Float32Array(o * i * 16) });
    const sd: StateDict = new Map([
      ["main.0.weight", conv(8, 3)],
      ["main.2.weight", conv(16, 8)],
    ]);
    const err = catchError(() => inferDCGAN(sd, {}));
    expect((err as DcganLayoutError).unexpected).toBe("main.2.weight");
    expect(err.message).toMatch(/takes 16 channels, the layer before gives 3/);
  });

  it("refuses a hinted layout the names contradict", async () => {
    const err = catchError(async () => inferDCGAN(await load("main_nz100_gray32"), { layout: "mlp" }));
    expect((await err) as unknown).toBeInstanceOf(DcganLayoutError);
    expect(((await err) as DcganLayoutError).tried).toEqual(["mlp"]);
  });

  it("says clearly when BatchNorm statistics are missing", async () => {
    const sd = await load("fc_deconv_nz100_rgb64");
    sd.delete("deconv.4.running_mean");
    sd.delete("deconv.4.running_var");
    sd.delete("deconv.4.num_batches_tracked");
    const err = catchError(() => inferDCGAN(sd, {}));
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err.message).toMatch(/BatchNorm deconv\.4 has no running statistics/);
  });
});

function catchError<T>(fn: () => T): T extends Promise<unknown> ? Promise<Error> : Error {
  try {
    const r = fn();
    if (r instanceof Promise) return r.then(() => expect.unreachable("did not throw"), (e: Error) => e) as never;
  } catch (e) {
    return e as never;
  }
  return expect.unreachable("did not throw") as never;
}
