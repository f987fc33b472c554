/**
 * What a prediction runs, by task: a small table the worker dispatches through, so new kinds of work
 * (issue 27's keyframe videos and projections) register a handler instead of touching the worker:
 *
 *   registerPredictionHandler({ task: "video", families: ["stylegan2"], default: false, parse, run });
 *
 * `parse` validates the input when the prediction is created (422 with the field path) and returns what is
 * stored; `run` does the work in the worker, reporting progress with `ctx.progress` (written to the record,
 * sent as SSE and webhook events) and asking `ctx.stopped()` between units of work (batches, frames), where
 * a cancel or a passed deadline ends it. A task is chosen with `task` on create, or is the family's default.
 */
import type { z } from "zod";
import { GenerateRequest, TranslateRequest, TRANSLATE_FILE_FIELDS } from "../api/inference.ts";
import { ApiError } from "../errors.ts";
import type { ModelFamily } from "../families.ts";
import type { InferenceService } from "../inference/service.ts";
import { expandSeeds, type GenerateParams, type TranslateInputs, type TranslateParams } from "../inference/params.ts";
import type { PredictionResult } from "./schema.ts";

export interface HandlerContext {
  id: string;
  tenant: string;
  model: string;
  version: string;
  /** The stored input (what `parse` returned). */
  input: Record<string, unknown>;
  inference: InferenceService;
  /** Largest batch of one forward pass: the unit between two `stopped()` checks. */
  maxBatch: number;
  progress(completed: number, total: number): Promise<void>;
  log(line: string): void;
  /** True once a cancel or the deadline ends this prediction: return (or throw) at the next boundary. */
  stopped(): Promise<boolean>;
}

export interface PredictionHandler {
  task: string;
  families: readonly ModelFamily[];
  /** The task a prediction of these families runs when `task` is not given. */
  default: boolean;
  /** Validates at create time; returns the input to store and the input to show (files by size only). */
  parse(input: Record<string, unknown>, model: string, version: string): { stored: Record<string, unknown>; shown: Record<string, unknown> };
  /** Whether the stored input is large (files): then it lives beside the record, not in it. */
  run(ctx: HandlerContext): Promise<PredictionResult>;
}

/** Thrown by a handler when `stopped()` said so; the worker ends the prediction as canceled. */
export class PredictionStopped extends Error {
  override name = "PredictionStopped";
}

const handlers = new Map<string, PredictionHandler>();

export function registerPredictionHandler(h: PredictionHandler): void {
  handlers.set(h.task, h);
}

export function handlerFor(task: string): PredictionHandler | undefined {
  return handlers.get(task);
}

/** The handler for a model of `family`: the named task (which must serve the family) or the family's default. */
export function resolveHandler(family: ModelFamily, model: string, task?: string): PredictionHandler {
  if (task !== undefined) {
    const h = handlers.get(task);
    if (!h) throw new ApiError("unprocessable", `task: unknown task '${task}'`, { issues: [{ path: "task", message: `one of ${[...handlers.keys()].join(", ")}` }] });
    if (!h.families.includes(family))
      throw new ApiError("wrong_model_family", `model '${model}' is a ${family} model; ${task} takes ${h.families.join(" or ")}`, { family });
    return h;
  }
  const h = [...handlers.values()].find((x) => x.default && x.families.includes(family));
  if (!h) throw new ApiError("unprocessable", `no task serves ${family} models`);
  return h;
}

/** Validates with a request schema; failures become 422 with paths under `input.`. */
export function parseInput<S extends z.ZodType>(schema: S, input: Record<string, unknown>, model: string, version: string): z.output<S> {
  const parsed = schema.safeParse({ ...input, model, version });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: ["input", ...i.path].join("."), message: i.message, code: i.code }));
  throw new ApiError("unprocessable", `${issues[0].path}: ${issues[0].message}`, { issues });
}

export const withoutModel = ({ model: _m, version: _v, ...rest }: Record<string, unknown>) => rest;

/** Base64 (optionally a data: URL) to bytes; 400 naming the field when it is not base64. */
export function fromBase64(field: string, value: string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const clean = value.replace(/^data:[^;]+;base64,/, "");
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}$/.test(clean)) throw new ApiError("validation_failed", `${field}: not valid base64`);
  return new Uint8Array(Buffer.from(clean, "base64"));
}

