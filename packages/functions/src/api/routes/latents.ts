/**
 * Latent-space use cases that take longer than a generate: keyframe videos (and projection). They are core use
 * cases with a progress callback; until the predictions worker runs them as prediction kinds, they are served
 * here like /v1/generate (the request waits for the result).
 */
import { createRoute } from "@hono/zod-openapi";
import { VideoRequest, VideoResponse } from "@ganserve/core/api/inference";
import { renderVideo } from "@ganserve/core/latents/video";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { inferenceErrors } from "./shared.ts";

const video = createRoute({
  method: "post",
  path: "/generate/video",
  tags: ["inference"],
  summary: "Keyframes (seeds or w's) → an animated WebP or GIF, linear in w or slerp in z, looping, one cell or a grid",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: VideoRequest } } } },
  responses: { 200: { description: "Video", content: { "application/json": { schema: VideoResponse } } }, ...inferenceErrors },
});

export function latentRoutes({ inference, settings }: Services) {
  const limits = { maxFrames: settings.GANSERVE_MAX_VIDEO_FRAMES, maxPixels: settings.GANSERVE_MAX_PIXELS };
  return newRouter().openapi(video, async (c) => c.json(await renderVideo(inference, c.req.valid("json"), c.get("apiKey")?.tenant, limits), 200));
}
