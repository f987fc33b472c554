/** The SSE parser and fineTunes.events/wait over scripted streams. */
import { describe, expect, it } from "vitest";
import {
  FineTuneCanceledError,
  FineTuneFailedError,
  FineTuneTimeoutError,
  Ganserve,
  GanserveConnectionError,
  parseSSE,
  SSEParser,
  type FineTune,
  type FineTuneEvent,
  type SSEMessage,
} from "../src/index.ts";
import { apiError, fakeFetch, hang, json, networkError, sse, streamOf, type Handler } from "./fake-fetch.ts";

async function collect(chunks: (string | Uint8Array)[]): Promise<SSEMessage[]> {
  const out: SSEMessage[] = [];
  for await (const m of parseSSE(streamOf(chunks))) out.push(m);
  return out;
}

describe("SSE parser", () => {
  it("parses events split anywhere, even mid-line and mid-CRLF", async () => {
    const text = "id: 1\r\nevent: progress\r\ndata: {\"a\":1}\r\n\r\nid: 2\nevent: log\ndata: x\n\n";
    const whole = await collect([text]);
    expect(whole).toEqual([
      { id: "1", event: "progress", data: '{"a":1}' },
      { id: "2", event: "log", data: "x" },
    ]);
    for (let cut = 1; cut < text.length; cut++) expect(await collect([text.slice(0, cut), text.slice(cut)]), `cut at ${cut}`).toEqual(whole);
    expect(await collect(text.split(""))).toEqual(whole);
  });

  it("joins multi-line data with newlines and takes one optional space after the colon", async () => {
    expect(await collect(["data: line one\ndata:line two\ndata\ndata:  indented\n\n"])).toEqual([
      { id: undefined, event: "message", data: "line one\nline two\n\n indented" },
    ]);
  });

  it("ignores comments, heartbeats, unknown fields and events without data", async () => {
    const msgs = await collect([": heartbeat\n\n", ":\n", "foo: bar\nevent: nothing\n\n", "data: real\n", ": mid-event comment\n", "\n"]);
    expect(msgs).toEqual([{ id: undefined, event: "message", data: "real" }]);
  });

  it("keeps the last id across events, records retry, drops an unterminated event at the end", async () => {
    const parser = new SSEParser();
    const msgs: SSEMessage[] = [];
    for await (const m of parseSSE(streamOf(["retry: 1500\nid: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: cut off"]), parser)) msgs.push(m);
    expect(msgs).toEqual([
      { id: "7", event: "message", data: "a" },
      { id: "7", event: "message", data: "b" },
    ]);
    expect(parser.retry).toBe(1500);
    // Event 8 never completed, so a reconnect must ask for what follows 7.
    expect(parser.lastEventId).toBe("7");
  });

  it("decodes UTF-8 split across chunks and a final CR line end", async () => {
    const bytes = new TextEncoder().encode("data: héllo ✓\r\r");
    expect(await collect([bytes.slice(0, 8), bytes.slice(8, 15), bytes.slice(15)])).toEqual([{ id: undefined, event: "message", data: "héllo ✓" }]);
  });
});

