import { FineTuneCanceledError, FineTuneFailedError, FineTuneTimeoutError, GanserveConnectionError, GanserveError } from "../errors.ts";
import { backoffMs, sleep, type HttpClient, type RequestOptions } from "../http.ts";
import { parseSSE, SSEParser } from "../sse.ts";
import type { CreateFineTuneRequest, ErrorBody, FineTune, FineTuneEvent, FineTuneList } from "../types.ts";

export interface EventsOptions {
  signal?: AbortSignal;
  /** Resume after this event id (a previous event's `seq`); omitted, the stream starts at the beginning. */
  lastEventId?: string | number;
  /** Reconnects in a row without receiving an event before giving up; default: the client's maxRetries. */
  maxRetries?: number;
  /** Timeout for opening each connection; the stream itself may stay open for hours. */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** Give up after this long (the fine-tune keeps running); default: wait indefinitely. */
  timeoutMs?: number;
  /** Called with every event in order, e.g. to show progress. Awaited, so it can apply backpressure. */
  onEvent?: (event: FineTuneEvent) => void | Promise<void>;
  signal?: AbortSignal;
}

const TERMINAL = new Set<FineTune["status"]>(["succeeded", "failed", "canceled"]);
/** How long to wait between checks when the event stream is unavailable. */
const POLL_MS = 2_000;

export class FineTunes {
  constructor(private readonly http: HttpClient) {}

  /** Starts a fine-tune. Never retried after the request may have been sent: a duplicate is a second paid job. */
  create(req: CreateFineTuneRequest, opts?: RequestOptions): Promise<FineTune> {
    return this.http.json({ method: "POST", path: "/v1/fine-tunes", json: req, idempotent: false }, opts);
  }

  get(id: string, opts?: RequestOptions): Promise<FineTune> {
    return this.http.json({ method: "GET", path: `/v1/fine-tunes/${encodeURIComponent(id)}` }, opts);
  }

  list(opts?: RequestOptions): Promise<FineTuneList> {
    return this.http.json({ method: "GET", path: "/v1/fine-tunes" }, opts);
  }

  /** Asks the worker to stop at its next step; the fine-tune turns `canceled` shortly after. */
  cancel(id: string, opts?: RequestOptions): Promise<FineTune> {
    return this.http.json({ method: "POST", path: `/v1/fine-tunes/${encodeURIComponent(id)}/cancel`, idempotent: true }, opts);
  }

