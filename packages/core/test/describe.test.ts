/**
 * A model's `defaults` (what /v1/models lists) are what a request that leaves a field out gets, for every
 * family and field; a parameter the model cannot use is refused, not ignored.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GenerateRequest, InterpolateRequest, TranslateRequest } from "../src/api/inference.ts";
import { ApiError } from "../src/errors.ts";
import { FAMILIES } from "../src/families.ts";
import { inputSpec, resolveParams } from "../src/api/describe.ts";
import { ModelJson } from "../src/models/model-json.ts";

const modelsDir = path.resolve(import.meta.dirname, "../../../models");
const bundled = fs
  .readdirSync(modelsDir)
  .filter((d) => fs.existsSync(path.join(modelsDir, d, "model.json")))
  .map((d) => ModelJson.parse(JSON.parse(fs.readFileSync(path.join(modelsDir, d, "model.json"), "utf8"))));

const withConfig = (record: ModelJson, config: Record<string, unknown>): ModelJson => ({ ...record, config: { ...record.config, ...config } });
const byFamily = (family: string) => bundled.find((r) => r.family === family)!;

/** The smallest valid request of each route a family serves, as the HTTP layer parses it. */
const minimalRequests = (record: ModelJson): Record<string, unknown>[] =>
  record.family === "stylegan2"
    ? [GenerateRequest.parse({ model: record.name, seeds: [0] }), InterpolateRequest.parse({ model: record.name, seed_a: 0, seed_b: 1 })]
    : record.family === "dcgan"
      ? [GenerateRequest.parse({ model: record.name, seeds: [0] })]
      : [TranslateRequest.parse({ model: record.name })];

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("not refused");
};

describe("model defaults", () => {
  it("covers every family", () => {
    expect(new Set(bundled.map((r) => r.family))).toEqual(new Set(FAMILIES));
  });

  // Variants that change the defaults: an unconditional StyleGAN2 and a SPADE model with a VAE.
  const variants = [
    ...bundled,
    withConfig(byFamily("stylegan2"), { c_dim: 0 }),
    withConfig(byFamily("spade"), { use_vae: true }),
  ];
  it.each(variants.map((r) => [`${r.name} (${r.family}, ${JSON.stringify(inputSpec(r).input)})`, r] as const))(
    "every listed default is what a request that leaves the field out gets: %s",
    (_name, record) => {
      const { defaults } = inputSpec(record);
      for (const request of minimalRequests(record)) {
        const resolved = resolveParams(record, request) as Record<string, unknown>;
        for (const [field, value] of Object.entries(defaults)) expect(resolved[field], field).toEqual(value);
        // ...and a value the request gives wins over the default.
        for (const [field, value] of Object.entries(defaults))
          if (typeof value === "number") expect((resolveParams(record, { ...request, [field]: value + 1 }) as Record<string, unknown>)[field]).toBe(value + 1);
      }
    },
  );

  it("a class-conditional StyleGAN2 lists class_idx 0 and gets it when the field is left out", () => {
    const record = byFamily("stylegan2");
    expect(record.config.c_dim).toBeGreaterThan(0);
    expect(inputSpec(record).defaults.class_idx).toBe(0);
    expect(resolveParams(record, GenerateRequest.parse({ model: record.name, seeds: "0-3" })).class_idx).toBe(0);
    expect(resolveParams(record, GenerateRequest.parse({ model: record.name, seeds: "0-3", class_idx: 7 })).class_idx).toBe(7);
    const unconditional = withConfig(record, { c_dim: 0 });
    expect(inputSpec(unconditional).defaults).not.toHaveProperty("class_idx");
    expect(resolveParams(unconditional, GenerateRequest.parse({ model: record.name, seeds: "0-3" })).class_idx).toBeUndefined();
  });
});

describe("seed on translate", () => {
  it("a SPADE model without a VAE has no z: seed is neither listed nor taken, and giving one is refused", () => {
    const record = byFamily("spade");
    expect(record.config.use_vae).toBe(false);
    expect(inputSpec(record).input.seed).toBe(false);
    expect(inputSpec(record).defaults).not.toHaveProperty("seed");
    expect(resolveParams(record, TranslateRequest.parse({ model: record.name })).seed).toBeUndefined();
    for (const seed of [0, 7]) {
      const e = refusal(() => resolveParams(record, TranslateRequest.parse({ model: record.name, seed })));
      expect(e).toBeInstanceOf(ApiError);
      expect(e).toMatchObject({ code: "unsupported_parameter", status: 422, details: { field: "seed", reason: "no_z_input" } });
      expect((e as Error).message).toMatch(/^seed: .*use_vae is off/);
    }
  });

  it("a SPADE model with a VAE takes a seed, default 0", () => {
    const record = withConfig(byFamily("spade"), { use_vae: true });
    expect(inputSpec(record).input.seed).toBe(true);
    expect(inputSpec(record).defaults.seed).toBe(0);
    expect(resolveParams(record, TranslateRequest.parse({ model: record.name })).seed).toBe(0);
    expect(resolveParams(record, TranslateRequest.parse({ model: record.name, seed: 7 })).seed).toBe(7);
  });

  it("a CycleGAN model refuses a seed too", () => {
    const record = byFamily("cyclegan");
    expect(refusal(() => resolveParams(record, TranslateRequest.parse({ model: record.name, seed: 1 })))).toMatchObject({ code: "unsupported_parameter" });
    expect(resolveParams(record, TranslateRequest.parse({ model: record.name })).seed).toBeUndefined();
  });
});
