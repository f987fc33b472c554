/** What `/v1/models` says about a model: its input spec and default request parameters, per family. */
import type { ModelInfo } from "../api/inference.ts";
import type { ModelJson } from "./model-json.ts";
import { parseSpadeConfig } from "../networks/spade/config.ts";

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
        defaults: { truncation_psi: 1, noise_mode: "const", format: "png", ...(cDim > 0 ? { class_idx: 0 } : {}) },
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
          height: h,
          width: w,
        },
        defaults: { seed: 0, format: "png" },
      };
    }
  }
}

export function describeModel(record: ModelJson, versions: string[], tenant: string | undefined, sampleUrl?: string): ModelInfo {
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
    sample_url: sampleUrl,
    owned: record.tenant !== undefined && record.tenant === tenant,
  };
}
