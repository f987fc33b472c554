/**
 * What `/v1/models` says about a model: its input spec and default request parameters, per family. The API's
 * projection of a model record, so it lives with the API schemas (and models/ never imports api/).
 */
import { ApiError } from "../errors.ts";
import type { ModelJson } from "../models/model-json.ts";
import { parseDcganConfig } from "../networks/dcgan/config.ts";
import { parseSpadeConfig } from "../networks/spade/config.ts";
import type { ModelInfo } from "./inference.ts";

const num = (v: unknown, fallback: number) => (typeof v === "number" ? v : fallback);

export function inputSpec(record: ModelJson): { input: Record<string, unknown>; defaults: Record<string, unknown> } {
  const c = record.config;
  switch (record.family) {
    case "stylegan2": {
      const cDim = num(c.c_dim, 0);
      return {
        input: {
          kind: "seeds",
          resolution: num(c.img_resolution, 0),
          z_dim: num(c.z_dim, 0),
          num_ws: num(c.num_ws, 0),
          c_dim: cDim,
          class_idx: cDim > 0 ? { min: 0, max: cDim - 1 } : undefined,
        },
        defaults: { truncation_psi: 1, noise_mode: "const", format: "png", seed_rng: c.seed_rng === "torch" ? "torch" : "numpy", ...(cDim > 0 ? { class_idx: 0 } : {}) },
      };
    }
    case "cyclegan":
      return {
        input: { kind: "image", channels: num(c.input_nc, 3), netG: c.netG, directions: ["AtoB", "BtoA"] },
        defaults: { direction: "AtoB", preprocess: "resize", format: "png" },
      };
    case "spade": {
      // Sizes are derived (crop_size, aspect_ratio, upsampling), not necessarily stored in the config.
      const spade = parseSpadeConfig(c);
      const labelNc = spade.label_nc;
      const [h, w] = spade.output_hw;
      return {
        input: {
          kind: "label_map",
          label_nc: labelNc,
          contain_dontcare_label: c.contain_dontcare_label === true,
          instance_map: c.no_instance === false,
          style_image: c.use_vae === true,
          // Only a generator with a latent z (use_vae) has something for a seed to change.
          seed: spadeTakesSeed(record),
          height: h,
          width: w,
        },
        defaults: { ...(spadeTakesSeed(record) ? { seed: 0 } : {}), format: "png" },
      };
    }
    case "dcgan": {
      const d = parseDcganConfig(c);
      return {
        input: { kind: "seeds", layout: d.layout, z_dim: d.z_shape[0], z_shape: d.z_shape, channels: d.nc, resolution: d.img_size },
        defaults: { seed_rng: d.seed_rng, format: "png" },
      };
    }
  }
}

/**
 * StyleGAN2's generate parameters, which a DCGAN (z → image, nothing else) cannot use: refused when given (for
 * those with a schema default, when they differ from it) rather than silently ignored.
 */
const STYLEGAN_ONLY: [field: string, unset: (v: unknown) => boolean][] = [
  ["truncation_psi", (v) => v === undefined || v === 1],
  ["truncation_cutoff", (v) => v === undefined],
  ["noise_mode", (v) => v === undefined || v === "const"],
  ["class_idx", (v) => v === undefined],
  ["w", (v) => v === undefined],
  ["ws", (v) => v === undefined],
  ["projected_w", (v) => v === undefined],
  ["edits", (v) => v === undefined],
  ["style_mix", (v) => v === undefined],
  ["return_latents", (v) => v === undefined || v === false],
];

/** A SPADE generator starts from a latent z only with use_vae; without it the output ignores any seed. */
const spadeTakesSeed = (record: ModelJson) => record.config.use_vae === true;

/**
 * A request resolved against the model it runs on: a parameter the model cannot use is refused (422
 * `unsupported_parameter`) rather than silently ignored, and every parameter the request left out takes the
 * model's default, i.e. exactly the `defaults` that /v1/models lists for it. Inference calls this once the
 * model version is known, for every family and route.
 */
export function resolveParams<P extends object>(record: ModelJson, params: P): P {
  const given = params as Record<string, unknown>;
  // Translate's `seed` feeds a SPADE generator's latent z; a CycleGAN, or a SPADE model without use_vae, has none.
  if ((record.family === "cyclegan" || record.family === "spade") && given.seed !== undefined && !(record.family === "spade" && spadeTakesSeed(record)))
    throw new ApiError(
      "unsupported_parameter",
      `seed: model '${record.name}' has no latent z input (${record.family === "spade" ? "use_vae is off" : "a CycleGAN generator"}), so its output does not depend on a seed; leave seed out`,
      { field: "seed", reason: "no_z_input" },
    );
  if (record.family === "dcgan")
    for (const [field, unset] of STYLEGAN_ONLY)
      if (!unset(given[field]))
        throw new ApiError("unsupported_parameter", `${field}: model '${record.name}' is a DCGAN generator (z → image); ${field} is a StyleGAN2 parameter, leave it out`, {
          field,
          reason: "stylegan2_only",
        });
  const resolved: Record<string, unknown> = { ...given };
  for (const [k, v] of Object.entries(inputSpec(record).defaults)) if (resolved[k] === undefined) resolved[k] = v;
  return resolved as P;
}

/** Short-lived URLs of a version's files: its sample and, by position, its examples' input files. */
export interface ModelUrls {
  sample?: string;
  examples?: (string | undefined)[];
}

export function describeModel(record: ModelJson, versions: string[], tenant: string | undefined, urls: ModelUrls = {}): ModelInfo {
  const { input, defaults } = inputSpec(record);
  return {
    name: record.name,
    family: record.family,
    versions,
    latest: versions[versions.length - 1],
    description: record.description,
    input,
    defaults,
    classes: record.classes,
    class_names: record.class_names,
    domains: record.domains,
    sample_url: urls.sample,
    examples: record.examples?.map(({ file: _f, ...ex }, i) => ({ ...ex, url: urls.examples?.[i] })),
    owned: record.tenant !== undefined && record.tenant === tenant,
  };
}
