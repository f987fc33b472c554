// Deploy rehearsal, data plane: the GPU task's command (the image's CMD) run from the image's file layout
// (the Dockerfile's COPY set: package.json, packages/core, packages/functions, and the installed
// node_modules) with exactly the task definition's environment and secrets. S3 goes through the
// IAM-deciding front of the embedded store and SQS to a fake at the queue URL's origin, both deciding every
// call against the task role. Changed: PORT (a free one instead of 8080) and the S3 endpoint; added: the
// role's session credentials, as ECS provides them.
// This machine has no GPU (and no CUDA add-on): with the exact env the task must stay not ready and take
// nothing from the queue; with the GPU requirement off (GANSERVE_ORT_PROVIDERS=cpu) the same task is ready.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EMBEDDED_CREDENTIALS } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { gpuTask, MOCK_REGION, ROOT, rolePolicies, runSstConfigUnderMocks, type ContainerRuntime, type MockRun } from "../../infra/mock-harness.ts";
import { startFakeSqs } from "./aws-fakes.ts";
import { RoleGate } from "./iam.ts";
import { imageCmd, imageLayout, nonLoopbackAddress } from "./image.ts";
import { startS3Front, type S3Front } from "./s3-proxy.ts";

const STORE_HOST = "127.0.0.2";
/** Grants whose calls need a prediction to run (a seeded model and a created prediction): not driven yet. */
const NOT_DRIVEN: [RegExp, string][] = [
  [/^s3:GetObject on .*\/(models|predictions|predictions-data|predictions-state)\/\*$/, "running a prediction"],
  [/^s3:PutObject on .*\/(predictions|predictions-data|predictions-state)\/\*$/, "running a prediction"],
  [/^s3:PutObject on .*\/models\/\*\/\*\/compiled\/\*\.onnx$/, "the first start of a model version copying its optimised graphs"],
  [/^s3:DeleteObject on .*\/predictions-data\/\*$/, "an attempt cut short"],
  [/^sqs:(DeleteMessage|ChangeMessageVisibility) /, "finishing or extending a received prediction"],
];

let run: MockRun;
let task: ContainerRuntime;
let gate: RoleGate;
let store: EmbeddedStore;
let front: S3Front;
let sqs: Awaited<ReturnType<typeof startFakeSqs>>;
let app: string;

const DOCKERFILE = "containers/inference.Dockerfile";
/** Without onnxruntime-node's CUDA add-on (npm install skips it) a configured cuda provider cannot load here. */
const CUDA_ADD_ON = path.join(ROOT, "node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so");

interface Booted {
  port: number;
  logs: string[];
  stop(): Promise<void>;
}

/** Starts the image's CMD as ECS would, with the task env plus `changes`; resolves once /health answers. */
async function boot(changes: Record<string, string> = {}): Promise<Booted> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const logs: string[] = [];
  const worker: ChildProcess = spawn(process.execPath, imageCmd(DOCKERFILE).slice(1), {
    cwd: app,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...task.env,
      PORT: String(port),
      AWS_REGION: MOCK_REGION,
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: front.endpoint,
      GANSERVE_DATA_DIR: path.join(store.dir, "data"),
      PATH: process.env.PATH ?? "",
      ...changes,
    },
  });
  worker.stdout?.on("data", (c) => logs.push(String(c)));
  worker.stderr?.on("data", (c) => logs.push(String(c)));
  const closed = new Promise((r) => worker.once("close", r));
  const stop = async () => {
    if (worker.exitCode === null) worker.kill("SIGTERM");
    await closed;
  };
  // Up when /health answers, as the container's health check would find it.
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (worker.exitCode !== null) {
      await closed;
      throw new Error(`the worker exited ${worker.exitCode}: ${logs.join("")}`);
    }
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { port, logs, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the worker never answered /health: ${logs.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

interface ReadyBody {
  status: string;
  checks: Record<string, { ok: boolean; providers?: string; error?: string }>;
}

/** /ready from the task's own address until it answers `want` (or a minute passes): the last answer. */
async function ready(w: Booted, want: number): Promise<{ status: number; body: ReadyBody }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`http://${nonLoopbackAddress()}:${w.port}/ready`);
    const body = (await res.json()) as ReadyBody;
    if (res.status === want || Date.now() > deadline) return { status: res.status, body };
    await new Promise((r) => setTimeout(r, 500));
  }
}