const ms2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Seeds → images, run as passes of at most `maxBatch` seeds so that a cancel stops a long one between
 * passes and progress counts images. Random noise is seeded by the first seed of a call, so such a
 * request runs as one call: its pixels must not depend on how it was split.
 */
const generateHandler: PredictionHandler = {
  task: "generate",
  families: ["stylegan2", "dcgan"],
  default: true,
  parse(input, model, version) {
    const p = withoutModel(parseInput(GenerateRequest, input, model, version));
    return { stored: p, shown: p };
  },
  async run(ctx) {
    const t0 = performance.now();
    const p: GenerateParams = parseInput(GenerateRequest, ctx.input, ctx.model, ctx.version);
    const seeds = p.seeds === undefined ? undefined : expandSeeds(p.seeds);
    const mix = p.style_mix ? expandSeeds(p.style_mix.seeds, "style_mix.seeds") : undefined;
    const total = seeds?.length ?? 1;
    await ctx.progress(0, total);
    // Latent inputs (w, ws, projected_w), random noise, and requests of one pass run as they are.
    const splittable = seeds && seeds.length > ctx.maxBatch && p.noise_mode !== "random" && (mix === undefined || mix.length === 1 || mix.length === seeds.length);
    if (!splittable) {
      const r = await ctx.inference.generate(p, ctx.tenant);
      return { output: r.images, params: r.params, timings: r.timings };
    }
    const output: PredictionResult["output"] = [];
    const timings = { queue_ms: 0, compute_ms: 0, encode_ms: 0, total_ms: 0 };
    let params: Record<string, unknown> = {};
    for (let i = 0; i < seeds.length; i += ctx.maxBatch) {
      if (i > 0 && (await ctx.stopped())) throw new PredictionStopped();
      const part = seeds.slice(i, i + ctx.maxBatch);
      const style_mix: GenerateParams["style_mix"] =
        p.style_mix && mix && mix.length > 1 ? { layers: p.style_mix.layers, seeds: mix.slice(i, i + ctx.maxBatch) } : p.style_mix;
      const r = await ctx.inference.generate({ ...p, seeds: part, style_mix }, ctx.tenant);
      output.push(...r.images);
      timings.queue_ms += r.timings.queue_ms;
      timings.compute_ms += r.timings.compute_ms;
      timings.encode_ms += r.timings.encode_ms;
      params = { ...r.params, seeds, ...(p.style_mix ? { style_mix: p.style_mix } : {}) };
      await ctx.progress(output.length, total);
    }
    timings.queue_ms = ms2(timings.queue_ms);
    timings.compute_ms = ms2(timings.compute_ms);
    timings.encode_ms = ms2(timings.encode_ms);
    timings.total_ms = ms2(performance.now() - t0);
    return { output, params, timings };
  },
};

/** Image → image (CycleGAN) or label map → image (SPADE): one pass, files carried as base64. */
const translateHandler: PredictionHandler = {
  task: "translate",
  families: ["cyclegan", "spade"],
  default: true,
  parse(input, model, version) {
    const p = withoutModel(parseInput(TranslateRequest, input, model, version)) as Record<string, unknown>;
    const shown = { ...p };
    for (const f of TRANSLATE_FILE_FIELDS) {
      const bytes = fromBase64(`input.${f}`, p[f] as string | undefined);
      if (bytes) shown[f] = `(${bytes.byteLength} bytes)`;
    }
    return { stored: p, shown };
  },
  async run(ctx) {
    const p = parseInput(TranslateRequest, ctx.input, ctx.model, ctx.version) as TranslateParams;
    const inputs: TranslateInputs = {};
    for (const f of TRANSLATE_FILE_FIELDS) inputs[f] = fromBase64(f, p[f]);
    await ctx.progress(0, 1);
    const r = await ctx.inference.translate(p, inputs, ctx.tenant);
    return { output: [r.image], params: r.params, timings: r.timings };
  },
};

registerPredictionHandler(generateHandler);
registerPredictionHandler(translateHandler);
