/**
 * `model.json`: the version record that sits next to `weights.safetensors` under
 * `models/<name>/<version>/`. It is written last when a version is published, so its presence means the
 * weights are complete (and `weights.sha256` lets a reader prove it).
 */
import { z } from "zod";
import { FAMILIES } from "../families.ts";
import { MODEL_WEIGHTS_FILE } from "../storage/keys.ts";

export const Family = z.enum(FAMILIES).meta({ id: "Family", description: "Generator architecture family" });
export type Family = z.infer<typeof Family>;

export const ModelName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lower-case letters, digits and '-', at most 63 characters")
  .meta({ example: "fashion-stylegan2" });

/** Versions are `v1`, `v2`, …; `latest` is an alias resolved by the registry. */
export const VersionId = z.string().regex(/^v[1-9][0-9]{0,8}$/, "v1, v2, …").meta({ example: "v1" });
export const VersionRef = z
  .union([VersionId, z.literal("latest")])
  .meta({ description: "A version id or `latest`", example: "latest" });

export const SpadeClass = z.object({ id: z.number().int().min(0), name: z.string(), color: z.string().regex(/^#[0-9a-f]{6}$/i) });

/**
 * An example input shipped with a model, so a first visitor can run it with one click. CycleGAN: an input
 * image; SPADE: a label map (8-bit class ids). Files sit next to model.json, under `examples/`, in the repo's
 * `models/<name>/` folder and in storage alike. StyleGAN2 takes no file: its example is a class and seeds.
 */
export const ModelExample = z
  .object({
    caption: z.string().min(1).max(80),
    file: z
      .string()
      .regex(/^examples\/[a-z0-9][a-z0-9._-]{0,62}\.png$/, "examples/<lower-case name>.png")
      .optional()
      .meta({ description: "PNG next to model.json: an input image (CycleGAN) or a label map of class ids (SPADE)" }),
    direction: z.enum(["AtoB", "BtoA"]).optional().meta({ description: "CycleGAN: which generator the example is for" }),
    class_idx: z.number().int().min(0).optional().meta({ description: "StyleGAN2 with classes: the class to generate" }),
    seeds: z.array(z.number().int().min(0)).min(1).max(16).optional().meta({ description: "StyleGAN2: the seeds to generate" }),
  })
  .meta({ id: "ModelExample" });
export type ModelExample = z.infer<typeof ModelExample>;

export const ModelJson = z
  .object({
    schema_version: z.literal(1),
    name: ModelName,
    version: VersionId,
    family: Family,
    /** Upstream option names (e.g. StyleGAN2 Generator kwargs, CycleGAN define_G args, SPADE opt.*). */
    config: z.record(z.string(), z.unknown()),
    created_at: z.iso.datetime(),
    description: z.string().optional(),
    tenant: z.string().optional().meta({ description: "Owner; absent for shared base models" }),
    parent: z.object({ name: ModelName, version: VersionId }).optional(),
    provenance: z
      .object({
        source: z.string().optional(),
        fine_tune_job: z.string().optional(),
        dataset: z.string().optional(),
        steps: z.number().int().optional(),
        losses: z.record(z.string(), z.number()).optional(),
        license: z.string().optional(),
      })
      .optional(),
    weights: z.object({
      file: z.literal(MODEL_WEIGHTS_FILE),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      bytes: z.number().int().positive(),
      dtype: z.enum(["float32", "float16"]),
    }),
    /** SPADE: class id → name and palette colour, for painters and palette PNGs. */
    classes: z.array(SpadeClass).optional(),
    /** CycleGAN: names of the two domains. */
    domains: z.object({ A: z.string(), B: z.string() }).optional(),
    /** StyleGAN2 with c_dim > 0: class names by index. */
    class_names: z.array(z.string()).optional(),
    sample: z.string().optional().meta({ description: "Storage key of a sample image" }),
    examples: z.array(ModelExample).max(12).optional().meta({ description: "Example inputs that run with one click" }),
  })
  .meta({ id: "ModelJson" });
export type ModelJson = z.infer<typeof ModelJson>;