const receives = () => sqs.accepted.filter((c) => c.operation === "ReceiveMessage").length;

beforeAll(async () => {
  gate = new RoleGate("pending", [{ Effect: "Allow", Action: ["none:None"], Resource: ["*"] }]);
  // The queue URLs must point at the fake before the graph hands them out: start it first, gate it later.
  const gateProxy = { decide: (...a: Parameters<RoleGate["decide"]>) => gate.decide(...a) } as unknown as RoleGate;
  sqs = await startFakeSqs(gateProxy, { visibilitySeconds: 300 });
  run = await runSstConfigUnderMocks({ stage: "rehearsal", sqsOrigin: sqs.endpoint, env: { SST_SECRET_ApiKeys: "k", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  task = gpuTask(run);
  gate = new RoleGate(task.role, rolePolicies(run).get(task.role) ?? []);
  const bucket = String(JSON.parse(task.env.SST_RESOURCE_Storage).name);
  store = await startEmbeddedStore({ name: "rehearsal", bucket, subdir: "s3", host: STORE_HOST });
  front = await startS3Front({ upstream: store.endpoint, bucket, gate });
  app = imageLayout(DOCKERFILE);
}, 240_000);

afterAll(async () => {
  await sqs?.close();
  await front?.close();
  await store?.close();
  await run?.close();
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

describe("GPU prediction worker as ECS starts it", () => {
  test("defect 8: the task asks for a GPU and its env selects ONNX Runtime's CUDA provider first", () => {
    expect(task.definition.resourceRequirements).toContainEqual({ type: "GPU", value: "1" });
    expect(task.env.GANSERVE_ORT_PROVIDERS?.split(",")[0]).toBe("cuda");
  });

  test("defect 5: the GPU task runs no fine-tune launcher (GANSERVE_LAUNCHER=none), so it never re-adopts jobs", () => {
    expect(task.env.GANSERVE_LAUNCHER).toBe("none");
  });

  test("defect 4: the task env binds every interface, not loopback", () => {
    expect(task.env.GANSERVE_HOST ?? task.env.HOST).toBe("0.0.0.0");
  });

  test.runIf(!fs.existsSync(CUDA_ADD_ON))("without a GPU provider the exact task env is not ready, names the check, and takes no prediction", async () => {
    const w = await boot();
    try {
      // /health answers on the task's own (non-loopback) address, as the ALB or ECS would dial it.
      expect((await fetch(`http://${nonLoopbackAddress()}:${w.port}/health`)).status).toBe(200);
      const { status, body } = await ready(w, 503);
      expect(status, w.logs.join("")).toBe(503);
      expect(body.status).toBe("not_ready");
      expect(body.checks.gpu_provider).toMatchObject({ ok: false, providers: task.env.GANSERVE_ORT_PROVIDERS });
      expect(body.checks.gpu_provider.error).toMatch(/cuda/i);
      expect(body.checks.storage).toEqual({ ok: true });
      expect(receives()).toBe(0);
    } finally {
      await w.stop();
    }
  }, 240_000);

  test("with the GPU requirement off (GANSERVE_ORT_PROVIDERS=cpu) the same task is ready and pulls from the queue", async () => {
    const w = await boot({ GANSERVE_ORT_PROVIDERS: "cpu" });
    try {
      expect((await fetch(`http://${nonLoopbackAddress()}:${w.port}/health`)).status).toBe(200);
      const { status, body } = await ready(w, 200);
      expect(status, w.logs.join("")).toBe(200);
      expect(body).toMatchObject({ status: "ready", checks: { storage: { ok: true }, worker: { ok: true } } });
      expect(body.checks.gpu_provider).toBeUndefined();
      expect(receives()).toBeGreaterThan(0);
    } finally {
      await w.stop();
    }
  }, 240_000);

  test("every call the worker made was allowed by the task role", () => {
    expect(gate.decisions.length).toBeGreaterThan(0);
    expect(gate.denied()).toEqual([]);
  });

  test("every grant of the task role was used, except those only a running prediction needs", async () => {
    const unused = await gate.unused();
    expect(unused.filter((g) => !NOT_DRIVEN.some(([p]) => p.test(g)))).toEqual([]);
    for (const [pattern, why] of NOT_DRIVEN) expect(unused.some((g) => pattern.test(g)), `${pattern} (${why}) is used now: drop it`).toBe(true);
  });
});
