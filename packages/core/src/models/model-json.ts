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
  })
  .meta({ id: "ModelJson" });
export type ModelJson = z.infer<typeof ModelJson>;
