/**
 * Keyframe videos (NVlabs gen_video.py's idea): keyframes given as seeds or w's, `frames_per_transition`
 * frames between each pair, linear in w or spherical in z, optionally looping back to the first, for one cell
 * or a grid of cells, encoded as an animated WebP (lossless by default, so every frame keeps the pixels a
 * single generate of its w gives) or GIF through sharp.
 *
 * The frame budget (frames × cells, `maxFrames`, GANSERVE_MAX_VIDEO_FRAMES) and the canvas size are checked
 * before any model work. Progress is reported per synthesis pass, so a prediction can show it.
 */
import sharp from "sharp";
import type { z } from "zod";
import type { VideoRequest, VideoResponse } from "../../api/inference.ts";
import { resolveParams } from "../../api/describe.ts";
import { ApiError } from "../../errors.ts";
import { floatToUint8 } from "../../images/codec.ts";
import type { StyleGAN2Engine } from "../../inference/engine.ts";
import type { InferenceService } from "../../inference/service.ts";
import { checkCutoff, styleGanInputs } from "../../inference/stylegan-latents.ts";
import { wsFromW } from "../../latents/codec.ts";

export type VideoParams = z.output<typeof VideoRequest>;
export type Progress = (done: number, total: number) => Promise<void> | void;

/** Frames of one cell: keyframe index pairs and the position t in [0, 1) (1 only for a non-looping end). */
export function framePlan(keys: number, perTransition: number, loop: boolean): { a: number; b: number; t: number }[] {
  const transitions = loop ? keys : keys - 1;
  const plan: { a: number; b: number; t: number }[] = [];
  for (let i = 0; i < transitions; i++)
    for (let f = 0; f < perTransition; f++) plan.push({ a: i, b: (i + 1) % keys, t: f / perTransition });
  // Without a loop the last keyframe is shown too (with one keyframe, it is the whole video).
  if (!loop || keys === 1) plan.push({ a: keys - 1, b: keys - 1, t: 0 });
  return plan;
}

/** Spherical interpolation (Shoemake); nearly parallel vectors fall back to linear. */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const cos = Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
  const omega = Math.acos(cos);
  const out = new Float32Array(a.length);
  if (Math.sin(omega) < 1e-6) {
    for (let i = 0; i < a.length; i++) out[i] = a[i] + (b[i] - a[i]) * t;
    return out;
  }
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega);
  const wb = Math.sin(t * omega) / Math.sin(omega);
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
  return out;
}

/** Linear in w between rows of `keys` (each numWs × wDim), the formula interpolate uses. */
function lerpRow(keys: Float32Array, row: number, a: number, b: number, t: number, out: Float32Array, at: number) {
  for (let k = 0; k < row; k++) out[at + k] = keys[a * row + k] + (keys[b * row + k] - keys[a * row + k]) * t;
}

/** Checks that need no model work: keyframe count against the grid, frame budget, canvas size. */
export function checkVideo(p: VideoParams, maxFrames: number, maxPixels: number, resolution?: number) {
  const given = [p.keyframes.seeds, p.keyframes.w].filter((k) => k !== undefined);
  if (given.length !== 1) throw new ApiError("validation_failed", "keyframes: give seeds or w");
  const count = (p.keyframes.seeds ?? p.keyframes.w)!.length;
  const cells = p.grid ? p.grid.cols * p.grid.rows : 1;
  if (count % cells !== 0 || count < cells)
    throw new ApiError("validation_failed", `keyframes: ${count} keyframes do not split evenly over ${cells} grid cells`);
  if (p.interpolation === "slerp" && !p.keyframes.seeds)
    throw new ApiError("unsupported_parameter", "interpolation: slerp runs in z, so it needs keyframes.seeds", { field: "interpolation" });
  const keys = count / cells;
  const frames = framePlan(keys, p.frames_per_transition, p.loop).length;
  if (frames * cells > maxFrames)
    throw new ApiError("unprocessable", `video: ${frames} frames × ${cells} cells = ${frames * cells} exceeds the budget of ${maxFrames}`, {
      reason: "frame_budget",
      frames: frames * cells,
      max: maxFrames,
    });
  if (resolution !== undefined && cells * resolution * resolution > maxPixels)
    throw new ApiError("unprocessable", `video: a ${p.grid?.cols ?? 1}×${p.grid?.rows ?? 1} grid of ${resolution}² frames exceeds ${maxPixels} pixels`, {
      reason: "too_many_pixels",
    });
  return { keys, cells, frames };
}

