/** One JSON log line per request: id, method, route pattern, status, milliseconds. */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "@ganserve/core/log";
import type { AppEnv } from "../env.ts";

export function requestLog(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    log.info({
      requestId: c.get("requestId"),
      method: c.req.method,
      route: routePath(c),
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 10) / 10,
    }, "request");
  };
}
