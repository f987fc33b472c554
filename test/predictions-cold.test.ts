/**
 * The local form of a cold start and of an outage, on the real stack: the in-process worker is held back
 * (GANSERVE_WORKER_START_DELAY_MS, a stand-in for a GPU instance still booting), so /v1/generate answers
 * 202 with the prediction instead of a 503 or a timeout, and the prediction succeeds once the worker runs.
 * Then the store this test owns is stopped: creating a prediction answers 503 storage_unavailable with
 * Retry-After, and works again once the store is back.
 */
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from "@ganserve/core/storage/index";
import { freePort, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

const KEY = "gs_predictions_cold_0123456789";
let stack: Stack;
let s3: EmbeddedS3 | undefined;
let s3Dir: string;
let s3Port: number;

const startS3 = async () => (s3 = await startEmbeddedS3({ directory: s3Dir, bucket: "ganserve", port: s3Port }));

beforeAll(async () => {
  const dataDir = tempDataDir();
  s3Dir = path.join(dataDir, "external-s3");
  s3Port = await freePort();
  await startS3();
  stack = await startStack({
    dataDir,
    s3Port,
    env: {
      GANSERVE_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
      GANSERVE_EMBEDDED_S3: "false",
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      GANSERVE_DEMO_MODELS: "true",
      GANSERVE_API_KEYS: KEY,
      // Long enough that the first request surely comes before the worker; the test then waits for it.
      GANSERVE_WORKER_START_DELAY_MS: "20000",
    },
  });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await s3?.close();
});

const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

it("a held-back worker: /v1/generate answers 202 with the prediction, which succeeds once the worker runs", async () => {
  const ready = await fetch(`${stack.url}/ready`);
  expect(ready.status).toBe(503);
  expect((await ready.json()).checks.worker.ok).toBe(false);

  const res = await fetch(`${stack.url}/v1/generate`, {
    method: "POST",
    headers: { ...headers, prefer: "wait=1" },
    body: JSON.stringify({ model: "fashion-stylegan2", seeds: [4], class_idx: 2 }),
  });
  expect(res.status).toBe(202);
  const p = await res.json();
  expect(p.status).toBe("starting");
  expect(p.task).toBe("generate");
  expect(res.headers.get("location")).toBe(p.urls.get);

  let done = p;
  while (!["succeeded", "failed", "canceled"].includes(done.status)) {
    await new Promise((r) => setTimeout(r, 250));
    done = await (await fetch(p.urls.get, { headers })).json();
  }
  expect(done.status).toBe("succeeded");
  expect(done.output).toHaveLength(1);
  expect(done.output[0]).toMatchObject({ seed: 4, content_type: "image/png" });
  expect(done.metrics.queue_time).toBeGreaterThan(0);
  expect((await fetch(`${stack.url}/ready`)).status).toBe(200);
  // Warm now: the same route answers as it always did.
  const warm = await fetch(`${stack.url}/v1/generate`, { method: "POST", headers, body: JSON.stringify({ model: "fashion-stylegan2", seeds: [4], class_idx: 2 }) });
  expect(warm.status).toBe(200);
  expect((await warm.json()).images[0].data).toBe(done.output[0].data);
});

it("storage unreachable: creating a prediction answers 503 storage_unavailable with Retry-After, then recovers", async () => {
  await s3?.close();
  s3 = undefined;
  try {
    const res = await fetch(`${stack.url}/v1/predictions`, {
      method: "POST",
      headers: { ...headers, prefer: "wait=5" },
      body: JSON.stringify({ model: "fashion-stylegan2", input: { seeds: [1], class_idx: 0 } }),
      signal: AbortSignal.timeout(60_000),
    });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await res.json()).error.code).toBe("storage_unavailable");
  } finally {
    await startS3();
  }
  const again = await fetch(`${stack.url}/v1/predictions`, {
    method: "POST",
    headers: { ...headers, prefer: "wait=20" },
    body: JSON.stringify({ model: "fashion-stylegan2", input: { seeds: [1], class_idx: 0 } }),
  });
  expect(again.status).toBe(201);
  expect((await again.json()).status).toBe("succeeded");
});
