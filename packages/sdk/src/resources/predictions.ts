import { GanserveConnectionError, GanserveError } from "../errors.ts";
import { sleep, type HttpClient, type RequestOptions } from "../http.ts";
import { parseSSE, SSEParser } from "../sse.ts";
import type { CreatePredictionRequest, GenerateResponse, Prediction, PredictionEvent, PredictionList, TranslateResponse } from "../types.ts";

export interface CreatePredictionOptions extends RequestOptions {
  /**
   * Hold the request until the prediction ends or this many seconds pass (`Prefer: wait=N`; the server
   * clamps it and says so). Omitted: answer at once.
   */
  wait?: number;
  /** The same key returns the same prediction (per API key's tenant); with one, create is safe to retry. */
  idempotencyKey?: string;
}

export interface PredictionWaitOptions {
  /** Give up after this long (the prediction keeps going); default: wait until it ends. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const TERMINAL = new Set<Prediction["status"]>(["succeeded", "failed", "canceled"]);
/** Polling starts quick (warm predictions end in milliseconds) and backs off to this. */
const MAX_POLL_MS = 2_000;

/** A prediction that ended `failed` or `canceled`: `code` is the server's error_code (or `canceled`). */
export class PredictionError extends GanserveError {
  override name = "PredictionError";
  constructor(readonly prediction: Prediction) {
    super({
      code: prediction.error_code ?? (prediction.status === "canceled" ? "canceled" : "prediction_failed"),
      message: prediction.error ?? `prediction ${prediction.id} ${prediction.status}`,
    });
  }
}

export class Predictions {
  constructor(private readonly http: HttpClient) {}

  /** Creates a prediction. Retried after a possible send only with an `idempotencyKey`. */
  create(req: CreatePredictionRequest, opts: CreatePredictionOptions = {}): Promise<Prediction> {
    const headers: Record<string, string> = {};
    if (opts.wait !== undefined) headers.Prefer = `wait=${Math.max(0, Math.floor(opts.wait))}`;
    if (opts.idempotencyKey !== undefined) headers["Idempotency-Key"] = opts.idempotencyKey;
    // A held request must outlast its wait.
    const timeoutMs = opts.timeoutMs ?? (opts.wait !== undefined ? (opts.wait + 30) * 1000 : undefined);
    return this.http.json(
      { method: "POST", path: "/v1/predictions", json: req, headers, idempotent: opts.idempotencyKey !== undefined },
      { ...opts, timeoutMs },
    );
  }

  get(id: string, opts?: RequestOptions): Promise<Prediction> {
    return this.http.json({ method: "GET", path: `/v1/predictions/${encodeURIComponent(id)}` }, opts);
  }

  /** One page, newest first; pass the previous page's last id as `cursor` (or follow `next`). */
  list(page: { cursor?: string; limit?: number } = {}, opts?: RequestOptions): Promise<PredictionList> {
    const q = new URLSearchParams();
    if (page.cursor) q.set("cursor", page.cursor);
    if (page.limit) q.set("limit", String(page.limit));
    const qs = q.toString();
    return this.http.json({ method: "GET", path: `/v1/predictions${qs ? `?${qs}` : ""}` }, opts);
  }

  /** Cancels: a queued prediction never runs, a running one stops at its next batch. 409 once it ended. */
  cancel(id: string, opts?: RequestOptions): Promise<Prediction> {
    return this.http.json({ method: "POST", path: `/v1/predictions/${encodeURIComponent(id)}/cancel`, idempotent: true }, opts);
  }

  /** Polls until the prediction ends and returns it, whatever its end (see `run` for one that throws). */
  async wait(id: string, opts: PredictionWaitOptions = {}): Promise<Prediction> {
    const until = opts.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + opts.timeoutMs;
    let delay = 100;
    for (;;) {
      const p = await this.get(id, { signal: opts.signal });
      if (TERMINAL.has(p.status)) return p;
      if (Date.now() + delay > until) throw new GanserveError({ code: "wait_timeout", message: `prediction ${id} did not end within ${opts.timeoutMs} ms` });
      await sleep(delay, opts.signal);
      delay = Math.min(MAX_POLL_MS, delay * 2);
    }
  }