  /**
   * The fine-tune's events, in order, ending after the `done` event. A dropped connection is reopened with
   * Last-Event-ID so nothing is missed or repeated; `maxRetries` reconnects in a row without an event in
   * between give up with a GanserveConnectionError. Breaking out of the loop closes the connection.
   *
   * Where the API cannot stream (the AWS deployment buffers responses) it answers with the events so far
   * (`Ganserve-Events: snapshot`): those are followed by asking again after the server's `retry:` delay, which
   * is no failure. A response that is not an event stream at all (a proxy in between) makes this poll
   * GET /v1/fine-tunes/{id} instead and yield events made from the record (status, progress, done; their
   * `seq` continues from the last one seen).
   */
  async *events(id: string, opts: EventsOptions = {}): AsyncGenerator<FineTuneEvent, void, undefined> {
    const maxRetries = opts.maxRetries ?? this.http.maxRetries;
    // Our own controller, so that leaving the loop early also tears down the connection.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(opts.signal!.reason);
    if (opts.signal?.aborted) throw opts.signal.reason;
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let lastEventId = opts.lastEventId === undefined ? undefined : String(opts.lastEventId);
    let lastSeq = -Infinity;
    let retryMs: number | undefined;
    let failures = 0;
    try {
      for (;;) {
        const headers: Record<string, string> = { Accept: "text/event-stream" };
        if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
        const res = await this.http.stream(
          { method: "GET", path: `/v1/fine-tunes/${encodeURIComponent(id)}/events`, headers },
          { signal: ctl.signal, timeoutMs: opts.timeoutMs },
        );
        const type = res.headers.get("content-type");
        if (type !== null && !type.startsWith("text/event-stream")) {
          await res.body?.cancel().catch(() => undefined);
          yield* this.pollEvents(id, Math.max(lastSeq, Number(lastEventId ?? 0)), ctl.signal);
          return;
        }
        if (!res.body) throw new GanserveError({ code: "invalid_response", status: res.status, message: "event stream response has no body" });
        const snapshot = res.headers.get("ganserve-events") === "snapshot";
        const parser = new SSEParser(lastEventId);
        let lost: GanserveConnectionError | undefined;
        try {
          for await (const msg of parseSSE(res.body, parser)) {
            if (msg.event === "error") throw streamError(msg.data);
            const event = parseEvent(msg.data);
            failures = 0;
            // A server that replays from an older id than we asked for must not make us yield twice.
            if (event.seq <= lastSeq) continue;
            lastSeq = event.seq;
            yield event;
            if (event.type === "done") return;
          }
          // A snapshot ends by design: ask again after its retry delay (polling through the event route).
          if (!snapshot) lost = new GanserveConnectionError(`event stream of ${id} ended before its done event`);
        } catch (e) {
          if (ctl.signal.aborted) throw ctl.signal.reason;
          if (e instanceof GanserveError && !(e instanceof GanserveConnectionError)) throw e;
          lost = e instanceof GanserveConnectionError ? e : new GanserveConnectionError(`event stream of ${id} broke: ${(e as Error)?.message ?? e}`, e);
        } finally {
          lastEventId = parser.lastEventId;
          retryMs = parser.retry ?? retryMs;
        }
        if (!lost) {
          failures = 0;
          await sleep(retryMs ?? POLL_MS, ctl.signal);
          continue;
        }
        if (++failures > maxRetries) throw lost;
        await sleep(retryMs ?? backoffMs(failures - 1), ctl.signal);
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      ctl.abort();
    }
  }

  /** Events made from the record, polled every POLL_MS, for when the event route does not answer with events. */
  private async *pollEvents(id: string, lastSeq: number, signal: AbortSignal): AsyncGenerator<FineTuneEvent, void, undefined> {
    let seq = lastSeq;
    let status: FineTune["status"] | undefined;
    let step: number | undefined;
    for (;;) {
      const ft = await this.get(id, { signal });
      const time = new Date().toISOString();
      if (ft.status !== status) yield { seq: ++seq, type: "status", status: ft.status, step: ft.step, time };
      else if (ft.step !== step) yield { seq: ++seq, type: "progress", step: ft.step, losses: ft.losses, time };
      status = ft.status;
      step = ft.step;
      if (TERMINAL.has(ft.status)) {
        yield { seq: ++seq, type: "done", status: ft.status, step: ft.step, time, ...(ft.error ? { message: ft.error.message } : {}) };
        return;
      }
      await sleep(POLL_MS, signal);
    }
  }

  /**
   * Waits for the fine-tune to finish, following its event stream (and polling if the stream is
   * unavailable). Resolves with the succeeded fine-tune; throws FineTuneFailedError, FineTuneCanceledError,
   * or FineTuneTimeoutError after `timeoutMs` (which leaves the fine-tune running).
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<FineTune> {
    const ctl = new AbortController();
    const timedOut = Symbol("timeout");
    const onAbort = () => ctl.abort(opts.signal!.reason);
    if (opts.signal?.aborted) throw opts.signal.reason;
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => ctl.abort(timedOut), opts.timeoutMs) : undefined;
    let fineTune: FineTune | undefined;
    try {
      fineTune = await this.get(id, { signal: ctl.signal });
      let lastEventId: string | undefined;
      let sawDone = false;
      while (!TERMINAL.has(fineTune.status)) {
        if (!sawDone) {
          try {
            for await (const event of this.events(id, { signal: ctl.signal, lastEventId })) {
              lastEventId = String(event.seq);
              if (event.type === "done") sawDone = true;
              await opts.onEvent?.(event);
            }
          } catch (e) {
            if (!(e instanceof GanserveConnectionError)) throw e;
          }
        }
        fineTune = await this.get(id, { signal: ctl.signal });
        // The record can trail the done event by a moment; a broken stream also lands here.
        if (!TERMINAL.has(fineTune.status)) await sleep(sawDone ? 500 : POLL_MS, ctl.signal);
      }
    } catch (e) {
      if (ctl.signal.reason === timedOut) throw new FineTuneTimeoutError(id, opts.timeoutMs!, fineTune);
      throw e;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }
    if (fineTune.status === "failed") throw new FineTuneFailedError(fineTune);
    if (fineTune.status === "canceled") throw new FineTuneCanceledError(fineTune);
    return fineTune;
  }
}

function parseEvent(data: string): FineTuneEvent {
  let event: unknown;
  try {
    event = JSON.parse(data);
  } catch (e) {
    throw new GanserveError({ code: "invalid_response", message: `fine-tune event is not JSON: ${data.slice(0, 100)}`, cause: e });
  }
  if (typeof (event as FineTuneEvent)?.seq !== "number" || typeof (event as FineTuneEvent).type !== "string")
    throw new GanserveError({ code: "invalid_response", message: `fine-tune event without seq/type: ${data.slice(0, 100)}` });
  return event as FineTuneEvent;
}

/** An `event: error` on the stream carries the usual error body. */
function streamError(data: string): GanserveError {
  try {
    const { error } = JSON.parse(data) as ErrorBody;
    return new GanserveError({ code: error.code, message: error.message, details: error.details, requestId: error.requestId });
  } catch {
    return new GanserveError({ code: "internal", message: `event stream error: ${data.slice(0, 200)}` });
  }
}
