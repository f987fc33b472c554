import type { MiddlewareHandler } from "hono";
import { ApiError } from "@ganserve/core/errors";

/** 415 before validation, so a wrong content type is not reported as a malformed body. */
export const requireJson: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type))
    throw new ApiError("unsupported_media_type", `expected Content-Type application/json, got '${type || "none"}'`);
  await next();
};
