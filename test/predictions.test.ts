/**
 * Predictions on the real local stack (in-process queue and worker, embedded store, the shipped demo models),
 * for two tenants: wait=0 then poll, Prefer: wait, Idempotency-Key, cancel of a long one, list and tenant
 * scoping, the event stream, translate through predictions, and the bad-input answers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "./helpers/stack.ts";

const ALICE = "gs_predictions_alice_0123456789";
const BOB = "gs_predictions_bob_0123456789ab";

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: `alice:${ALICE},bob:${BOB}` } });
});
afterAll(async () => {
  await stack?.stop();
});

const headers = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, "content-type": "application/json", ...extra });

const create = (body: unknown, extra: Record<string, string> = {}, key = ALICE) =>
  fetch(`${stack.url}/v1/predictions`, { method: "POST", headers: headers(key, extra), body: JSON.stringify(body) });

const get = (id: string, key = ALICE) => fetch(`${stack.url}/v1/predictions/${id}`, { headers: headers(key) });

/** Polls until the prediction ends (bounded by the test timeout, not by a time assertion). */
async function settle(id: string, key = ALICE) {
  for (;;) {
    const p = await (await get(id, key)).json();
    if (["succeeded", "failed", "canceled"].includes(p.status)) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const seeds = (s: unknown) => ({ model: "fashion-stylegan2", input: { seeds: s, class_idx: 3 } });

describe("create, wait and poll", () => {
  it("Prefer: wait=0 answers 202 with Location; polling reaches succeeded with stored images", async () => {
    const res = await create(seeds([1, 2]), { prefer: "wait=0" });
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("wait=0");
    const p = await res.json();
    expect(p).toMatchObject({ model: "fashion-stylegan2", version: "v1", task: "generate", output: null, error: null });
    expect(["starting", "processing", "succeeded"]).toContain(p.status);
    expect(res.headers.get("location")).toBe(p.urls.get);
    const done = await settle(p.id);
    expect(done.status).toBe("succeeded");
    expect(done.output.map((o: { seed: number }) => o.seed)).toEqual([1, 2]);
    expect(done.attempts).toBe(1);
    expect(done.metrics.predict_time).toBeGreaterThanOrEqual(0);
    // Predictions default to URLs of stored images.
    const img = await fetch(done.output[0].url);
    expect(img.status).toBe(200);
    expect(Buffer.from(await img.arrayBuffer()).subarray(1, 4).toString()).toBe("PNG");
  });

  it("Prefer: wait=20 answers 201 with the output; a wait above the cap is clamped and says so", async () => {
    const res = await create({ ...seeds([5]), input: { seeds: [5], class_idx: 3, output: "base64" } }, { prefer: "wait=20" });
    expect(res.status).toBe(201);
    expect(res.headers.get("preference-applied")).toBe("wait=20");
    const p = await res.json();
    expect(p.status).toBe("succeeded");
    expect(p.output[0]).toMatchObject({ seed: 5, content_type: "image/png", width: 32, height: 32 });
    expect(p.output[0].data.length).toBeGreaterThan(100);
    const long = await create(seeds([6]), { prefer: "wait=100000" });
    expect(long.headers.get("preference-applied")).toBe("wait=60");
    expect(long.status).toBe(201);
  });

  it("gives the same pixels as /v1/generate for the same request", async () => {
    const direct = await (await fetch(`${stack.url}/v1/generate`, { method: "POST", headers: headers(ALICE), body: JSON.stringify({ model: "fashion-stylegan2", seeds: [9], class_idx: 3 }) })).json();
    const p = await (await create({ model: "fashion-stylegan2", input: { seeds: [9], class_idx: 3, output: "base64" } }, { prefer: "wait=20" })).json();
    expect(p.output[0].data).toBe(direct.images[0].data);
  });

  it("the same Idempotency-Key returns the same prediction to its tenant only", async () => {
    const key = `k-${Date.now()}`;
    const a = await (await create(seeds([7]), { "idempotency-key": key, prefer: "wait=0" })).json();
    const b = await (await create(seeds([7]), { "idempotency-key": key, prefer: "wait=0" })).json();
    const other = await (await create(seeds([7]), { "idempotency-key": key, prefer: "wait=0" }, BOB)).json();
    expect(b.id).toBe(a.id);
    expect(other.id).not.toBe(a.id);
    await settle(a.id);
    await settle(other.id, BOB);
  });
});

describe("cancel, list, tenants", () => {
  it("a 64-seed prediction canceled ends canceled (or succeeded if it had finished); lists are per tenant", async () => {
    const big = await (await create(seeds("0-63"), { prefer: "wait=0" })).json();
    const cancel = await fetch(`${stack.url}/v1/predictions/${big.id}/cancel`, { method: "POST", headers: headers(ALICE) });
    const end = await settle(big.id);
    if (cancel.status === 200) {
      expect(end.status).toBe("canceled");
      expect(end.output).toBeNull();
    } else {
      expect(cancel.status).toBe(409);
      expect(end.status).toBe("succeeded");
    }
    const bobs = await (await create(seeds([11]), { prefer: "wait=20" }, BOB)).json();
    expect(bobs.status).toBe("succeeded");

    const aliceList = await (await fetch(`${stack.url}/v1/predictions?limit=100`, { headers: headers(ALICE) })).json();
    const bobList = await (await fetch(`${stack.url}/v1/predictions?limit=100`, { headers: headers(BOB) })).json();
    const aliceIds = aliceList.results.map((p: { id: string }) => p.id);
    const bobIds = bobList.results.map((p: { id: string }) => p.id);
    expect(aliceIds).toContain(big.id);
    expect(aliceIds).not.toContain(bobs.id);
    expect(bobIds).toContain(bobs.id);
    expect(bobIds).not.toContain(big.id);
    expect(aliceList.results.find((p: { id: string }) => p.id === big.id).status).toBe(end.status);
    // Newest first.
    const created = aliceList.results.map((p: { created_at: string }) => p.created_at);
    expect([...created].sort().reverse()).toEqual(created);

    // Another tenant's id is not found, for reading and for cancelling.
    expect((await get(big.id, BOB)).status).toBe(404);
    expect((await fetch(`${stack.url}/v1/predictions/${big.id}/cancel`, { method: "POST", headers: headers(BOB) })).status).toBe(404);
    // A cancel of an ended prediction: 409 with its status.
    const again = await fetch(`${stack.url}/v1/predictions/${big.id}/cancel`, { method: "POST", headers: headers(ALICE) });
    expect(again.status).toBe(409);
    expect((await again.json()).error).toMatchObject({ code: "conflict", details: { status: end.status } });
  });

  it("pages with a cursor, newest first, without repeats", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await (await create(seeds([20 + i]), { prefer: "wait=0" }, BOB)).json()).id);
    const seen: string[] = [];
    let next: string | null = `${stack.url}/v1/predictions?limit=2`;
    while (next) {
      const page: { results: { id: string }[]; next: string | null } = await (await fetch(next, { headers: headers(BOB) })).json();
      expect(page.results.length).toBeLessThanOrEqual(2);
      seen.push(...page.results.map((p) => p.id));
      next = page.next;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    for (const id of ids) await settle(id, BOB);
  });
});

