/**
 * Request and response schemas of the inference API: models, generate, interpolate, translate. Written
 * once here; routes validate with them, /openapi.json is generated from them and the SDK's types are
 * inferred from them.
 */
import { z } from "zod";
import { SEED_RNGS } from "../networks/dcgan/config.ts";
import { Family, ModelExample, ModelJson, ModelName, SpadeClass, VersionId, VersionRef } from "../models/model-json.ts";

export const MAX_SEEDS = 64;

/** An 8×8 PNG (a yellow disc on white), small enough to be the translate and projection example /docs shows and tests send. */
const EXAMPLE_PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAMAAADz0U65AAAABlBMVEX6yB7///94cyYUAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAGUlEQVQI12NghAIGIAICEIMBDPAz4IqhAAAEyAAhPGzxxQAAAABJRU5ErkJggg==";

const Seed = z.number().int().min(0).max(4294967295).meta({ description: "seed (uint32), turned into z by the model's sampler (seed_rng)" });

/** How a seed becomes z: the model records its sampler (GET /v1/models `defaults.seed_rng`); a request may override it. */
export const SeedRng = z.enum(SEED_RNGS).meta({
  description:
    "torch: `torch.manual_seed(seed); torch.randn(1, *z_shape)` (DCGAN imports' default); numpy: `np.random.RandomState(seed).randn(1, z_dim)` (StyleGAN2's generate.py, its default)",
});

/** `[0, 1, 5]` or `"0-7"` (inclusive). Expanded and bounded by `expandSeeds`. */
export const Seeds = z
  .union([z.array(Seed).min(1).max(MAX_SEEDS), z.string().regex(/^\d{1,10}-\d{1,10}$/, 'a range like "0-7"')])
  .meta({ description: `1..${MAX_SEEDS} seeds, as a list or an inclusive range "a-b"`, example: [0, 1, 2, 42] });

export const ImageFormat = z.enum(["png", "jpeg", "webp"]).default("png");
export const OutputMode = z
  .enum(["base64", "url"])
  .default("base64")
  .meta({ description: "base64 in the response, or a presigned GET URL to the stored image" });

const EncodeOptions = {
  format: ImageFormat,
  quality: z.number().int().min(1).max(100).optional().meta({ description: "jpeg/webp quality (default 90)" }),
  output: OutputMode,
};

export const NoiseMode = z.enum(["const", "random", "none"]).default("const");

const StyleGANParams = {
  truncation_psi: z.number().min(-4).max(4).default(1).meta({ description: "1 = no truncation" }),
  truncation_cutoff: z.number().int().min(0).optional().meta({ description: "truncate only the first N ws" }),
  noise_mode: NoiseMode,
  class_idx: z.number().int().min(0).optional().meta({ description: "class for conditional models (default: the model's defaults.class_idx)" }),
};

/** The most w's (or ws's) one request may give, the same bound as seeds. */
export const MAX_LATENTS = MAX_SEEDS;
/** Edits move w by strength × a unit direction; beyond this the images leave the model's range. 422 outside it. */
export const MAX_EDIT_STRENGTH = 100;

/** ws indices: a list or an inclusive range "a-b". */
const LayerList = z.union([z.array(z.number().int().min(0)).min(1).max(64), z.string().regex(/^\d{1,2}-\d{1,2}$/)]);

const FloatVector = z.union([
  z.array(z.number()).min(1).max(4096),
  z.string().max(65536).meta({ description: "base64 of little-endian float32 values" }),
]);

/** Names of directions: SeFa's are `sefa-<k>` (k-th largest eigenvalue), the rest are uploaded. */
export const DirectionName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "lowercase letters, digits, '.', '_' and '-', at most 64")
  .meta({ example: "sefa-0" });

export const Edit = z
  .object({
    direction: DirectionName.meta({ description: "a direction this model version lists (GET /v1/models/{name}/versions/{version}/directions)" }),
    strength: z.number().meta({ description: `how far to move along the unit direction, in w units; ${-MAX_EDIT_STRENGTH}..${MAX_EDIT_STRENGTH} (422 outside). 0 is the identity` }),
    layers: LayerList.optional().meta({ description: "ws indices to move, e.g. \"0-3\" (default: all)" }),
  })
  .meta({ id: "Edit" });
export type Edit = z.infer<typeof Edit>;

export const DirectionInfo = z
  .object({
    name: DirectionName,
    kind: z.enum(["sefa", "uploaded"]).meta({ description: "sefa: computed from the weights (SeFa); uploaded: a vector you stored" }),
    eigenvalue: z.number().optional().meta({ description: "sefa: its eigenvalue of AᵀA (directions are listed largest first)" }),
    description: z.string().optional(),
    vector: z.array(z.number()).optional().meta({ description: "the unit vector [w_dim] (GET of one direction)" }),
  })
  .meta({ id: "DirectionInfo" });
