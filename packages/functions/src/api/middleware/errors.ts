/**
 * Renders every failure in the one error shape. Domain code throws `ApiError`; anything else is a bug and
 * becomes a 500 whose details stay in the log (the client gets the request id to quote).
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, type ErrorCode } from "@ganserve/core/errors";
import type { Logger } from "@ganserve/core/log";
import type { AppEnv } from "../env.ts";

export function errorResponse(c: Context<AppEnv>, err: ApiError) {
  if (err.retryAfter !== undefined) c.header("Retry-After", String(Math.ceil(err.retryAfter)));
  const body = { error: { code: err.code, message: err.message, details: err.details, requestId: c.get("requestId") } };
  return c.json(body, err.status as ContentfulStatusCode);
}

const HTTP_CODES: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
};

export function onError(log: Logger) {
  return (err: Error, c: Context<AppEnv>) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      const code = HTTP_CODES[err.status] ?? (err.status >= 500 ? "internal" : "bad_request");
      return errorResponse(c, new ApiError(code, err.message || code.replace(/_/g, " ")));
    }
    log.error({ requestId: c.get("requestId"), err }, "unhandled error");
    return errorResponse(c, new ApiError("internal", "internal error; quote the request id when reporting it"));
  };
}

export const notFound = (c: Context<AppEnv>) =>
  errorResponse(c, new ApiError("not_found", `no route for ${c.req.method} ${c.req.path}`));
