// Deploy rehearsal, control plane: the API Lambda built as SST's CLI builds it, run from a folder holding
// only what SST ships, with exactly the function's environment (links only in resource.enc), its S3 calls
// decided against its role by an IAM-enforcing front of the embedded store and its Batch calls by a
// recording fake. The only additions to the environment are what Lambda itself provides (region, function
// name, the role's session credentials) and the endpoints that send S3 and Batch to those stand-ins.
import { type ChildProcess, fork } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EMBEDDED_CREDENTIALS } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { apiLambda, MOCK_REGION, rolePolicies, runSstConfigUnderMocks, type LambdaRuntime, type MockRun } from "../../infra/mock-harness.ts";
import { official } from "../fixtures/index.ts";
import { runCli } from "../helpers/cli.ts";
import { startFakeBatch, startFakeSqs, type FakeService } from "./aws-fakes.ts";
import { RoleGate } from "./iam.ts";
import { buildLambda, type BuiltLambda } from "./lambda-bundle.ts";
import { startS3Front, type S3Front } from "./s3-proxy.ts";

// The store listens on a loopback address it does not treat as its own name, so it skips its Host check
// and verifies the SigV4 signatures the callers made for the front's address.
const STORE_HOST = "127.0.0.2";
const KEY = "gk_rehearsal_0123456789abcdef";
const SECRET_KEY = "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=";

/** Grants whose calls come from routes the rehearsal does not drive yet, each with the route that needs it. */
const NOT_DRIVEN: [RegExp, string][] = [
  [/^s3:(Get|Put)Object on .*\/jobs\/\*$/, "POST /v1/fine-tunes on a finalized dataset"],
  [/^s3:PutObject on .*\/models\/\*$/, "a fine-tune's model name claim (POST /v1/fine-tunes)"],
  [/^batch:(SubmitJob|TagResource) /, "POST /v1/fine-tunes on a finalized dataset"],
  [/^batch:(DescribeJobs|TerminateJob) /, "reconciliation and cancel of a submitted fine-tune (driven in fine-tune-reconcile.test.ts)"],
  [/^s3:GetObject on .*\/outputs\/\*$/, "reads of generated outputs"],
  [/^s3:GetObject on .*\/auth\/keys\/\*$/, "a key stored by `ganserve keys create` (none stored here)"],
  [/^s3:DeleteObject on .*\/datasets\/\*$/, "finalize of an uploaded dataset zip"],
  [/^s3:PutObject on .*\/predictions-data\/\*$/, "a prediction whose full input is stored apart (translate's files)"],
  [/^s3:GetObject on .*\/predictions-data\/\*$/, "reading a finished prediction's output (a worker must run it)"],
];

let run: MockRun;
let fn: LambdaRuntime;
let gate: RoleGate;
let store: EmbeddedStore;
let front: S3Front;
let batch: FakeService;
let sqs: Awaited<ReturnType<typeof startFakeSqs>>;
let built: BuiltLambda;
let host: ChildProcess;
let init: { init: string; ms?: number; error?: string };
const output: string[] = [];

/** Imports the built handler in a process of its own, as Lambda's runtime would, with `env` (plus what Lambda adds). */
async function startHost(env: Record<string, string>): Promise<{ host: ChildProcess; init: typeof init }> {
  const child = fork(path.join(import.meta.dirname, "lambda-host.mjs"), [pathToFileURL(built.entry).href, built.exportName], {
    cwd: built.dir,
    execArgv: [],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: {
      AWS_REGION: MOCK_REGION,
      AWS_LAMBDA_FUNCTION_NAME: "ganserve-rehearsal-Api",
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      // The function's /tmp: GANSERVE_DATA_DIR (/tmp/ganserve) must never be written, so point TMPDIR away too.
      TMPDIR: store.dir,
      PATH: process.env.PATH ?? "",
      ...env,
    },
  });
  child.stdout?.on("data", (c) => output.push(String(c)));
  child.stderr?.on("data", (c) => output.push(String(c)));
  const result = await new Promise<typeof init>((resolve) => {
    child.once("message", (m) => resolve(m as typeof init));
    child.once("exit", (code) => resolve({ init: "failed", error: `exited ${code}: ${output.join("")}` }));
  });
  return { host: child, init: result };
}

