/**
 * Per-key request rate limit for /v1. Runs after `requireApiKey` (it needs the key's id) and before the body
 * is read, so a client over its limit costs a map lookup and no parsing.
 */
import type { MiddlewareHandler } from "hono";
import { keyId } from "@ganserve/core/auth/keys";
import { ApiError } from "@ganserve/core/errors";
import type { TokenBucketLimiter } from "@ganserve/core/limits/rate-limiter";
import type { AppEnv } from "../env.ts";

export function rateLimit(limiter: TokenBucketLimiter): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const record = c.get("apiKey");
    // Unauthenticated requests never get here (requireApiKey throws first); keep the guard for reuse.
    if (!record) return next();
    const d = limiter.take(keyId(record));
    c.header("X-RateLimit-Limit", String(d.limit));
    c.header("X-RateLimit-Remaining", String(d.remaining));
    if (!d.allowed)
      throw new ApiError("rate_limited", `rate limit of ${d.limit} requests per minute exceeded`, { limit_rpm: d.limit }, d.retryAfter);
    await next();
  };
}