export type DirectionInfo = z.infer<typeof DirectionInfo>;

export const DirectionList = z
  .object({ model: ModelName, version: VersionId, w_dim: z.number().int(), directions: z.array(DirectionInfo) })
  .meta({ id: "DirectionList" });
export type DirectionList = z.infer<typeof DirectionList>;

export const DirectionUpload = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    name: DirectionName.meta({
      description: "your name for it (names starting with 'sefa-' are SeFa's); storing a name again replaces it",
      example: "first-axis",
    }),
    vector: FloatVector.meta({ description: "[w_dim] in w space (e.g. an InterFaceGAN boundary); stored normalised to unit length" }),
    description: z.string().max(500).optional(),
  })
  .meta({
    id: "DirectionUpload",
    example: { model: "fashion-stylegan2", name: "first-axis", vector: Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0)), description: "w's first axis" },
  });
export type DirectionUpload = z.input<typeof DirectionUpload>;

const LatentOutput = z.enum(["base64", "json"]).default("base64").meta({
  description: "how w/ws come back: base64 of little-endian float32 (default) or JSON numbers (exact float32 values)",
});

export const GenerateRequest = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    seeds: Seeds.optional().meta({ description: "give exactly one of seeds, z, w, ws and projected_w" }),
    seed_rng: SeedRng.optional().meta({ description: "the sampler that turns seeds into z (default: the model's defaults.seed_rng)" }),
    z: z
      .array(FloatVector)
      .min(1)
      .max(MAX_LATENTS)
      .optional()
      .meta({ description: "DCGAN: one z [z_dim] per image, given directly (a wrong length is 422 naming the model's shape)" }),
    w: z
      .array(FloatVector)
      .min(1)
      .max(MAX_LATENTS)
      .optional()
      .meta({ description: "one w [w_dim] per image, used for every layer as given (no truncation, no class)" }),
    ws: z
      .array(z.union([z.array(z.array(z.number()).min(1).max(4096)).min(1).max(64), z.string().max(4 * 1024 * 1024)]))
      .min(1)
      .max(MAX_LATENTS)
      .optional()
      .meta({ description: "one ws [num_ws, w_dim] per image (base64: num_ws × w_dim float32), used as given" }),
    projected_w: z
      .string()
      .max(16 * 1024 * 1024)
      .optional()
      .meta({ description: "base64 of an .npz (NVlabs projector.py's projected_w.npz, array 'w') or .npy of shape [n, num_ws, w_dim]" }),
    ...StyleGANParams,
    edits: z.array(Edit).max(16).optional().meta({ description: "moves along named directions, applied in w after truncation and mixing" }),
    return_latents: z
      .union([z.boolean(), z.enum(["w", "ws"])])
      .default(false)
      .meta({
        description:
          "true or \"w\": each image's w (the truncated w fed to synthesis); when its layers differ (truncation_cutoff, style_mix, layer edits) ws instead. \"ws\": always ws",
      }),
    latent_format: LatentOutput,
    style_mix: z
      .object({
        seeds: Seeds.meta({ description: "one seed for all images, or one per image" }),
        layers: LayerList.meta({ description: "ws indices taken from the mixing seed, e.g. \"4-7\"" }),
      })
      .optional(),
    ...EncodeOptions,
  })
  .meta({ id: "GenerateRequest", example: { model: "fashion-stylegan2", seeds: "0-3", truncation_psi: 0.7 } });
export type GenerateRequest = z.input<typeof GenerateRequest>;

export const InterpolateRequest = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    seed_a: Seed,
    seed_b: Seed,
    frames: z.number().int().min(2).max(MAX_SEEDS).default(8),
    ...StyleGANParams,
    ...EncodeOptions,
  })
  .meta({ id: "InterpolateRequest", example: { model: "fashion-stylegan2", seed_a: 0, seed_b: 1, frames: 8 } });
export type InterpolateRequest = z.input<typeof InterpolateRequest>;