beforeAll(async () => {
  // The queue URLs must name the SQS fake before the graph hands them out: start it first, gate it later.
  const gateProxy = { decide: (...a: Parameters<RoleGate["decide"]>) => gate.decide(...a) } as unknown as RoleGate;
  sqs = await startFakeSqs(gateProxy, { visibilitySeconds: 300 });
  run = await runSstConfigUnderMocks({ stage: "rehearsal", sqsOrigin: sqs.endpoint, env: { SST_SECRET_ApiKeys: `rehearsal:${KEY}`, SST_SECRET_SecretKey: SECRET_KEY } });
  fn = apiLambda(run);
  const statements = rolePolicies(run).get(fn.role) ?? [];
  gate = new RoleGate(fn.role, statements);
  const bucket = String(fn.links.Storage.name);
  store = await startEmbeddedStore({ name: "rehearsal", bucket, subdir: "s3", host: STORE_HOST });
  front = await startS3Front({ upstream: store.endpoint, bucket, gate });
  // A model, published as a deployer would (docs/deploy.md "Seed models"): the CLI straight to the store.
  const cli = await runCli(["import", path.join(official("stylegan2/z32_w32_res32_skip"), "network-snapshot.pkl"), "--name", "sg-base"], {
    endpoint: store.endpoint,
    bucket,
    dataDir: path.join(store.dir, "cli"),
  });
  if (cli.code !== 0) throw new Error(`seeding a model failed: ${cli.out}`);
  batch = await startFakeBatch(gate);
  built = await buildLambda(fn);
  ({ host, init } = await startHost({
    ...fn.env,
    // What the Lambda runtime adds, and the two redirections to the stand-ins.
    AWS_ENDPOINT_URL_S3: front.endpoint,
    AWS_ENDPOINT_URL_BATCH: batch.endpoint,
  }));
}, 240_000);

afterAll(async () => {
  host?.kill();
  await batch?.close();
  await sqs?.close();
  await front?.close();
  await store?.close();
  built?.close();
  await run?.close();
});

let nextId = 0;
interface Result {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}
type InvokeOptions = { body?: unknown; key?: boolean; headers?: Record<string, string> };
const invoke = (method: string, rawPath: string, opts: InvokeOptions = {}) => invokeOn(host, init, method, rawPath, opts);

