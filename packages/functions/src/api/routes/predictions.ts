/**
 * Predictions (Replicate's API shape): create with `Prefer: wait`, get, list, cancel, and a server-sent event
 * stream. /v1/generate and /v1/translate are "create a prediction and wait" through `createAndWait` here.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { ApiError, ERROR_STATUS, type ErrorCode } from "@ganserve/core/errors";
import { CreatePredictionRequest, ListQuery, Prediction, PredictionEvent, PredictionId, PredictionList, isTerminal, type CreatePredictionParams, type PredictionResult } from "@ganserve/core/predictions/schema";
import type { PredictionRecord } from "@ganserve/core/predictions/store";
import { newRouter } from "../app.ts";
import type { AppEnv, Services } from "../env.ts";
import { requireJson } from "../middleware/content-type.ts";
import { jsonError, jsonOk, PreferHeader, SNAPSHOT_RETRY_MS, tenantOf } from "./shared.ts";

const IdParam = z.object({ id: PredictionId });
const PreferHeaders = PreferHeader.extend({
  "idempotency-key": z.string().min(1).max(255).optional().meta({ description: "The same key (per tenant) returns the same prediction" }),
});

const created = { description: "Ended within the wait", content: { "application/json": { schema: Prediction } } };
const accepted = {
  description: "Not ended yet: poll `Location` (urls.get), stream urls.stream, or wait for the webhook",
  content: { "application/json": { schema: Prediction } },
};

const create = createRoute({
  method: "post",
  path: "/predictions",
  tags: ["predictions"],
  summary: "Run a model: the input is the body of /v1/generate or /v1/translate, by the model's family",
  middleware: [requireJson] as const,
  request: { headers: PreferHeaders, body: { required: true, content: { "application/json": { schema: CreatePredictionRequest } } } },
  responses: {
    201: created,
    202: accepted,
    400: jsonError("Invalid request"),
    404: jsonError("Unknown model or version"),
    422: jsonError("Input that does not fit the model's family (unprocessable, with the field path in details.issues)"),
    503: jsonError("Queue or storage unavailable (Retry-After)"),
  },
});

const get = createRoute({
  method: "get",
  path: "/predictions/{id}",
  tags: ["predictions"],
  summary: "A prediction as it stands",
  request: { params: IdParam },
  responses: { 200: jsonOk(Prediction, "Prediction"), 404: jsonError("No such prediction") },
});

const list = createRoute({
  method: "get",
  path: "/predictions",
  tags: ["predictions"],
  summary: "Your predictions, newest first, a page at a time",
  request: { query: ListQuery },
  responses: { 200: jsonOk(PredictionList, "A page of predictions") },
});

const cancel = createRoute({
  method: "post",
  path: "/predictions/{id}/cancel",
  tags: ["predictions"],
  summary: "Cancel: a queued prediction never runs, a running one stops at its next batch boundary",
  request: { params: IdParam },
  responses: { 200: jsonOk(Prediction, "Canceled"), 404: jsonError("No such prediction"), 409: jsonError("Already ended (details.status)") },
});

const events = createRoute({
  method: "get",
  path: "/predictions/{id}/events",
  tags: ["predictions"],
  summary: "Server-sent events: status, output (progress), logs, and done at the end",
  request: { params: IdParam },
  responses: {
    200: {
      description:
        "text/event-stream of PredictionEvent objects; ends after `done`. Where responses are buffered (the AWS deployment) it answers at once with the prediction as it stands (`status`, or `done` when ended), the header `Ganserve-Events: snapshot` and a `retry:` delay: ask again then, or poll GET /v1/predictions/{id}", content: { "text/event-stream": { schema: PredictionEvent } } },
    404: jsonError("No such prediction"),
  },
});

/** Absolute URLs in answers: the origin the client called. */
const baseOf = (c: Context<AppEnv>) => new URL(c.req.url).origin;

/**
 * RFC 7240 `Prefer: wait` / `wait=N`: the seconds to hold a request, clamped to the configured cap, and the
 * `Preference-Applied` that says what was honoured. No Prefer: `fallback` seconds.
 */
export function preferredWait(c: Context<AppEnv>, settings: Services["settings"], fallback: number): number {
  const cap = settings.GANSERVE_PREDICTION_MAX_WAIT_S;
  const pref = (c.req.header("prefer") ?? "")
    .split(/[,;]/)
    .map((s) => s.trim().toLowerCase())
    .find((s) => s === "wait" || s.startsWith("wait="));
  if (pref === undefined) return Math.min(fallback, cap);
  const asked = pref === "wait" ? settings.GANSERVE_PREDICTION_WAIT_S : Number(pref.slice(5));
  if (!Number.isFinite(asked) || asked < 0) throw new ApiError("validation_failed", `Prefer: '${pref}' must be wait or wait=<seconds>`);
  const applied = Math.min(Math.floor(asked), cap);
  c.header("Preference-Applied", `wait=${applied}`);
  return applied;
}

async function render(c: Context<AppEnv>, s: Services, rec: PredictionRecord) {
  return s.predictions.service.view(rec, baseOf(c));
}

/** 201 with the prediction when it ended, 202 with `Location` when it has not. */
async function answer(c: Context<AppEnv>, s: Services, rec: PredictionRecord) {
  const body = await render(c, s, rec);
  if (isTerminal(rec.status)) return c.json(body, 201);
  c.header("Location", body.urls.get);
  return c.json(body, 202);
}

