/**
 * Whatever a client sends, the answer is a 4xx in the error shape with a stable code, and the next good
 * request still succeeds. Also: a full queue answers 429 with Retry-After, and an expired wait 503.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostileCases, hostileInputs, wireBody, type HostileInputs } from "./helpers/hostile-bodies.ts";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";
import { official } from "./fixtures/index.ts";
import { importFixtureModels } from "./helpers/models.ts";

const SP = official("spade/label6_dontcare_instance_ngf1");


let stack: Stack;
const MAX_BODY_BYTES = 2 * 1024 * 1024;
// Filled in beforeAll; cases() is also called at collection time, only for the names.
let inputs: HostileInputs | undefined;
let goodLabel: string;

beforeAll(async () => {
  const dataDir = tempDataDir();
  importFixtureModels(dataDir);
  stack = await startStack({ dataDir, env: { GANSERVE_MAX_BODY_BYTES: String(MAX_BODY_BYTES) } });
  inputs = await hostileInputs();
  goodLabel = fs.readFileSync(path.join(SP, "test_py/label1.png")).toString("base64");
});
afterAll(async () => {
  await stack?.stop();
});

const cases = () => hostileCases(inputs, { maxBodyBytes: MAX_BODY_BYTES });

describe("bad input", () => {
  it("has at least 20 cases", () => expect(cases().length).toBeGreaterThanOrEqual(20));

  for (const c of cases().map((x) => x.name)) {
    it(`${c} → 4xx with its code, and the service keeps serving`, async () => {
      const k = cases().find((x) => x.name === c)!;
      const res = await fetch(`${stack.url}${k.route}`, {
        method: "POST",
        headers: { ...auth(stack), "content-type": "application/json", ...k.headers },
        body: wireBody(k),
      });
      const body = await res.json();
      expect({ status: res.status, code: body.error?.code }).toEqual({ status: k.status, code: k.code });
      expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
      expect(typeof body.error.message).toBe("string");
      const good = await fetch(`${stack.url}/v1/translate`, {
        method: "POST",
        headers: { ...auth(stack), "content-type": "application/json" },
        body: JSON.stringify(k.route === "/v1/generate" ? { model: "spade-fixture", label_map: goodLabel } : { model: "cg-fixture", image: inputs!.goodImage }),
      });
      expect(good.status).toBe(200);
    });
  }

  it("rejects a multipart field given twice", async () => {
    const form = new FormData();
    form.append("model", "cg-fixture");
    form.append("model", "cg-fixture");
    form.set("image", new Blob([new Uint8Array(Buffer.from(inputs!.goodImage, "base64"))], { type: "image/png" }), "a.png");
    const res = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: auth(stack), body: form });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe("validation_failed");
  });
});

describe("overload", () => {
  it("answers 429 with Retry-After when the queue is full, and 503 when a wait passes its deadline", async () => {
    // Batches wait up to 3 s to fill, longer than the 400 ms deadline: queued requests expire, extra ones bounce.
    // Any StyleGAN2 will do: the shipped demo one (class-conditional, so requests name a class).
    const slow = await startStack({
      env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_MAX_QUEUE: "4", GANSERVE_MAX_BATCH_DELAY_MS: "3000", GANSERVE_REQUEST_TIMEOUT_MS: "400", GANSERVE_MAX_BATCH: "8" },
    });
    try {
      const req = (seeds: number[] = [1]) =>
        fetch(`${slow.url}/v1/generate`, {
          method: "POST",
          headers: { ...auth(slow), "content-type": "application/json" },
          body: JSON.stringify({ model: "fashion-stylegan2", class_idx: 0, seeds }),
        });
      const queued = async () => {
        const m = /^ganserve_queue_depth\{[^}]*\} (\d+)/m.exec(await (await fetch(`${slow.url}/metrics`)).text());
        return m ? Number(m[1]) : 0;
      };
      // A first pass of 4 images makes the batcher wait for 4 slots (or 3 s) before the next pass.
      expect((await req([1, 2, 3, 4])).status).toBe(200);
      const waiting = [req(), req(), req()];
      while ((await queued()) < 3) await new Promise((r) => setTimeout(r, 20));
      // 3 slots taken of 4: two more images do not fit.
      const refused = await req([5, 6]);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect((await refused.json()).error.code).toBe("queue_full");
      const expired = await Promise.all(waiting);
      expect(expired.map((r) => r.status)).toEqual([503, 503, 503]);
      expect((await expired[0].json()).error.code).toBe("deadline_exceeded");
      // The expired requests freed their slots: the next one is queued again (and expires), not refused.
      expect((await req()).status).toBe(503);
    } finally {
      await slow.stop();
    }
  });
});

describe("OpenAPI", () => {
  it("documents every route with request and response schemas and examples", async () => {
    const doc = await (await fetch(`${stack.url}/openapi.json`)).json();
    const expected = [
      "/v1/models", "/v1/models/{name}", "/v1/models/{name}/versions/{version}", "/v1/generate", "/v1/generate/interpolate", "/v1/translate",
      "/v1/datasets", "/v1/datasets/{id}", "/v1/datasets/{id}/finalize", "/v1/fine-tunes", "/v1/fine-tunes/{id}", "/v1/fine-tunes/{id}/cancel", "/v1/fine-tunes/{id}/events",
      "/v1/predictions", "/v1/predictions/{id}", "/v1/predictions/{id}/cancel", "/v1/predictions/{id}/events",
      "/health", "/ready",
    ];
    // POSTs that act on the resource in the path and take no body.
    const bodyless = new Set(["/v1/datasets/{id}/finalize", "/v1/fine-tunes/{id}/cancel", "/v1/predictions/{id}/cancel"]);
    for (const p of expected) expect(Object.keys(doc.paths)).toContain(p);
    for (const [p, ops] of Object.entries<Record<string, { requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, unknown> }>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses).some((code) => code.startsWith("2")), `${method} ${p}`).toBe(true);
        if (method === "post" && !bodyless.has(p)) expect(op.requestBody?.content["application/json"]?.schema, `${method} ${p}`).toBeDefined();
      }
    }
    const schemas = doc.components.schemas;
    for (const s of ["GenerateRequest", "TranslateRequest", "InterpolateRequest", "CreateDatasetRequest", "CreateFineTuneRequest"]) expect(schemas[s].example, s).toBeDefined();
    expect(schemas.Error).toBeDefined();
  });
});