async function invokeOn(host: ChildProcess, init: { init: string; error?: string }, method: string, rawPath: string, opts: InvokeOptions = {}): Promise<Result> {
  const id = `req-${++nextId}`;
  const headers: Record<string, string> = { host: "api.rehearsal.test", "x-forwarded-proto": "https", "user-agent": "rehearsal" };
  if (opts.key !== false) headers.authorization = `Bearer ${KEY}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  Object.assign(headers, opts.headers);
  const [p, q = ""] = rawPath.split("?");
  const event = {
    version: "2.0",
    routeKey: "$default",
    rawPath: p,
    rawQueryString: q,
    headers,
    requestContext: {
      accountId: "123456789012",
      apiId: "rehearsal",
      domainName: "api.rehearsal.test",
      http: { method, path: p, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "rehearsal" },
      requestId: id,
      routeKey: "$default",
      stage: "$default",
      timeEpoch: Date.now(),
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    isBase64Encoded: false,
  };
  if (host.exitCode !== null || !host.connected) throw new Error(`the function is not running (init: ${init.error ?? init.init})`);
  const reply = await new Promise<{ result?: Result; error?: string }>((resolve) => {
    // Lambda ends an invocation at the function's timeout.
    const timer = setTimeout(() => done({ error: `timed out after ${fn.timeoutSeconds} s` }), fn.timeoutSeconds * 1000);
    const onMessage = (m: { id?: string; result?: Result; error?: string }) => {
      if (m.id === id) done(m);
    };
    const onExit = (code: number | null) => done({ error: `the function exited (${code})` });
    const done = (m: { result?: Result; error?: string }) => {
      clearTimeout(timer);
      host.off("message", onMessage);
      host.off("exit", onExit);
      resolve(m);
    };
    host.on("message", onMessage);
    host.once("exit", onExit);
    host.send({ id, event, timeoutMs: fn.timeoutSeconds * 1000 });
  });
  if (reply.error || !reply.result) throw new Error(`handler threw: ${reply.error}`);
  const r = reply.result;
  return { ...r, body: (r as { isBase64Encoded?: boolean }).isBase64Encoded ? Buffer.from(r.body, "base64").toString("utf8") : r.body };
}

describe("API Lambda as SST deploys it", () => {
  test("the bundle folder holds only the bundle, resource.enc and the installed externals", () => {
    expect(fs.readdirSync(built.dir).sort()).toEqual([path.basename(built.entry), "node_modules", "resource.enc"].sort());
    // Links travel encrypted, never as env: the function's env names only the App marker and the key file.
    expect(Object.keys(fn.env).filter((k) => k.startsWith("SST_RESOURCE_"))).toEqual(["SST_RESOURCE_App"]);
    expect(fn.env.SST_KEY_FILE).toBe("resource.enc");
  });

  test("defect 1: the Lambda reads its links through SST's Resource (resource.enc): init succeeds with exactly its env", () => {
    expect(init.error ?? "").toBe("");
    expect(init.init).toBe("ok");
  });

  test("init and /ready use the linked bucket through the role (no embedded store, no HeadBucket)", async () => {
    const res = await invoke("GET", "/ready", { key: false });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).checks.storage).toEqual({ ok: true });
    const bucketArn = `arn:aws:s3:::${fn.links.Storage.name}`;
    expect(gate.decisions.length).toBeGreaterThan(0);
    for (const d of gate.decisions) expect(d.resource.startsWith(bucketArn), d.call).toBe(true);
    expect(gate.decisions.filter((d) => d.action === "s3:ListBucket" && d.context?.["s3:prefix"] === undefined)).toEqual([]);
    // GANSERVE_DATA_DIR is /tmp/ganserve in the function's env; an embedded store would have put s3/ there.
    expect(fs.existsSync(path.join(fn.env.GANSERVE_DATA_DIR, "s3", "_buckets", String(fn.links.Storage.name)))).toBe(false);
  });

  test("defect 2: the bundle resolves nothing at init that SST does not ship (/docs: swagger-ui-dist)", async () => {
    // Independent of defects 1 and 3: the same folder, the links given as env vars and S3 straight to the store.
    const links = Object.fromEntries(Object.entries(fn.links).map(([name, props]) => [`SST_RESOURCE_${name}`, JSON.stringify(props)]));
    const alone = await startHost({ ...fn.env, ...links, AWS_ENDPOINT_URL_S3: store.endpoint });
    try {
      expect(alone.init.error ?? "").toBe("");
      const res = await invokeOn(alone.host, alone.init, "GET", "/docs", { key: false });
      expect(res.statusCode).toBe(200);
      expect(res.body.toLowerCase()).toContain("swagger");
    } finally {
      alone.host.kill();
    }
  });

  test("/docs is served from the shipped swagger-ui-dist", async () => {
    const res = await invoke("GET", "/docs", { key: false });
    expect(res.statusCode).toBe(200);
    expect(res.body.toLowerCase()).toContain("swagger");
  });

  test("defect 19: a body over the function's limit is refused with 413, and the limit fits a Lambda payload", async () => {
    const limit = Number(fn.env.GANSERVE_MAX_BODY_BYTES);
    // 6 MB invocation payload; a binary body arrives base64-encoded, beside the headers.
    expect(Math.ceil(limit / 3) * 4 + 64 * 1024).toBeLessThanOrEqual(6 * 1000 * 1000);
    const res = await invoke("POST", "/v1/datasets", { body: { name: "x".repeat(limit), layout: "stylegan2" } });
    expect(res.statusCode, res.body).toBe(413);
    expect(JSON.parse(res.body).error.code).toBe("payload_too_large");
  });

  test("the key from the ApiKeys link authenticates; the model list comes from the bucket", async () => {
    expect((await invoke("GET", "/v1/models", { key: false })).statusCode).toBe(401);
    const res = await invoke("GET", "/v1/models");
    expect(res.statusCode, res.body).toBe(200);
  });

  test("dataset routes work against the bucket through the role", async () => {
    const created = await invoke("POST", "/v1/datasets", { body: { name: "rehearsal", layout: "stylegan2", size_bytes: 1000 } });
    expect(created.statusCode, created.body).toBe(201);
    const { id, upload } = JSON.parse(created.body);
    // The upload form is presigned for the linked bucket.
    expect(JSON.stringify(upload)).toContain(String(fn.links.Storage.name));
    const got = await invoke("GET", `/v1/datasets/${id}`);
    expect(got.statusCode, got.body).toBe(200);
    expect((await invoke("GET", "/v1/datasets")).statusCode).toBe(200);
    expect((await invoke("GET", "/v1/fine-tunes")).statusCode).toBe(200);
  });

  test("a prediction is recorded in the bucket and enqueued on the linked queue; it waits there (202)", async () => {
    expect((await invoke("GET", "/v1/models/sg-base")).statusCode).toBe(200);
    const created = await invoke("POST", "/v1/predictions", { body: { model: "sg-base", input: { seeds: "0-0" } }, headers: { prefer: "wait=0", "idempotency-key": "rehearsal-1" } });
    expect(created.statusCode, created.body).toBe(202);
    const { id, status } = JSON.parse(created.body);
    expect(status).toBe("starting");
    expect(sqs.accepted.filter((c) => c.operation === "SendMessage").map((c) => c.input.QueueUrl)).toEqual([fn.links.PredictionQueue.url]);
    const got = await invoke("GET", `/v1/predictions/${id}`);
    expect(got.statusCode, got.body).toBe(200);
    expect(JSON.parse(got.body).id).toBe(id);
  });

  test("every call the Lambda made was allowed by its role", () => {
    expect(gate.decisions.length).toBeGreaterThan(0);
    expect(gate.denied()).toEqual([]);
  });

  test("every grant of its role was used, except those of the routes this rehearsal does not drive yet", async () => {
    const unused = await gate.unused();
    const unexplained = unused.filter((g) => !NOT_DRIVEN.some(([pattern]) => pattern.test(g)));
    expect(unexplained).toEqual([]);
    // The list cannot go stale: each entry still names a grant nothing used.
    for (const [pattern, why] of NOT_DRIVEN) expect(unused.some((g) => pattern.test(g)), `${pattern} (${why}) is used now: drop it`).toBe(true);
  });
});
