/** POST /v1/generate and /v1/generate/interpolate (StyleGAN2). */
import { createRoute } from "@hono/zod-openapi";
import { GenerateRequest, GenerateResponse, InterpolateRequest } from "@ganserve/core/api/inference";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { createAndWait } from "./predictions.ts";
import { inferenceErrors, predictionAccepted, PreferHeader } from "./shared.ts";

const generate = createRoute({
  method: "post",
  path: "/generate",
  tags: ["inference"],
  summary: "Seeds → images (StyleGAN2). The same request always gives the same bytes. Runs as a prediction: 202 with it when not done within the wait.",
  middleware: [requireJson] as const,
  request: { headers: PreferHeader, body: { required: true, content: { "application/json": { schema: GenerateRequest } } } },
  responses: { 200: { description: "Images", content: { "application/json": { schema: GenerateResponse } } }, 202: predictionAccepted, ...inferenceErrors },
});

const interpolate = createRoute({
  method: "post",
  path: "/generate/interpolate",
  tags: ["inference"],
  summary: "Frames from seed A to seed B, interpolated linearly in w space",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: InterpolateRequest } } } },
  responses: { 200: { description: "Frames", content: { "application/json": { schema: GenerateResponse } } }, ...inferenceErrors },
});

export function generateRoutes(services: Services) {
  const { inference } = services;
  return newRouter()
    .openapi(generate, async (c) => {
      const body = c.req.valid("json");
      if (services.settings.GANSERVE_SYNC_INFERENCE) return c.json(await inference.generate(body, c.get("apiKey")?.tenant), 200);
      const { model, version, ...input } = body;
      return createAndWait(c, services, { model, version, task: "generate", input }, (rec, r) => ({
        model: rec.model,
        version: rec.version,
        params: r.params,
        images: r.output,
        timings: r.timings,
      })) as never;
    })
    .openapi(interpolate, async (c) => c.json(await inference.interpolate(c.req.valid("json"), c.get("apiKey")?.tenant), 200));
}
