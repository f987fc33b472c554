/** Liveness, readiness and the API description: public, no key needed. */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { Health, Readiness } from "@ganserve/core/api/common";
import type { AppEnv, Services } from "../env.ts";

const VERSION = "0.1.0";

const health = createRoute({
  method: "get",
  path: "/health",
  tags: ["system"],
  summary: "The process is up",
  responses: { 200: { description: "Alive", content: { "application/json": { schema: Health } } } },
});

const ready = createRoute({
  method: "get",
  path: "/ready",
  tags: ["system"],
  summary: "Storage reachable and models warmed: safe to route traffic here",
  responses: {
    200: { description: "Ready", content: { "application/json": { schema: Readiness } } },
    503: { description: "Not ready", content: { "application/json": { schema: Readiness } } },
  },
});

export function systemRoutes(services: Services) {
  return new OpenAPIHono<AppEnv>()
    .openapi(health, (c) =>
      c.json({ status: "ok" as const, uptime_s: (Date.now() - services.startedAt) / 1000, version: VERSION }, 200),
    )
    .openapi(ready, async (c) => {
      const checks: Readiness["checks"] = {};
      checks.storage = (await services.storage.ping()) ? { ok: true } : { ok: false, detail: "storage not reachable" };
      for (const [name, probe] of services.readiness) {
        try {
          checks[name] = await probe();
        } catch (e) {
          // The message may name a key or a model; it goes to the log, the public answer stays fixed.
          services.log.warn({ check: name, err: e }, "readiness check failed");
          checks[name] = { ok: false, detail: "check failed" };
        }
      }
      const ok = Object.values(checks).every((v) => v.ok);
      const body = { status: ok ? ("ready" as const) : ("not_ready" as const), checks };
      return ok ? c.json(body, 200) : c.json(body, 503);
    });
}