export const VideoRequest = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    keyframes: z
      .object({
        seeds: z.array(Seed).min(1).max(MAX_SEEDS).optional(),
        w: z.array(FloatVector).min(1).max(MAX_LATENTS).optional().meta({ description: "w [w_dim] per keyframe, as return_latents gives them" }),
      })
      .meta({ description: "give seeds or w; with a grid, cols × rows × k of them: cell (y, x) takes k in a row, gen_video.py's order" }),
    frames_per_transition: z.number().int().min(1).max(1000).default(30),
    interpolation: z
      .enum(["linear", "slerp"])
      .default("linear")
      .meta({ description: "linear: straight lines in w; slerp: great circles in z, each frame mapped (seeds only)" }),
    loop: z.boolean().default(true).meta({ description: "add the transition from the last keyframe back to the first" }),
    grid: z.object({ cols: z.number().int().min(1).max(16), rows: z.number().int().min(1).max(16) }).optional(),
    ...StyleGANParams,
    format: z.enum(["webp", "gif"]).default("webp"),
    fps: z.number().min(1).max(60).default(30),
    quality: z.number().int().min(1).max(100).optional().meta({ description: "lossy WebP quality; default lossless (frames keep their exact pixels)" }),
    output: OutputMode,
  })
  .meta({
    id: "VideoRequest",
    description: "frames × grid cells are bounded by the server's GANSERVE_MAX_VIDEO_FRAMES (default 1800): more is 422 frame_budget before any work",
    example: { model: "fashion-stylegan2", keyframes: { seeds: [0, 1, 2] }, frames_per_transition: 30 },
  });
export type VideoRequest = z.input<typeof VideoRequest>;

export const VideoResult = z
  .object({
    content_type: z.string().meta({ example: "image/webp" }),
    width: z.number().int(),
    height: z.number().int(),
    frames: z.number().int(),
    fps: z.number(),
    data: z.string().optional(),
    url: z.string().optional(),
    expires_at: z.string().optional(),
  })
  .meta({ id: "VideoResult" });

export const Timings = z
  .object({ queue_ms: z.number(), compute_ms: z.number(), encode_ms: z.number(), total_ms: z.number() })
  .meta({ id: "Timings" });

export const ImageResult = z
  .object({
    seed: z.number().int().optional(),
    frame: z.number().int().optional(),
    content_type: z.string().meta({ example: "image/png" }),
    width: z.number().int(),
    height: z.number().int(),
    data: z.string().optional().meta({ description: "base64 image bytes (output=base64)" }),
    url: z.string().optional().meta({ description: "presigned GET URL (output=url)" }),
    expires_at: z.string().optional(),
    w: z.union([z.string(), z.array(z.number())]).optional().meta({ description: "return_latents: the w [w_dim] fed to synthesis" }),
    ws: z.union([z.string(), z.array(z.array(z.number()))]).optional().meta({ description: "return_latents: ws [num_ws, w_dim]" }),
  })
  .meta({ id: "ImageResult" });
export type ImageResult = z.infer<typeof ImageResult>;

export const GenerateResponse = z
  .object({
    model: ModelName,
    version: VersionId,
    params: z.record(z.string(), z.unknown()).meta({ description: "the parameters used, defaults filled in" }),
    images: z.array(ImageResult),
    timings: Timings,
  })
  .meta({ id: "GenerateResponse" });
export type GenerateResponse = z.infer<typeof GenerateResponse>;

export const VideoResponse = z
  .object({ model: ModelName, version: VersionId, params: z.record(z.string(), z.unknown()), video: VideoResult, timings: Timings })
  .meta({ id: "VideoResponse" });
export type VideoResponse = z.infer<typeof VideoResponse>;

export const ProjectRequest = z
  .object({
    model: ModelName,
    version: VersionRef.default("latest"),
    image: z.string().max(16 * 1024 * 1024).meta({ description: "base64 PNG/JPEG/WebP of the model's resolution (or any size with resize: true)" }),
    resize: z.boolean().default(false).meta({ description: "scale the image to the model's resolution; otherwise another size is 422" }),
    class_idx: StyleGANParams.class_idx,
    steps: z.number().int().min(1).max(5000).default(1000).meta({ description: "optimisation steps (projector.py: 1000)" }),
    learning_rate: z.number().positive().max(1).default(0.1),
    optimize_noise: z
      .boolean()
      .default(true)
      .meta({
        description:
          "optimise the per-layer noise too (projector.py). The returned image uses that noise; /v1/generate with the returned w uses the model's own noise, so turn this off to get a w that reproduces the image there",
      }),
    w_avg_samples: z.number().int().min(100).max(10000).default(10000),
    seed: z.number().int().min(0).max(4294967295).default(0).meta({ description: "seeds the noise initialisation and the w noise" }),
    progress_video: z.boolean().default(false).meta({ description: "also return an animated WebP of the image as the optimisation goes (about 50 frames)" }),
    latent_format: LatentOutput,
    ...EncodeOptions,
  })
  .meta({ id: "ProjectRequest", example: { model: "fashion-stylegan2", image: EXAMPLE_PNG, resize: true, steps: 20 } });
