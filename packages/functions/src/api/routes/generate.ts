/** POST /v1/generate and /v1/generate/interpolate (StyleGAN2). */
import { createRoute } from "@hono/zod-openapi";
import { GenerateRequest, GenerateResponse, InterpolateRequest } from "@ganserve/core/api/inference";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { inferenceErrors } from "./shared.ts";

const generate = createRoute({
  method: "post",
  path: "/generate",
  tags: ["inference"],
  summary: "Seeds → images (StyleGAN2). The same request always gives the same bytes.",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: GenerateRequest } } } },
  responses: { 200: { description: "Images", content: { "application/json": { schema: GenerateResponse } } }, ...inferenceErrors },
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

export function generateRoutes({ inference }: Services) {
  return newRouter()
    .openapi(generate, async (c) => c.json(await inference.generate(c.req.valid("json"), c.get("apiKey")?.tenant), 200))
    .openapi(interpolate, async (c) => c.json(await inference.interpolate(c.req.valid("json"), c.get("apiKey")?.tenant), 200));
}