  /**
   * The prediction's server-sent events (status, output, logs), ending after `done`. Where the stream does
   * not deliver (a response that is not an event stream, one that ends before `done`, a buffered deployment
   * that gives up: a 5xx or a dropped connection), it goes on by polling GET /v1/predictions/{id}, yielding a
   * `status` event per change and `done` at the end.
   */
  async *stream(id: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): AsyncGenerator<PredictionEvent, void, undefined> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(opts.signal!.reason);
    if (opts.signal?.aborted) throw opts.signal.reason;
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let last: Prediction["status"] | undefined;
    try {
      try {
        for await (const event of this.streamOnce(id, ctl.signal, opts.timeoutMs)) {
          last = event.prediction.status;
          yield event;
          if (event.type === "done") return;
        }
      } catch (e) {
        if (ctl.signal.aborted) throw ctl.signal.reason;
        if (!(e instanceof GanserveConnectionError) && !(e instanceof GanserveError && (e.status ?? 0) >= 500)) throw e;
      }
      for (let delay = 100; ; delay = Math.min(MAX_POLL_MS, delay * 2)) {
        const p = await this.get(id, { signal: ctl.signal });
        if (p.status !== last) yield { type: "status", prediction: p };
        last = p.status;
        if (TERMINAL.has(p.status)) {
          yield { type: "done", prediction: p };
          return;
        }
        await sleep(delay, ctl.signal);
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      ctl.abort();
    }
  }

  /** One connection's events; throws GanserveConnectionError when it is not an event stream or ends before `done`. */
  private async *streamOnce(id: string, signal: AbortSignal, timeoutMs: number | undefined): AsyncGenerator<PredictionEvent, void, undefined> {
    const res = await this.http.stream(
      { method: "GET", path: `/v1/predictions/${encodeURIComponent(id)}/events`, headers: { Accept: "text/event-stream" } },
      { signal, timeoutMs },
    );
    const type = res.headers.get("content-type");
    if (type !== null && !type.startsWith("text/event-stream")) {
      await res.body?.cancel().catch(() => undefined);
      throw new GanserveConnectionError(`events of ${id} came as ${type}, not an event stream`);
    }
    if (!res.body) throw new GanserveError({ code: "invalid_response", status: res.status, message: "event stream response has no body" });
    for await (const msg of parseSSE(res.body, new SSEParser())) {
      let event: PredictionEvent;
      try {
        event = JSON.parse(msg.data) as PredictionEvent;
      } catch (e) {
        throw new GanserveError({ code: "invalid_response", message: `prediction event is not JSON: ${msg.data.slice(0, 100)}`, cause: e });
      }
      yield event;
      if (event.type === "done") return;
    }
    throw new GanserveConnectionError(`event stream of ${id} ended before its done event`);
  }

  /**
   * /v1/generate and /v1/translate answer 202 with the prediction when it did not end within the server's
   * wait (a cold start, a long request): follow it to its end and answer as the route would have.
   */
  async settle<T extends object>(body: T | Prediction, toResponse: (p: Prediction) => T, opts: PredictionWaitOptions = {}): Promise<T> {
    if (!isPrediction(body)) return body;
    const p = TERMINAL.has(body.status) ? body : await this.wait(body.id, opts);
    if (p.status !== "succeeded") throw new PredictionError(p);
    return toResponse(p);
  }

  /**
   * Runs a model and returns the succeeded prediction: one request held with `Prefer: wait` (default 60 s,
   * clamped by the server), then polling if it has not ended (a cold start). Throws PredictionError when
   * it fails or is canceled.
   */
  async run(model: string, input: Record<string, unknown>, opts: CreatePredictionOptions & { version?: string } & PredictionWaitOptions = {}): Promise<Prediction> {
    const { version, wait = 60, ...rest } = opts;
    let p = await this.create({ model, ...(version ? { version } : {}), input }, { ...rest, wait });
    if (!TERMINAL.has(p.status)) p = await this.wait(p.id, opts);
    if (p.status !== "succeeded") throw new PredictionError(p);
    return p;
  }
}

const isPrediction = (body: object): body is Prediction => "urls" in body && "status" in body && "task" in body;

/** What /v1/generate answers, from the prediction it ran as (timings from the prediction's metrics). */
function responseOf(p: Prediction) {
  const ms = (s: number | undefined) => Math.round((s ?? 0) * 100_000) / 100;
  return {
    model: p.model,
    version: p.version,
    params: { ...p.input, model: p.model, version: p.version },
    timings: { queue_ms: ms(p.metrics.queue_time), compute_ms: ms(p.metrics.predict_time), encode_ms: 0, total_ms: ms(p.metrics.total_time) },
  };
}

export const asGenerateResponse = (p: Prediction): GenerateResponse => ({ ...responseOf(p), images: p.output ?? [] });
export const asTranslateResponse = (p: Prediction): TranslateResponse => {
  const image = p.output?.[0];
  if (!image) throw new GanserveError({ code: "invalid_response", message: `prediction ${p.id} succeeded without an image` });
  return { ...responseOf(p), image };
};