const ev = (seq: number, type: FineTuneEvent["type"], extra: Partial<FineTuneEvent> = {}): FineTuneEvent => ({
  seq,
  type,
  time: "2025-01-01T00:00:00Z",
  ...extra,
});
const frame = (e: FineTuneEvent) => `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
const fineTune = (status: FineTune["status"], extra: Partial<FineTune> = {}): FineTune => ({
  id: "ft_0123456789abcdef",
  status,
  family: "stylegan2",
  base_model: "m",
  base_version: "v1",
  dataset: "ds_0123456789abcdef",
  name: "n",
  params: {},
  step: 0,
  total_steps: 4,
  losses: {},
  loss_history: [],
  samples: [],
  attempts: 1,
  cancel_requested: false,
  created_at: "2025-01-01T00:00:00Z",
  ...extra,
});

const client = (handlers: Handler[], maxRetries = 2) => {
  const f = fakeFetch(...handlers);
  return { sdk: new Ganserve({ baseUrl: "http://api.test", apiKey: "k", fetch: f.fetch, maxRetries }), calls: f.calls };
};
const FT = "ft_0123456789abcdef";

describe("fineTunes.events", () => {
  it("yields parsed events and stops after done", async () => {
    const { sdk, calls } = client([() => sse([": hi\n\n", frame(ev(1, "status", { status: "running" })), frame(ev(2, "progress", { step: 1, losses: { g: 1.5 } })), frame(ev(3, "done", { status: "succeeded" })), frame(ev(4, "log"))])]);
    const seen: FineTuneEvent[] = [];
    for await (const e of sdk.fineTunes.events(FT)) seen.push(e);
    expect(seen.map((e) => [e.seq, e.type])).toEqual([[1, "status"], [2, "progress"], [3, "done"]]);
    expect(seen[1].losses).toEqual({ g: 1.5 });
    expect(calls[0].url).toBe(`http://api.test/v1/fine-tunes/${FT}/events`);
    expect(calls[0].headers.get("accept")).toBe("text/event-stream");
    expect(calls[0].headers.get("last-event-id")).toBeNull();
  });

  it("reconnects with Last-Event-ID after the connection drops, without repeating events", async () => {
    const { sdk, calls } = client([
      () => sse([frame(ev(1, "status")), frame(ev(2, "progress")).slice(0, 20)], "error"),
      networkError(),
      // A server that replays an already-seen event: it must not be yielded twice.
      () => sse(["retry: 10\n\n", frame(ev(1, "status")), frame(ev(2, "progress")), frame(ev(3, "done"))]),
    ]);
    const seqs: number[] = [];
    for await (const e of sdk.fineTunes.events(FT, { lastEventId: 0 })) seqs.push(e.seq);
    expect(seqs).toEqual([1, 2, 3]);
    // The cut-off event 2 is asked for again.
    expect(calls.map((c) => c.headers.get("last-event-id"))).toEqual(["0", "1", "1"]);
  });

  it("treats a stream that ends before done as a drop, and gives up after maxRetries drops without an event", async () => {
    const { sdk, calls } = client([() => sse([frame(ev(1, "status"))]), () => sse([": heartbeat\n\n"]), () => sse([])], 2);
    const seqs: number[] = [];
    const err = await (async () => {
      for await (const e of sdk.fineTunes.events(FT)) seqs.push(e.seq);
    })().catch((e) => e);
    expect(seqs).toEqual([1]);
    expect(err).toBeInstanceOf(GanserveConnectionError);
    expect(calls).toHaveLength(3);
    expect(calls[2].headers.get("last-event-id")).toBe("1");
  });

  it("follows snapshot answers (a buffered deployment) by asking again after their retry delay: no drop", async () => {
    const snapshot = (chunks: string[]) => new Response(streamOf(chunks), { status: 200, headers: { "content-type": "text/event-stream", "ganserve-events": "snapshot" } });
    // maxRetries 0: a snapshot that ends without done must not count as a dropped stream.
    const { sdk, calls } = client(
      [
        () => snapshot([frame(ev(1, "status", { status: "running" })), frame(ev(2, "progress", { step: 1 })), "retry: 10\n\n"]),
        () => snapshot(["retry: 10\n\n"]),
        () => snapshot([frame(ev(3, "done", { status: "succeeded" }))]),
      ],
      0,
    );
    const seqs: number[] = [];
    for await (const e of sdk.fineTunes.events(FT)) seqs.push(e.seq);
    expect(seqs).toEqual([1, 2, 3]);
    expect(calls.map((c) => c.headers.get("last-event-id"))).toEqual([null, "2", "2"]);
  });

  it("falls back to polling GET /v1/fine-tunes/{id} when the answer is not an event stream", async () => {
    const { sdk, calls } = client([
      () => json({ message: "Endpoint request timed out" }, 200),
      () => json(fineTune("running", { step: 1 })),
      () => json(fineTune("running", { step: 3, losses: { g: 0.5 } })),
      () => json(fineTune("failed", { step: 3, error: { code: "worker_died", message: "OutOfMemoryError" } })),
    ]);
    const seen: FineTuneEvent[] = [];
    for await (const e of sdk.fineTunes.events(FT, { lastEventId: 4 })) seen.push(e);
    expect(seen.map((e) => [e.seq, e.type, e.status ?? e.step])).toEqual([
      [5, "status", "running"],
      [6, "progress", 3],
      [7, "status", "failed"],
      [8, "done", "failed"],
    ]);
    expect(seen[1].losses).toEqual({ g: 0.5 });
    expect(seen[3].message).toBe("OutOfMemoryError");
    expect(calls.slice(1).map((c) => c.url)).toEqual(Array(3).fill(`http://api.test/v1/fine-tunes/${FT}`));
  });

  it("throws API errors at once and closes the stream when the loop is left early", async () => {
    const { sdk } = client([() => apiError(404, "not_found")]);
    await expect(sdk.fineTunes.events(FT).next()).rejects.toMatchObject({ code: "not_found", status: 404 });

    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode(frame(ev(1, "status")))),
      cancel: () => {
        cancelled = true;
      },
    });
    const { sdk: sdk2 } = client([() => new Response(body, { status: 200 })]);
    for await (const e of sdk2.fineTunes.events(FT)) if (e.seq === 1) break;
    expect(cancelled).toBe(true);
  });
});

describe("fineTunes.wait", () => {
  it("follows events to the end and resolves with the succeeded fine-tune", async () => {
    const done = fineTune("succeeded", { result: { model: "n", version: "v1" } });
    const { sdk } = client([
      () => json(fineTune("running")),
      () => sse([frame(ev(1, "progress", { step: 2 })), frame(ev(2, "done", { status: "succeeded" }))]),
      () => json(done),
    ]);
    const steps: number[] = [];
    expect(await sdk.fineTunes.wait(FT, { onEvent: (e) => void (e.step !== undefined && steps.push(e.step)) })).toEqual(done);
    expect(steps).toEqual([2]);
  });

  it("throws typed errors for failed and canceled fine-tunes", async () => {
    const failed = fineTune("failed", { error: { code: "nan_loss", message: "loss diverged" } });
    const { sdk } = client([() => json(failed)]);
    const err = await sdk.fineTunes.wait(FT).catch((e) => e);
    expect(err).toBeInstanceOf(FineTuneFailedError);
    expect(err).toMatchObject({ code: "fine_tune_failed", fineTune: failed });
    expect(err.message).toContain("loss diverged");

    const { sdk: sdk2 } = client([() => json(fineTune("queued")), () => sse([frame(ev(1, "done", { status: "canceled" }))]), () => json(fineTune("canceled"))]);
    expect(await sdk2.fineTunes.wait(FT).catch((e) => e)).toBeInstanceOf(FineTuneCanceledError);
  });

  it("times out with the last known state, leaving the fine-tune alone", async () => {
    const running = fineTune("running", { step: 3 });
    const { sdk, calls } = client([() => json(running), hang]);
    const err = await sdk.fineTunes.wait(FT, { timeoutMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(FineTuneTimeoutError);
    expect(err).toMatchObject({ code: "wait_timeout", fineTune: running });
    expect(calls.some((c) => c.url.endsWith("/cancel"))).toBe(false);
  });
});
