/** Prometheus scrape endpoint. Public like /health: it holds counts and timings, no tenant data. */
import { Hono } from "hono";
import type { AppEnv, Services } from "../env.ts";

export function metricsRoutes({ metrics }: Services) {
  return new Hono<AppEnv>().get("/metrics", async (c) =>
    c.body(await metrics.registry.metrics(), 200, { "Content-Type": metrics.registry.contentType }),
  );
}
