/** Predictions in the SDK against a scripted fetch: run() waits with Prefer, then polls; errors carry the server's code. */
import { describe, expect, it } from "vitest";
import { Ganserve, PredictionError, type Prediction } from "../src/index.ts";
import { apiError, fakeFetch, json, sse, type Handler } from "./fake-fetch.ts";

const client = (...handlers: Handler[]) => {
  const f = fakeFetch(...handlers);
  return { sdk: new Ganserve({ baseUrl: "http://api.test/", apiKey: "k", fetch: f.fetch }), calls: f.calls };
};

const prediction = (status: Prediction["status"], extra: Partial<Prediction> = {}): Prediction => ({
  id: "p2vxj0e9k4m1q8r7s6t5u3w",
  model: "fashion-stylegan2",
  version: "v1",
  task: "generate",
  input: { seeds: [1] },
  status,
  output: status === "succeeded" ? [{ seed: 1, content_type: "image/png", width: 32, height: 32, url: "http://store.test/1.png" }] : null,
  error: null,
  error_code: null,
  logs: "",
  metrics: {},
  attempts: status === "starting" ? 0 : 1,
  data_removed: false,
  created_at: "2026-12-06T00:00:00.000Z",
  started_at: null,
  completed_at: null,
  deadline_at: "2026-12-06T00:30:00.000Z",
  urls: { get: "http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w", cancel: "", stream: "" },
  ...extra,
});

describe("predictions", () => {
  it("run() holds the request with Prefer: wait, then polls a prediction that did not end (a cold start)", async () => {
    const { sdk, calls } = client(
      () => json(prediction("starting"), 202),
      () => json(prediction("processing")),
      () => json(prediction("succeeded")),
    );
    const p = await sdk.run("fashion-stylegan2", { seeds: [1] });
    expect(p.status).toBe("succeeded");
    expect(p.output?.[0].url).toBe("http://store.test/1.png");
    expect(calls[0]).toMatchObject({ method: "POST", url: "http://api.test/v1/predictions" });
    expect(calls[0].headers.get("prefer")).toBe("wait=60");
    expect(JSON.parse(String(calls[0].body))).toEqual({ model: "fashion-stylegan2", input: { seeds: [1] } });
    expect(calls.slice(1).map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w",
      "GET http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w",
    ]);
  });

  it("run() throws PredictionError with the server's error code when the prediction fails", async () => {
    const { sdk } = client(() => json(prediction("failed", { error: "deadline passed", error_code: "deadline_exceeded" }), 201));
    const err = await sdk.run("fashion-stylegan2", { seeds: [1] }).catch((e) => e);
    expect(err).toBeInstanceOf(PredictionError);
    expect(err.code).toBe("deadline_exceeded");
    expect(err.prediction.status).toBe("failed");
  });

  it("create sends Idempotency-Key and Prefer; list pages with a cursor; cancel posts", async () => {
    const { sdk, calls } = client(
      () => json(prediction("starting"), 202),
      () => json({ results: [prediction("starting")], next: null }),
      () => json(prediction("canceled")),
    );
    await sdk.predictions.create({ model: "fashion-stylegan2", input: { seeds: [1] } }, { wait: 0, idempotencyKey: "abc" });
    expect(calls[0].headers.get("idempotency-key")).toBe("abc");
    expect(calls[0].headers.get("prefer")).toBe("wait=0");
    await sdk.predictions.list({ cursor: "p2vxj0e9k4m1q8r7s6t5u3w", limit: 5 });
    expect(calls[1].url).toBe("http://api.test/v1/predictions?cursor=p2vxj0e9k4m1q8r7s6t5u3w&limit=5");
    expect((await sdk.predictions.cancel("p2vxj0e9k4m1q8r7s6t5u3w")).status).toBe("canceled");
    expect(calls[2]).toMatchObject({ method: "POST", url: "http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w/cancel" });
  });

  it("generate() follows a 202 (not done within the server's wait) to the end and answers as the route would", async () => {
    const { sdk, calls } = client(
      () => json(prediction("starting"), 202),
      () => json(prediction("succeeded", { metrics: { queue_time: 1.5, predict_time: 0.25, total_time: 1.75 } })),
    );
    const res = await sdk.generate({ model: "fashion-stylegan2", seeds: [1] });
    expect(res.images).toEqual([{ seed: 1, content_type: "image/png", width: 32, height: 32, url: "http://store.test/1.png" }]);
    expect(res.timings).toEqual({ queue_ms: 1500, compute_ms: 250, encode_ms: 0, total_ms: 1750 });
    expect(calls[1]).toMatchObject({ method: "GET", url: "http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w" });
    const failed = client(() => json(prediction("failed", { error: "queue full", error_code: "queue_full" }), 202));
    await expect(failed.sdk.generate({ model: "fashion-stylegan2", seeds: [1] })).rejects.toMatchObject({ code: "queue_full" });
  });

  it("stream() goes on by polling when the event stream does not deliver (a buffered deployment's 504)", async () => {
    const f = fakeFetch(
      () => apiError(504, "gateway_timeout"),
      () => json(prediction("processing")),
      () => json(prediction("processing")),
      () => json(prediction("succeeded")),
    );
    const sdk = new Ganserve({ baseUrl: "http://api.test/", apiKey: "k", fetch: f.fetch, maxRetries: 0 });
    const seen: [string, string][] = [];
    for await (const e of sdk.predictions.stream("p2vxj0e9k4m1q8r7s6t5u3w")) seen.push([e.type, e.prediction.status]);
    expect(seen).toEqual([
      ["status", "processing"],
      ["status", "succeeded"],
      ["done", "succeeded"],
    ]);
    expect(f.calls.slice(1).map((c) => c.url)).toEqual(Array(3).fill("http://api.test/v1/predictions/p2vxj0e9k4m1q8r7s6t5u3w"));
  });

  it("stream() picks up after a stream that ended before done, without repeating the status it saw", async () => {
    const frame = (type: string, p: Prediction) => `event: ${type}\ndata: ${JSON.stringify({ type, prediction: p })}\n\n`;
    const { sdk } = client(
      () => sse([frame("status", prediction("processing"))]),
      () => json(prediction("processing")),
      () => json(prediction("succeeded")),
    );
    const seen: string[] = [];
    for await (const e of sdk.predictions.stream("p2vxj0e9k4m1q8r7s6t5u3w")) seen.push(`${e.type}:${e.prediction.status}`);
    expect(seen).toEqual(["status:processing", "status:succeeded", "done:succeeded"]);
  });
});
