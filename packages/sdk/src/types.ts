/**
 * Every request and response type the SDK exposes, inferred from the zod schemas in @ganserve/core that the
 * server validates with and publishes as OpenAPI, so a schema change breaks the SDK's typecheck instead of
 * drifting silently. Type-only imports: the browser bundle carries no zod.
 */
import type { z } from "zod";
import type * as common from "@ganserve/core/api/common";
import type * as finetune from "@ganserve/core/api/finetune";
import type * as inference from "@ganserve/core/api/inference";
import type * as predictions from "@ganserve/core/predictions/schema";
import type { ErrorCode } from "@ganserve/core/errors";

export type GenerateRequest = z.input<typeof inference.GenerateRequest>;
export type InterpolateRequest = z.input<typeof inference.InterpolateRequest>;
export type GenerateResponse = z.infer<typeof inference.GenerateResponse>;
export type ImageResult = z.infer<typeof inference.ImageResult>;
export type TranslateResponse = z.infer<typeof inference.TranslateResponse>;
/** The JSON form of /v1/translate (files as base64); the SDK sends the multipart form instead. */
export type TranslateFields = z.input<typeof inference.TranslateRequest>;

/** Latent space (StyleGAN2): videos, projection, directions and edits. */
export type VideoRequest = z.input<typeof inference.VideoRequest>;
export type VideoResponse = z.infer<typeof inference.VideoResponse>;
/** The JSON form of /v1/generate/project (image as base64); the SDK takes a file instead. */
export type ProjectFields = z.input<typeof inference.ProjectRequest>;
export type ProjectResponse = z.infer<typeof inference.ProjectResponse>;
export type Edit = z.input<typeof inference.Edit>;
export type DirectionInfo = z.infer<typeof inference.DirectionInfo>;
export type DirectionList = z.infer<typeof inference.DirectionList>;
export type DirectionUpload = z.input<typeof inference.DirectionUpload>;

export type ModelInfo = z.infer<typeof inference.ModelInfo>;
export type ModelList = z.infer<typeof inference.ModelList>;
export type ModelVersion = z.infer<typeof inference.ModelVersion>;

export type DatasetLayout = z.infer<typeof finetune.DatasetLayout>;
export type CreateDatasetRequest = z.input<typeof finetune.CreateDatasetRequest>;
export type Dataset = z.infer<typeof finetune.Dataset>;
export type DatasetList = z.infer<typeof finetune.DatasetList>;
export type Rejection = z.infer<typeof finetune.Rejection>;

export type CreateFineTuneRequest = z.input<typeof finetune.CreateFineTuneRequest>;
export type FineTune = z.infer<typeof finetune.FineTune>;
export type FineTuneList = z.infer<typeof finetune.FineTuneList>;
export type FineTuneStatus = z.infer<typeof finetune.FineTuneStatus>;
export type FineTuneEvent = z.infer<typeof finetune.FineTuneEvent>;

export type CreatePredictionRequest = z.input<typeof predictions.CreatePredictionRequest>;
export type Prediction = z.infer<typeof predictions.Prediction>;
export type PredictionStatus = z.infer<typeof predictions.PredictionStatus>;
export type PredictionList = z.infer<typeof predictions.PredictionList>;
export type PredictionEvent = z.infer<typeof predictions.PredictionEvent>;

export type ErrorBody = z.infer<typeof common.ErrorBody>;
export type Health = z.infer<typeof common.Health>;

/** Codes the server sends (keys of ERROR_STATUS in @ganserve/core/errors). */
export type ApiErrorCode = ErrorCode;

/** Translate's file fields as the server's schema names them (core's TRANSLATE_FILE_FIELDS). */
export type TranslateFileField = inference.TranslateFileField;
/**
 * The same list at runtime, which the browser entry cannot import from core (zod); the compiler holds it to
 * the schema's names and the SDK's entry test to core's list, so it cannot drift.
 */
export const TRANSLATE_FILE_FIELDS = ["image", "label_map", "instance_map", "style_image"] as const satisfies readonly TranslateFileField[];

/**
 * /v1/translate with files instead of base64. `F` is what the entry point accepts as a file: bytes and
 * streams everywhere, plus path strings from the Node entry.
 */
export type TranslateRequest<F> = Omit<TranslateFields, TranslateFileField> & { [K in TranslateFileField]?: F };

/** /v1/generate/project with the image as a file (bytes, a stream, or a path from the Node entry). */
export type ProjectRequest<F> = Omit<ProjectFields, "image"> & { image: F };
