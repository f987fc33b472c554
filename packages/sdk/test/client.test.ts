/** Retries, timeouts and error mapping, against a scripted fetch. */
import { describe, expect, it } from "vitest";
import { Ganserve, GanserveConnectionError, GanserveError, GanserveTimeoutError } from "../src/index.ts";
import { apiError, fakeFetch, hang, json, networkError, type Handler } from "./fake-fetch.ts";

const client = (handlers: Handler[], opts: { timeoutMs?: number; maxRetries?: number } = {}) => {
  const f = fakeFetch(...handlers);
  return { sdk: new Ganserve({ baseUrl: "http://api.test/", apiKey: "k", fetch: f.fetch, ...opts }), calls: f.calls };
};
const okGenerate = () => json({ model: "m", version: "v1", params: {}, images: [], timings: { queue_ms: 0, compute_ms: 0, encode_ms: 0, total_ms: 0 } });

describe("requests", () => {
  it("sends the key, JSON and the right path", async () => {
    const { sdk, calls } = client([okGenerate]);
    await sdk.generate({ model: "m", seeds: "0-3" });
    expect(calls[0].url).toBe("http://api.test/v1/generate");
    expect(calls[0].method).toBe("POST");
    expect(calls[0].headers.get("authorization")).toBe("Bearer k");
    expect(calls[0].headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(calls[0].body as string)).toEqual({ model: "m", seeds: "0-3" });
  });

  it("escapes path parameters", async () => {
    const { sdk, calls } = client([() => json({})]);
    await sdk.models.version("a/b", "v1");
    expect(calls[0].url).toBe("http://api.test/v1/models/a%2Fb/versions/v1");
  });
});

describe("retries", () => {
  it("honours Retry-After on 429", async () => {
    const { sdk, calls } = client([() => apiError(429, "queue_full", { "retry-after": "1" }), okGenerate]);
    await sdk.generate({ model: "m", seeds: [1] });
    expect(calls).toHaveLength(2);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(950);
  });

  it("retries 503 with backoff, then gives up with the last error after maxRetries", async () => {
    const { sdk, calls } = client([() => apiError(503, "overloaded"), () => apiError(503, "overloaded"), () => apiError(503, "deadline_exceeded")], {
      maxRetries: 2,
    });
    const err = await sdk.generate({ model: "m", seeds: [1] }).catch((e) => e);
    expect(calls).toHaveLength(3);
    expect(err).toBeInstanceOf(GanserveError);
    expect(err).toMatchObject({ status: 503, code: "deadline_exceeded", requestId: "req-deadline_exceeded" });
    // 0.5 s then 1 s, each less up to 25 % jitter.
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(370);
    expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(740);
  });

  it("does not retry a Retry-After longer than a minute: the caller decides", async () => {
    const { sdk, calls } = client([() => apiError(429, "rate_limited", { "retry-after": "3600" })]);
    const err = await sdk.models.list().catch((e) => e);
    expect(calls).toHaveLength(1);
    expect(err).toMatchObject({ code: "rate_limited", retryAfter: 3600 });
  });

  it("never retries other 4xx", async () => {
    for (const [status, code] of [[400, "validation_failed"], [404, "model_not_found"], [409, "conflict"], [422, "wrong_model_family"]] as const) {
      const { sdk, calls } = client([() => apiError(status, code, {}, { issues: [] }), okGenerate]);
      const err = await sdk.generate({ model: "m", seeds: [1] }).catch((e) => e);
      expect(calls).toHaveLength(1);
      expect(err).toMatchObject({ status, code, requestId: `req-${code}`, details: { issues: [] } });
    }
  });

  it("retries idempotent requests after a network error", async () => {
    const { sdk, calls } = client([networkError(), okGenerate]);
    await sdk.generate({ model: "m", seeds: [1] });
    expect(calls).toHaveLength(2);
  });

  it("does not resend a fine-tune create that may have reached the server", async () => {
    const { sdk, calls } = client([networkError("ECONNRESET"), () => json({ id: "ft_x" }, 201)]);
    const err = await sdk.fineTunes.create({ base_model: "m", dataset: "ds_0123456789abcdef", name: "n" }).catch((e) => e);
    expect(calls).toHaveLength(1);
    expect(err).toBeInstanceOf(GanserveConnectionError);
    expect(err.code).toBe("connection_error");
  });

  it("does resend it when the connection was refused (nothing was sent)", async () => {
    const { sdk, calls } = client([networkError("ECONNREFUSED"), () => json({ id: "ft_x" }, 201)]);
    expect(await sdk.fineTunes.create({ base_model: "m", dataset: "ds_0123456789abcdef", name: "n" })).toEqual({ id: "ft_x" });
    expect(calls).toHaveLength(2);
  });

  it("times out each attempt, retries, and reports a GanserveTimeoutError", async () => {
    const { sdk, calls } = client([hang, hang], { timeoutMs: 50, maxRetries: 1 });
    const start = Date.now();
    const err = await sdk.models.list().catch((e) => e);
    expect(err).toBeInstanceOf(GanserveTimeoutError);
    expect(err).toBeInstanceOf(GanserveConnectionError);
    expect(err.code).toBe("timeout");
    expect(calls).toHaveLength(2);
    expect(Date.now() - start).toBeLessThan(2_000);
  });

  it("times out a body that stalls after the headers", async () => {
    const stalled = () => new Response(new ReadableStream({ pull: () => new Promise(() => undefined) }), { status: 200 });
    const { sdk } = client([stalled], { timeoutMs: 50, maxRetries: 0 });
    await expect(sdk.models.list()).rejects.toBeInstanceOf(GanserveTimeoutError);
  }, 5_000);

  it("stops at once when the caller aborts, with the caller's reason", async () => {
    const { sdk, calls } = client([hang, hang, hang]);
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error("user gave up")), 20);
    await expect(sdk.models.list({ signal: ctl.signal })).rejects.toThrow("user gave up");
    expect(calls).toHaveLength(1);
  });
});

describe("error mapping", () => {
  it("keeps the server's code, message, details and request id", async () => {
    const { sdk } = client([() => apiError(404, "model_not_found", {}, { model: "nope" })]);
    const err = (await sdk.models.get("nope").catch((e) => e)) as GanserveError;
    expect(err).toBeInstanceOf(GanserveError);
    expect(err.name).toBe("GanserveError");
    expect([err.status, err.code, err.message, err.requestId, err.details]).toEqual([404, "model_not_found", "model_not_found happened", "req-model_not_found", { model: "nope" }]);
  });

  it("maps a response that is not in the error shape by its status", async () => {
    const html = () => new Response("<html>Bad Gateway</html>", { status: 502, headers: { "x-request-id": "gw-1" } });
    const { sdk } = client([html]);
    expect(await sdk.models.list().catch((e) => e)).toMatchObject({ status: 502, code: "internal", requestId: "gw-1" });
  });

  it("reports a 2xx that is not JSON as invalid_response", async () => {
    const { sdk } = client([() => new Response("<html>", { status: 200 })]);
    expect(await sdk.models.list().catch((e) => e)).toMatchObject({ code: "invalid_response", status: 200 });
  });
});
