/** Bearer API keys for everything under /v1. */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "@ganserve/core/errors";
import type { KeyRing } from "@ganserve/core/auth/keys";
import type { AppEnv } from "../env.ts";

export function requireApiKey(keys: KeyRing): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // Browsers cannot set headers on EventSource or <img>, so a query token is accepted on GET only.
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const key = match?.[1] ?? (c.req.method === "GET" ? c.req.query("api_key") : undefined);
    if (!key) throw new ApiError("unauthorized", "missing API key: send 'Authorization: Bearer <key>'");
    const record = keys.verify(key);
    if (!record) throw new ApiError("unauthorized", "invalid API key");
    c.set("apiKey", record);
    await next();
  };
}