describe("events", () => {
  it("streams status changes and ends with done carrying the output", async () => {
    const p = await (await create(seeds("0-15"), { prefer: "wait=0" })).json();
    const res = await fetch(p.urls.stream, { headers: headers(ALICE) });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\w+)\ndata: (.*)$/gm)].map((m) => ({ type: m[1], data: JSON.parse(m[2]) }));
    expect(events[0].type).toBe("status");
    const last = events[events.length - 1];
    expect(last.type).toBe("done");
    expect(last.data.prediction.status).toBe("succeeded");
    expect(last.data.prediction.output).toHaveLength(16);
  });
});

describe("translate through predictions", () => {
  it("runs a CycleGAN prediction on an image", async () => {
    // An 8×8 PNG (a yellow disc on white).
    const png =
      "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAMAAADz0U65AAAABlBMVEX6yB7///94cyYUAAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAGUlEQVQI12NghAIGIAICEIMBDPAz4IqhAAAEyAAhPGzxxQAAAABJRU5ErkJggg==";
    const res = await create({ model: "emoji-cyclegan", input: { image: png } }, { prefer: "wait=20" });
    expect(res.status).toBe(201);
    const p = await res.json();
    expect(p.status).toBe("succeeded");
    expect(p.task).toBe("translate");
    // The record shows input files by size, not their bytes.
    expect(p.input.image).toMatch(/^\(\d+ bytes\)$/);
    expect(p.output).toHaveLength(1);
    expect((await fetch(p.output[0].url)).status).toBe(200);
  });
});

describe("bad input", () => {
  it("unknown model or version: 404", async () => {
    const m = await create({ model: "no-such-model", input: { seeds: [1] } });
    expect(m.status).toBe(404);
    expect((await m.json()).error.code).toBe("model_not_found");
    const v = await create({ model: "fashion-stylegan2", version: "v99", input: { seeds: [1] } });
    expect(v.status).toBe(404);
    expect((await v.json()).error.code).toBe("version_not_found");
  });

  it("input that fails the family's schema: 422 naming the field path", async () => {
    const res = await create({ model: "fashion-stylegan2", input: { seeds: "zero-to-three" } });
    expect(res.status).toBe(422);
    const { error } = await res.json();
    expect(error.code).toBe("unprocessable");
    expect(error.details.issues[0].path).toBe("input.seeds");
    const cg = await create({ model: "emoji-cyclegan", input: { image: "not base64!" } });
    expect(cg.status).toBe(400);
    expect((await cg.json()).error.message).toMatch(/^input\.image: /);
  });

  it("an unknown prediction id: 404; a malformed one: 400", async () => {
    expect((await get("p000000000000000000000")).status).toBe(404);
    expect((await get("nope")).status).toBe(400);
  });
});
