// The Lambda entry point's event routes: `handle` buffers whole responses (and API Gateway HTTP APIs buffer
// too), so a held event stream would reach nobody until the function timed out. packages/functions/src/lambda.ts
// answers fine-tune events as a snapshot with a retry delay instead. The handler runs in a process of its own
// (test/rehearsal/lambda-host.mjs, Lambda's runtime stand-in) with local settings; the SST-bundled function
// with the deployment's env is rehearsed in test/rehearsal/lambda.test.ts.
import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { JobStore, newJobRecord } from "@ganserve/core/jobs/store";
import { newPredictionId, newPredictionRecord, PredictionStore } from "@ganserve/core/predictions/store";
import { EMBEDDED_CREDENTIALS, type Storage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../packages/core/test/helpers/embedded-store.ts";

const KEY = "gk_lambda_events_0123456789";
const ROOT = path.resolve(import.meta.dirname, "..");
let store: EmbeddedStore;
let storage: Storage;
let host: ChildProcess;

beforeAll(async () => {
  store = await startEmbeddedStore({ name: "lambda-events", bucket: "events", subdir: "s3" });
  storage = store.storage;
  host = fork(path.join(ROOT, "test/rehearsal/lambda-host.mjs"), [pathToFileURL(path.join(ROOT, "packages/functions/src/lambda.ts")).href, "handler"], {
    cwd: ROOT,
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: {
      PATH: process.env.PATH ?? "",
      GANSERVE_DATA_DIR: path.join(store.dir, "data"),
      GANSERVE_API_KEYS: `t1:${KEY}`,
      GANSERVE_S3_ENDPOINT: store.endpoint,
      GANSERVE_S3_BUCKET: "events",
      GANSERVE_EMBEDDED_S3: "false",
      GANSERVE_LAUNCHER: "none",
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
    },
  });
  const out: string[] = [];
  host.stderr?.on("data", (c) => out.push(String(c)));
  const init = await new Promise<{ init: string; error?: string }>((resolve) => {
    host.once("message", (m) => resolve(m as { init: string }));
    host.once("exit", (code) => resolve({ init: "failed", error: `exited ${code}: ${out.join("")}` }));
  });
  if (init.init !== "ok") throw new Error(`lambda init failed: ${init.error}`);
}, 120_000);

afterAll(async () => {
  host?.kill();
  await store?.close();
});

async function invoke(rawPath: string, headers: Record<string, string> = {}) {
  const event = {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: "",
    headers: { host: "api.test", authorization: `Bearer ${KEY}`, ...headers },
    requestContext: { http: { method: "GET", path: rawPath, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "t" }, requestId: "r1", routeKey: "$default", stage: "$default", timeEpoch: Date.now() },
    isBase64Encoded: false,
  };
  // The function's own timeout (29 s): a held stream would end here with no reply.
  return new Promise<{ statusCode: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the handler held the request to the function's timeout")), 29_000);
    host.once("message", (m: { result?: { statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded?: boolean }; error?: string }) => {
      clearTimeout(timer);
      if (!m.result) return reject(new Error(m.error));
      resolve({ ...m.result, body: m.result.isBase64Encoded ? Buffer.from(m.result.body, "base64").toString("utf8") : m.result.body });
    });
    host.send({ id: "r1", event, timeoutMs: 29_000 });
  });
}

test("fine-tune events of a running job answer at once with the events so far and a retry delay", async () => {
  const jobs = new JobStore(storage);
  const id = "ft_lambdaEvents000001";
  const record = newJobRecord({ id, tenant: "t1", family: "stylegan2", baseVersion: "v1", params: { base_model: "m", dataset: "ds_x", name: "out", steps: 10 } as never });
  await jobs.save({ ...record, status: "running" });
  await jobs.putEvent(id, { seq: 1, type: "status", status: "running", time: record.created_at, step: 0 });
  await jobs.putEvent(id, { seq: 2, type: "progress", time: record.created_at, step: 3, losses: { g: 1 } });

  const first = await invoke(`/v1/fine-tunes/${id}/events`);
  expect(first.statusCode, first.body).toBe(200);
  expect(first.headers["content-type"]).toContain("text/event-stream");
  expect(first.headers["ganserve-events"]).toBe("snapshot");
  expect(first.body.match(/^id: (\d+)$/gm)).toEqual(["id: 1", "id: 2"]);
  expect(first.body).toMatch(/^retry: \d+$/m);

  // Asking again with Last-Event-ID gets only what came since; a done event ends it without a retry.
  await jobs.putEvent(id, { seq: 3, type: "done", status: "succeeded", time: record.created_at, step: 10 });
  const next = await invoke(`/v1/fine-tunes/${id}/events`, { "last-event-id": "2" });
  expect(next.body.match(/^id: (\d+)$/gm)).toEqual(["id: 3"]);
  expect(next.body).not.toMatch(/^retry:/m);
});

test("prediction events answer at once with the prediction as it stands, then done once it ended", async () => {
  const predictions = new PredictionStore(storage);
  const id = newPredictionId();
  const record = newPredictionRecord({ id, tenant: "t1", family: "stylegan2", model: "m", version: "v1", task: "generate", input: { seeds: [1] } } as never, Date.now(), 60_000);
  await predictions.save({ ...record, status: "processing" });

  const first = await invoke(`/v1/predictions/${id}/events`);
  expect(first.statusCode, first.body).toBe(200);
  expect(first.headers["content-type"]).toContain("text/event-stream");
  expect(first.headers["ganserve-events"]).toBe("snapshot");
  expect(first.body).toMatch(/^event: status$/m);
  expect(first.body).toContain('"status":"processing"');
  expect(first.body).toMatch(/^retry: \d+$/m);

  await predictions.save({ ...record, status: "canceled", completed_at: new Date().toISOString() });
  const next = await invoke(`/v1/predictions/${id}/events`);
  expect(next.body).toMatch(/^event: done$/m);
  expect(next.body).toContain('"status":"canceled"');
  expect(next.body).not.toMatch(/^retry:/m);
});
