/**
 * Latent-space jobs that take longer than a generate: keyframe videos and projection. Both run as predictions
 * (tasks "video" and "project", with progress and cancel); these routes create one and wait like /v1/generate,
 * answering 202 with the prediction when it is not done within the wait.
 */
import { createRoute } from "@hono/zod-openapi";
import { ProjectRequest, ProjectResponse, VideoRequest, VideoResponse } from "@ganserve/core/api/inference";
import { projectResponse, videoResponse } from "@ganserve/core/predictions/tasks/latent-tasks";
import { newRouter } from "../app.ts";
import type { Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { createAndWait } from "./predictions.ts";
import { inferenceErrors, predictionAccepted, PreferHeader } from "./shared.ts";

const video = createRoute({
  method: "post",
  path: "/generate/video",
  tags: ["inference"],
  summary: "Keyframes (seeds or w's) → an animated WebP or GIF, linear in w or slerp in z, looping, one cell or a grid",
  middleware: [requireJson] as const,
  request: { headers: PreferHeader, body: { required: true, content: { "application/json": { schema: VideoRequest } } } },
  responses: { 200: { description: "Video", content: { "application/json": { schema: VideoResponse } } }, 202: predictionAccepted, ...inferenceErrors },
});

const projection = createRoute({
  method: "post",
  path: "/generate/project",
  tags: ["inference"],
  summary: "Image → w (StyleGAN2): Adam on w and noise as NVlabs' projector.py; returns w, its image, PSNR and the loss curve",
  middleware: [requireJson] as const,
  request: { headers: PreferHeader, body: { required: true, content: { "application/json": { schema: ProjectRequest } } } },
  responses: { 200: { description: "Projection", content: { "application/json": { schema: ProjectResponse } } }, 202: predictionAccepted, ...inferenceErrors },
});

export function latentRoutes(services: Services) {
  return newRouter()
    .openapi(video, async (c) => {
      const { model, version, ...input } = c.req.valid("json");
      return createAndWait(c, services, { model, version, task: "video", input }, videoResponse) as never;
    })
    .openapi(projection, async (c) => {
      const { model, version, ...input } = c.req.valid("json");
      return createAndWait(c, services, { model, version, task: "project", input }, projectResponse) as never;
    });
}
