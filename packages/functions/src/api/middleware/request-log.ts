/** One JSON log line per request (id, method, route pattern, status, milliseconds), and the request metrics. */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "@ganserve/core/log";
import type { Metrics } from "@ganserve/core/inference/metrics";
import type { AppEnv } from "../env.ts";

export function requestLog(log: Logger, metrics: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    const ms = performance.now() - start;
    const route = routePath(c);
    const status = c.res.status;
    log.info({ requestId: c.get("requestId"), method: c.req.method, route, path: c.req.path, status, ms: Math.round(ms * 10) / 10 }, "request");
    metrics.requests.inc({ method: c.req.method, route, status: String(status) });
    metrics.latency.observe({ method: c.req.method, route }, ms / 1000);
  };
}
