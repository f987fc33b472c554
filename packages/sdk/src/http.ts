/**
 * The one request loop: auth, per-attempt timeouts, and retries with exponential backoff and jitter.
 *
 * What is retried, and why:
 * - 429 and 503 on every request: the server says "not now", nothing was done. Retry-After is honoured
 *   (up to MAX_RETRY_AFTER_S; a longer wait is handed to the caller rather than hidden in a hang).
 * - Network errors and timeouts only on idempotent requests: GET, PUT, and the POSTs whose repeat is
 *   harmless (generate/interpolate/translate give the same bytes for the same request; finalize and
 *   cancel are idempotent on the server). Creating a dataset or a fine-tune after the request may have
 *   reached the server would risk a duplicate (a fine-tune is paid GPU time), so those are retried only
 *   when the connection was provably never made.
 * - Never any other 4xx/5xx: the answer would be the same.
 */
import { errorFromResponse, GanserveConnectionError, GanserveError, GanserveTimeoutError } from "./errors.ts";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Server root, e.g. `https://api.example.com` or `http://localhost:3000` (without `/v1`). */
  baseUrl: string;
  apiKey: string;
  /** A fetch implementation; defaults to the global one. */
  fetch?: FetchLike;
  /** Per attempt, in ms; default 60 000. */
  timeoutMs?: number;
  /** Retries after the first attempt; default 2. */
  maxRetries?: number;
}

/** Options every method takes last. */
export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
}

export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** A path under the base URL, or an absolute URL (presigned storage URLs). */
  path: string;
  /** Serialised as JSON unless it is already a request body type. */
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Send the API key; false for presigned URLs, which must not see it. */
  auth?: boolean;
  /** Safe to repeat after it may have reached the server; defaults to true for every method but POST. */
  idempotent?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 2;
const MAX_RETRY_AFTER_S = 60;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 8_000;

/** Exponential with jitter, so a burst of clients that failed together does not retry together. */
export function backoffMs(attempt: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt) * (1 - 0.25 * Math.random());
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Errors whose cause shows no connection was made, so even a non-idempotent request never arrived. */
const NEVER_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);
function neverConnected(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c && depth < 4; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === "string" && NEVER_CONNECTED.has(code)) return true;
  }
  return false;
}

/** An abort signal for one attempt: the caller's signal plus the attempt's own timeout. */
function attemptSignal(outer: AbortSignal | undefined, timeoutMs: number) {
  const ctl = new AbortController();
  let timedOut = false;
  const onAbort = () => ctl.abort(outer!.reason);
  if (outer?.aborted) ctl.abort(outer.reason);
  else outer?.addEventListener("abort", onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined =
    timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          timedOut = true;
          ctl.abort(new GanserveTimeoutError(`request timed out after ${timeoutMs} ms`));
        }, timeoutMs)
      : undefined;
  return {
    signal: ctl.signal,
    timedOut: () => timedOut,
    clearTimer() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    dispose() {
      this.clearTimer();
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/** Settles with `p`, or rejects on abort even when a custom fetch ignores the signal for the body. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export class HttpClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly #apiKey: string;
  readonly #fetch: FetchLike;

  constructor(opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError("Ganserve: baseUrl is required");
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.#apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
    // Called without a receiver: browsers throw "Illegal invocation" when fetch runs with `this` = client.
    const f = opts.fetch;
    this.#fetch = f ? (input, init) => f(input, init) : (input, init) => globalThis.fetch(input, init);
  }

  /** JSON response body of a 2xx answer. */
  json<T>(req: HttpRequest, opts: RequestOptions = {}): Promise<T> {
    return this.send(req, opts, async (res) => {
      const text = await res.text();
      try {
        return (text ? JSON.parse(text) : undefined) as T;
      } catch (e) {
        throw new GanserveError({
          code: "invalid_response",
          status: res.status,
          message: `expected JSON from ${req.method} ${req.path.split("?")[0]}, got: ${text.slice(0, 100)}`,
          requestId: res.headers.get("x-request-id") ?? undefined,
          cause: e,
        });
      }
    });
  }

  /** The 2xx response with its body unread; the timeout covers only the wait for headers. */
  stream(req: HttpRequest, opts: RequestOptions = {}): Promise<Response> {
    return this.send(req, opts, async (res) => res, true);
  }

  /** Runs `read` inside the attempt, so a body that stalls or breaks is timed out and retried like a connect. */
  async send<T>(req: HttpRequest, opts: RequestOptions, read: (res: Response) => Promise<T>, streaming = false): Promise<T> {
    const url = this.url(req);
    const headers: Record<string, string> = { Accept: "application/json", ...req.headers };
    if (req.auth !== false) headers.Authorization = `Bearer ${this.#apiKey}`;
    let body = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers["Content-Type"] = "application/json";
    }
    const idempotent = req.idempotent ?? req.method !== "POST";
    const maxRetries = opts.maxRetries ?? this.maxRetries;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    // Presigned URLs carry their credential in the query string; keep it out of error messages and logs.
    const what = `${req.method} ${req.path.split("?")[0]}`;

    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const a = attemptSignal(opts.signal, timeoutMs);
      let res: Response;
      let text = "";
      let handedOff = false;
      try {
        res = await this.#fetch(url, { method: req.method, headers, body, signal: a.signal });
        if (res.ok) {
          if (streaming) {
            // The body outlives this call: keep the caller's abort wired to it, drop only the timeout.
            a.clearTimer();
            handedOff = true;
          }
          return streaming ? await read(res) : await untilAborted(read(res), a.signal);
        }
        // The status alone still makes a useful error if the body cannot be read.
        text = await untilAborted(res.text(), a.signal).catch(() => "");
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (e instanceof GanserveError && !(e instanceof GanserveConnectionError)) throw e;
        const err = a.timedOut()
          ? new GanserveTimeoutError(`${what} timed out after ${timeoutMs} ms`, e)
          : new GanserveConnectionError(`${what} failed: ${describeFailure(e)}`, e);
        if (attempt < maxRetries && (idempotent || neverConnected(e))) {
          await sleep(backoffMs(attempt), opts.signal);
          continue;
        }
        throw err;
      } finally {
        if (!handedOff) a.dispose();
      }
      const err = errorFromResponse(res.status, res.headers, text);
      if ((res.status === 429 || res.status === 503) && attempt < maxRetries) {
        const wait = err.retryAfter;
        if (wait === undefined || wait <= MAX_RETRY_AFTER_S) {
          await sleep(wait !== undefined ? wait * 1000 : backoffMs(attempt), opts.signal);
          continue;
        }
      }
      throw err;
    }
  }

  private url(req: HttpRequest): string {
    return /^https?:\/\//i.test(req.path) ? req.path : `${this.baseUrl}${req.path}`;
  }
}

function describeFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ? `${msg} (${cause.code})` : cause?.message ? `${msg} (${cause.message})` : msg;
}