/** Every frame's ws, [frames × cells, numWs, wDim] in frame-major order (all cells of frame 0 first). */
async function frameWs(engine: StyleGAN2Engine, p: VideoParams, keys: number, cells: number): Promise<Float32Array> {
  const row = engine.numWs * engine.wDim;
  const plan = framePlan(keys, p.frames_per_transition, p.loop);
  const out = new Float32Array(plan.length * cells * row);
  const truncation = { truncation_psi: p.truncation_psi, truncation_cutoff: p.truncation_cutoff };
  if (p.interpolation === "slerp") {
    const seeds = p.keyframes.seeds!;
    const { z } = styleGanInputs(engine, seeds, p.class_idx);
    const zs = new Float32Array(plan.length * cells * engine.zDim);
    for (const [f, s] of plan.entries())
      for (let c = 0; c < cells; c++) {
        const key = (i: number) => z.subarray((c * keys + i) * engine.zDim, (c * keys + i + 1) * engine.zDim);
        zs.set(slerp(key(s.a), key(s.b), s.t), (f * cells + c) * engine.zDim);
      }
    const n = plan.length * cells;
    const { c } = styleGanInputs(engine, Array.from({ length: n }, () => 0), p.class_idx);
    return engine.mapping(zs, c, n, truncation);
  }
  let keyWs: Float32Array;
  if (p.keyframes.seeds) {
    const { z, c, n } = styleGanInputs(engine, p.keyframes.seeds, p.class_idx);
    keyWs = await engine.mapping(z, c, n, truncation);
  } else keyWs = wsFromW({ numWs: engine.numWs, wDim: engine.wDim }, p.keyframes.w!);
  for (const [f, s] of plan.entries())
    for (let c = 0; c < cells; c++) lerpRow(keyWs, row, c * keys + s.a, c * keys + s.b, s.t, out, (f * cells + c) * row);
  return out;
}

/** Frames laid out as a grid, one tall RGB strip (sharp's multi-page layout: pages stacked vertically). */
function gridStrip(images: Float32Array, frames: number, cols: number, rows: number, res: number): Uint8Array {
  const w = cols * res;
  const h = rows * res;
  const strip = new Uint8Array(frames * w * h * 3);
  const px = floatToUint8(images, "stylegan2");
  const per = res * res * 3;
  for (let f = 0; f < frames; f++)
    for (let c = 0; c < cols * rows; c++) {
      const src = (f * cols * rows + c) * per;
      const x0 = (c % cols) * res;
      const y0 = Math.floor(c / cols) * res;
      for (let y = 0; y < res; y++) {
        const dst = ((f * h + y0 + y) * w + x0) * 3;
        strip.set(px.subarray(src + y * res * 3, src + (y + 1) * res * 3), dst);
      }
    }
  return strip;
}

/** Frames stacked vertically in one RGB strip → an animated WebP (lossless unless `quality`) or GIF, looping. */
export async function encodeAnimation(
  strip: Uint8Array,
  width: number,
  height: number,
  frames: number,
  opts: { format: "webp" | "gif"; fps: number; quality?: number },
): Promise<{ bytes: Uint8Array; contentType: string }> {
  const img = sharp(strip, { raw: { width, height: height * frames, channels: 3, pageHeight: height } });
  const delay = Array.from({ length: frames }, () => Math.round(1000 / opts.fps));
  const out =
    opts.format === "gif"
      ? await img.gif({ loop: 0, delay }).toBuffer()
      : await img.webp({ loop: 0, delay, ...(opts.quality ? { quality: opts.quality } : { lossless: true }) }).toBuffer();
  return { bytes: new Uint8Array(out), contentType: opts.format === "gif" ? "image/gif" : "image/webp" };
}

export async function renderVideo(
  inference: InferenceService,
  params: VideoParams,
  tenant: string | undefined,
  limits: { maxFrames: number; maxPixels: number },
  progress?: Progress,
): Promise<VideoResponse> {
  const t0 = performance.now();
  checkVideo(params, limits.maxFrames, limits.maxPixels);
  const { record, engine } = await inference.styleGan(params.model, params.version, tenant, "generate/video");
  const p = resolveParams(record, params);
  checkCutoff(engine, p.truncation_cutoff);
  const { keys, cells, frames } = checkVideo(p, limits.maxFrames, limits.maxPixels, engine.resolution);
  const total = frames * cells;
  await progress?.(0, total);
  const ws = await frameWs(engine, p, keys, cells);
  const tCompute = performance.now();
  const noise = { noise_mode: p.noise_mode, noiseSeed: p.keyframes.seeds?.[0] ?? 0 };
  const images = await inference.render(record, engine, ws, noise, (done) => progress?.(done, total));
  const computeMs = performance.now() - tCompute;
  const tEnc = performance.now();
  const cols = p.grid?.cols ?? 1;
  const rows = p.grid?.rows ?? 1;
  const res = engine.resolution;
  const strip = gridStrip(images, frames, cols, rows, res);
  const { bytes, contentType } = await encodeAnimation(strip, cols * res, rows * res, frames, p);
  const delivered = await inference.outputs.deliver(bytes, contentType, p.format, p.output, tenant);
  return {
    model: record.name,
    version: record.version,
    params: { ...p, keyframes: { ...p.keyframes, w: undefined }, version: record.version },
    video: { content_type: contentType, width: cols * res, height: rows * res, frames, fps: p.fps, ...delivered },
    timings: { queue_ms: 0, compute_ms: round(computeMs), encode_ms: round(performance.now() - tEnc), total_ms: round(performance.now() - t0) },
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
