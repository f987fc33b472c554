import { z } from "@hono/zod-openapi";
import { ErrorBody } from "@ganserve/core/api/common";
import { Prediction } from "@ganserve/core/predictions/schema";

/** A JSON response entry for a route's OpenAPI description. */
export const jsonOk = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** The caller's tenant; routes under /v1 run after the key check, so it is always there. */
export const tenantOf = (c: { get(k: "apiKey"): { tenant: string } | undefined }) => c.get("apiKey")!.tenant;

/** An error response entry for a route's OpenAPI description. */
export const jsonError = (description: string) => jsonOk(ErrorBody, description);

/** The error responses every inference route can give. */
export const inferenceErrors = {
  400: jsonError("Invalid request (validation_failed, invalid_image, invalid_label_map)"),
  401: jsonError("Missing or invalid API key"),
  404: jsonError("Unknown model or version"),
  413: jsonError("Body or image too large"),
  415: jsonError("Unsupported content type or image format"),
  422: jsonError("Model of the wrong family for this route (wrong_model_family), or a parameter this model cannot use (unsupported_parameter)"),
  429: jsonError("Queue full; retry after Retry-After seconds"),
  503: jsonError("Deadline exceeded or storage unavailable"),
};

/** The 202 of a route that runs as a prediction and did not end within the wait. */
export const predictionAccepted = {
  description: "Not done within the wait: the prediction (poll `Location`)",
  content: { "application/json": { schema: Prediction } },
};

/** `Prefer: wait=N` on the routes that wait for a prediction. */
export const PreferHeader = z.object({
  prefer: z.string().max(200).optional().meta({ description: "`wait=N`: answer 202 with the prediction after N seconds (default and cap: server settings)" }),
});

/** When event routes answer as snapshots (buffered responses): how long a client should wait before asking again. */
export const SNAPSHOT_RETRY_MS = 2_000;