/**
 * /v1/generate and /v1/translate: create a prediction and wait (`Prefer`, or the configured default). Ended
 * in time: what the direct route answered before predictions (`legacy(result)`), or its error with the same
 * code. Not ended: 202 with the prediction and `Location`, never a 503 for a cold worker.
 */
export async function createAndWait(
  c: Context<AppEnv>,
  s: Services,
  params: CreatePredictionParams,
  legacy: (rec: PredictionRecord, result: PredictionResult) => unknown,
): Promise<Response> {
  const tenant = tenantOf(c);
  const wait = preferredWait(c, s.settings, s.settings.GANSERVE_PREDICTION_WAIT_S);
  const { service } = s.predictions;
  const created = await service.create(params, tenant);
  const rec = await service.wait(created.id, tenant, wait, c.req.raw.signal, created);
  if (rec.status === "succeeded") {
    const result = s.predictions.store.result(rec);
    if (!result) throw new ApiError("internal", "the prediction's result is missing");
    const output = await service.images(rec, result);
    return c.json(legacy(rec, { ...result, output: output ?? [] }) as object, 200);
  }
  if (rec.status === "failed" || rec.status === "canceled") {
    const code = (rec.error_code && rec.error_code in ERROR_STATUS ? rec.error_code : rec.status === "canceled" ? "conflict" : "internal") as ErrorCode;
    throw new ApiError(code, rec.error ?? `prediction ${rec.status}`, rec.error_details, rec.retry_after);
  }
  const body = await render(c, s, rec);
  c.header("Location", body.urls.get);
  return c.json(body, 202);
}

/** How often the event stream re-reads storage when no in-process notification comes. */
const POLL_MS = 500;

export function predictionRoutes(s: Services) {
  const { service, bus } = s.predictions;
  return newRouter()
    .openapi(create, async (c) => {
      const t = tenantOf(c);
      const wait = preferredWait(c, s.settings, 0);
      const body = c.req.valid("json");
      // Predictions hand out stored images as URLs unless base64 is asked for (the direct routes' default).
      const input = { output: "url", ...body.input };
      const rec = await service.create({ ...body, input }, t, { idempotencyKey: c.req.valid("header")["idempotency-key"] });
      return (await answer(c, s, await service.wait(rec.id, t, wait, c.req.raw.signal, rec))) as never;
    })
    .openapi(get, async (c) => c.json(await render(c, s, await service.get(c.req.valid("param").id, tenantOf(c))), 200))
    .openapi(list, async (c) => {
      const { cursor, limit } = c.req.valid("query");
      const page = await service.list(tenantOf(c), cursor, limit);
      const results = await Promise.all(page.records.map((r) => render(c, s, r)));
      const next = page.next ? `${baseOf(c)}/v1/predictions?cursor=${page.next}&limit=${limit}` : null;
      return c.json({ results, next }, 200);
    })
    .openapi(cancel, async (c) => c.json(await render(c, s, await service.cancel(c.req.valid("param").id, tenantOf(c))), 200))
    .openapi(events, async (c) => {
      const { id } = c.req.valid("param");
      const tenant = tenantOf(c);
      let rec = await service.get(id, tenant); // 404 before the stream starts
      if (s.eventDelivery === "snapshot") {
        // Buffered responses (the Lambda): the prediction as it stands, at once, with a retry delay; `done`
        // when it has ended. Holding the stream would deliver nothing until the function timed out.
        c.header("Ganserve-Events", "snapshot");
        return streamSSE(c, async (stream) => {
          const type = isTerminal(rec.status) ? "done" : "status";
          await stream.writeSSE({ id: "1", event: type, data: JSON.stringify({ type, prediction: await render(c, s, rec) }) });
          if (type !== "done") await stream.write(`retry: ${SNAPSHOT_RETRY_MS}\n\n`);
        }) as never;
      }
      return streamSSE(c, async (stream) => {
        let closed = false;
        let wake: () => void = () => {};
        stream.onAbort(() => {
          closed = true;
          wake();
        });
        // A notification carries the newest record; storage is re-read only when none came (another process).
        let notified = false;
        const off = bus.subscribe(id, (m) => {
          if ("record" in m) {
            rec = m.record;
            notified = true;
          }
          wake();
        });
        let seq = 0;
        const send = async (type: "status" | "output" | "logs" | "done") =>
          stream.writeSSE({ id: String(++seq), event: type, data: JSON.stringify({ type, prediction: await render(c, s, rec) }) });
        try {
          let last = "";
          let logs = -1;
          while (!closed) {
            const progress = `${rec.status}/${rec.progress?.completed ?? ""}`;
            if (progress !== last) {
              await send(rec.status === last.split("/")[0] ? "output" : "status");
              last = progress;
            }
            if (rec.logs.length !== logs) {
              if (logs >= 0) await send("logs");
              logs = rec.logs.length;
            }
            if (isTerminal(rec.status)) {
              await send("done");
              return;
            }
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, POLL_MS);
              wake = () => {
                clearTimeout(t);
                resolve();
              };
            });
            if (!closed && !notified) rec = await service.get(id, tenant);
            notified = false;
          }
        } finally {
          off();
        }
      }) as never;
    });
}
