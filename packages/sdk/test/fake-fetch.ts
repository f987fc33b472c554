/** A scripted fetch for unit tests: each call is answered by the next handler and recorded. */
import type { FetchLike } from "../src/index.ts";

export interface Call {
  url: string;
  method: string;
  headers: Headers;
  body: RequestInit["body"];
  signal: AbortSignal | undefined;
  at: number;
}

export type Handler = (call: Call) => Response | Promise<Response>;

export function fakeFetch(...handlers: Handler[]) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init) => {
    const call: Call = {
      url,
      method: init.method ?? "GET",
      headers: new Headers(init.headers),
      body: init.body,
      signal: init.signal ?? undefined,
      at: Date.now(),
    };
    calls.push(call);
    const handler = handlers[calls.length - 1];
    if (!handler) throw new Error(`unexpected call ${calls.length}: ${call.method} ${url}`);
    return handler(call);
  };
  return { fetch, calls };
}

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

export const apiError = (status: number, code: string, headers: Record<string, string> = {}, details?: unknown) =>
  json({ error: { code, message: `${code} happened`, details, requestId: `req-${code}` } }, status, headers);

/** A fetch failure as undici reports it. */
export const networkError = (code = "ECONNRESET") => () => {
  throw new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) });
};

/** Never answers; rejects when the request is aborted, as fetch does. */
export const hang: Handler = (call) =>
  new Promise((_, reject) => {
    call.signal?.addEventListener("abort", () => reject(call.signal!.reason), { once: true });
  });

/** A byte stream that delivers the given chunks, then ends or fails. */
export function streamOf(chunks: (string | Uint8Array)[], end: "close" | "error" = "close"): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (i < chunks.length) {
        const c = chunks[i++];
        ctl.enqueue(typeof c === "string" ? enc.encode(c) : c);
      } else if (end === "error") ctl.error(new TypeError("terminated", { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) }));
      else ctl.close();
    },
  });
}

export const sse = (chunks: string[], end: "close" | "error" = "close") =>
  new Response(streamOf(chunks, end), { status: 200, headers: { "content-type": "text/event-stream" } });