export type ProjectRequest = z.input<typeof ProjectRequest>;

export const ProjectResponse = z
  .object({
    model: ModelName,
    version: VersionId,
    params: z.record(z.string(), z.unknown()),
    w: z.union([z.string(), z.array(z.number())]).meta({ description: "the projected w [w_dim] (every layer uses it)" }),
    image: ImageResult.meta({ description: "the image of w (with the optimised noise when optimize_noise)" }),
    psnr: z.number().meta({ description: "PSNR of the projected image against the target, dB" }),
    loss: z.array(z.number()).meta({ description: "the loss at every step" }),
    progress_video: ImageResult.optional().meta({ description: "progress_video: the optimisation as an animated WebP" }),
    timings: Timings,
  })
  .meta({ id: "ProjectResponse" });
export type ProjectResponse = z.infer<typeof ProjectResponse>;

export const Direction = z.enum(["AtoB", "BtoA"]).default("AtoB");
export const Preprocess = z
  .enum(["resize", "crop", "none"])
  .default("resize")
  .meta({
    description:
      "resize: scale the shorter side to the model's size keeping aspect ratio; crop: centre-crop to a square first; none: only round to the network's size multiple",
  });

/**
 * Translate's input files, base64 in the JSON form and files under the same names in the multipart form: the
 * one list of them (the HTTP route's multipart parsing, the service's TranslateInputs and the SDK derive it).
 */
const TranslateFiles = {
  image: z.string().optional().meta({ description: "CycleGAN: base64 PNG/JPEG/WebP" }),
  label_map: z.string().optional().meta({ description: "SPADE: base64 PNG of class indices (grayscale or palette)" }),
  instance_map: z.string().optional().meta({ description: "SPADE: base64 PNG of instance ids" }),
  style_image: z.string().optional().meta({ description: "SPADE with a VAE encoder: base64 style image" }),
};
export type TranslateFileField = keyof typeof TranslateFiles;
export const TRANSLATE_FILE_FIELDS = Object.keys(TranslateFiles) as readonly TranslateFileField[];

/** JSON form of /v1/translate; the multipart form carries the same fields with files instead of base64. */
export const TranslateRequest = z
  .object({
    model: ModelName.meta({ example: "emoji-cyclegan" }), // ModelName's own example is a StyleGAN2 model
    version: VersionRef.default("latest"),
    ...TranslateFiles,
    direction: Direction,
    preprocess: Preprocess,
    load_size: z.number().int().min(16).max(2048).optional().meta({ description: "size for preprocess=resize" }),
    seed: z
      .number()
      .int()
      .min(0)
      .max(4294967295)
      .optional()
      .meta({
        description:
          "SPADE with a VAE (use_vae, see the model's input.seed): seed of the latent z (default 0). Refused with 422 unsupported_parameter by models that have no z input",
      }),
    ...EncodeOptions,
  })
  .meta({ id: "TranslateRequest", example: { model: "emoji-cyclegan", image: EXAMPLE_PNG, direction: "AtoB" } });
export type TranslateRequest = z.input<typeof TranslateRequest>;

export const TranslateResponse = z
  .object({
    model: ModelName,
    version: VersionId,
    params: z.record(z.string(), z.unknown()),
    image: ImageResult,
    timings: Timings,
  })
  .meta({ id: "TranslateResponse" });
export type TranslateResponse = z.infer<typeof TranslateResponse>;

export const ModelInfo = z
  .object({
    name: ModelName,
    family: Family,
    versions: z.array(VersionId),
    latest: VersionId,
    description: z.string().optional(),
    input: z.record(z.string(), z.unknown()).meta({ description: "what the model takes (sizes, classes, domains)" }),
    defaults: z.record(z.string(), z.unknown()).meta({ description: "default request parameters" }),
    classes: z.array(SpadeClass).optional(),
    class_names: z.array(z.string()).optional(),
    domains: z.object({ A: z.string(), B: z.string() }).optional(),
    sample_url: z.string().optional(),
    examples: z
      .array(ModelExample.omit({ file: true }).extend({ url: z.string().optional().meta({ description: "Short-lived URL of the example's input file" }) }))
      .optional()
      .meta({ description: "Example inputs shipped with the model: run one as it is (an image or label map from `url`, or the seeds and class)" }),
    owned: z.boolean().meta({ description: "false for shared base models" }),
  })
  .meta({ id: "ModelInfo" });
export type ModelInfo = z.infer<typeof ModelInfo>;

export const ModelList = z.object({ models: z.array(ModelInfo) }).meta({ id: "ModelList" });
export const ModelVersion = ModelJson;
