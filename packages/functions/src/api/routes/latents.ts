/**
 * Latent-space use cases that take longer than a generate: keyframe videos and projection. They are core use
 * cases with a progress callback; until the predictions worker runs them as prediction kinds, they are served
 * here like /v1/generate (the request waits for the result). Projection runs TF.js autodiff in this process,
 * yielding to the event loop after every step.
 */
import { createRoute } from "@hono/zod-openapi";
import { ProjectRequest, ProjectResponse, VideoRequest, VideoResponse } from "@ganserve/core/api/inference";
import { project } from "@ganserve/core/latents/projection";
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

const projection = createRoute({
  method: "post",
  path: "/generate/project",
  tags: ["inference"],
  summary: "Image → w (StyleGAN2): Adam on w and noise as NVlabs' projector.py; returns w, its image, PSNR and the loss curve",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: ProjectRequest } } } },
  responses: { 200: { description: "Projection", content: { "application/json": { schema: ProjectResponse } } }, ...inferenceErrors },
});

export function latentRoutes({ inference, registry, settings }: Services) {
  const limits = { maxFrames: settings.GANSERVE_MAX_VIDEO_FRAMES, maxPixels: settings.GANSERVE_MAX_PIXELS };
  return newRouter()
    .openapi(video, async (c) => c.json(await renderVideo(inference, c.req.valid("json"), c.get("apiKey")?.tenant, limits), 200))
    .openapi(projection, async (c) => c.json(await project(inference, registry, c.req.valid("json"), c.get("apiKey")?.tenant, limits), 200));
}
