/**
 * Keyframe videos and projections as prediction tasks ("video", "project"): long jobs that report progress
 * and stop between units of work (synthesis passes, optimisation steps) when canceled. The use cases stay in
 * video.ts and projection.ts; this maps their responses to a prediction's result (one output file, the rest
 * in params) and back (`videoResponse`, `projectResponse`), so /v1/generate/video and /project answer as before.
 */
import { ProjectRequest, VideoRequest, type ProjectResponse, type VideoResponse } from "../../api/inference.ts";
import type { ModelRegistry } from "../../models/registry.ts";
import { parseInput, PredictionStopped, registerPredictionHandler, withoutModel, type HandlerContext } from "../handlers.ts";
import type { PredictionResult } from "../schema.ts";
import { project } from "./projection.ts";
import { checkVideo, renderVideo } from "./video.ts";

export interface LatentLimits {
  maxFrames: number;
  maxPixels: number;
}

/** Progress to the record at most once a second (and at the end), and a cancel check at the same pace. */
function throttled(ctx: HandlerContext) {
  let last = 0;
  return async (done: number, total: number) => {
    const now = Date.now();
    if (done !== total && done !== 0 && now - last < 1000) return;
    last = now;
    await ctx.progress(done, total);
    if (done !== total && (await ctx.stopped())) throw new PredictionStopped();
  };
}

export const videoResponse = (r: { model: string; version: string }, result: PredictionResult): VideoResponse => {
  const { frame_count, ...params } = result.params as { frame_count: number; fps: number };
  return {
    model: r.model,
    version: r.version,
    params,
    video: { ...result.output[0], frames: frame_count, fps: params.fps },
    timings: result.timings,
  };
};

export const projectResponse = (r: { model: string; version: string }, result: PredictionResult): ProjectResponse => {
  const { psnr, loss, ...params } = result.params as { psnr: number; loss: number[] };
  const [{ w, ...image }, progressVideo] = result.output;
  return {
    model: r.model,
    version: r.version,
    params,
    w: w as string | number[],
    image,
    psnr,
    loss,
    ...(progressVideo ? { progress_video: progressVideo } : {}),
    timings: result.timings,
  };
};

export function registerLatentHandlers(registry: ModelRegistry, limits: LatentLimits): void {
  registerPredictionHandler({
    task: "video",
    families: ["stylegan2"],
    default: false,
    parse(input, model, version) {
      const p = parseInput(VideoRequest, input, model, version);
      // The frame budget refuses before the prediction exists, so nothing is queued for it.
      checkVideo(p, limits.maxFrames, limits.maxPixels);
      const stored = withoutModel(p);
      return { stored, shown: { ...stored, keyframes: p.keyframes.w ? { w: `(${p.keyframes.w.length} w)` } : p.keyframes } };
    },
    async run(ctx) {
      const p = parseInput(VideoRequest, ctx.input, ctx.model, ctx.version);
      const r = await renderVideo(ctx.inference, { ...p, output: "base64" }, ctx.tenant, limits, throttled(ctx));
      return { output: [{ ...r.video, frames: undefined, fps: undefined } as PredictionResult["output"][number]], params: { ...r.params, frame_count: r.video.frames, fps: r.video.fps }, timings: r.timings };
    },
  });
  registerPredictionHandler({
    task: "project",
    families: ["stylegan2"],
    default: false,
    parse(input, model, version) {
      const stored = withoutModel(parseInput(ProjectRequest, input, model, version));
      return { stored, shown: { ...stored, image: `(${Math.floor(((stored.image as string).length * 3) / 4)} bytes)` } };
    },
    async run(ctx) {
      const p = parseInput(ProjectRequest, ctx.input, ctx.model, ctx.version);
      const r = await project(ctx.inference, registry, { ...p, output: "base64" }, ctx.tenant, limits, throttled(ctx));
      // The projected image first (with its w), then the progress video when asked for.
      const output = [{ ...r.image, w: r.w }, ...(r.progress_video ? [r.progress_video] : [])];
      return { output, params: { ...r.params, psnr: r.psnr, loss: r.loss }, timings: r.timings };
    },
  });
}
