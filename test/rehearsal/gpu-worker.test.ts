// Deploy rehearsal, data plane: the GPU task's command (the image's CMD) run from the image's file layout
// (the Dockerfile's COPY set: package.json, packages/core, packages/functions, and the installed
// node_modules) with exactly the task definition's environment and secrets. S3 goes through the
// IAM-deciding front of the embedded store and SQS to a fake at the queue URL's origin, both deciding every
// call against the task role. Changed: PORT (a free one instead of 8080) and the S3 endpoint; added: the
// role's session credentials, as ECS provides them.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerfileParser } from "dockerfile-ast";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from "@ganserve/core/storage/index";
import { gpuTask, MOCK_REGION, ROOT, rolePolicies, runSstConfigUnderMocks, type ContainerRuntime, type MockRun } from "../../infra/mock-harness.ts";
import { startFakeSqs } from "./aws-fakes.ts";
import { RoleGate } from "./iam.ts";
import { startS3Front, type S3Front } from "./s3-proxy.ts";

const STORE_HOST = "127.0.0.2";
/** Grants whose calls need a prediction to run (a seeded model and a created prediction): not driven yet. */
const NOT_DRIVEN: [RegExp, string][] = [
  [/^s3:GetObject on .*\/(models|predictions|predictions-data|predictions-state)\/\*$/, "running a prediction"],
  [/^s3:PutObject on .*\/(predictions|predictions-data|predictions-state)\/\*$/, "running a prediction"],
  [/^s3:DeleteObject on .*\/predictions-data\/\*$/, "an attempt cut short"],
  [/^sqs:(DeleteMessage|ChangeMessageVisibility) /, "finishing or extending a received prediction"],
];

let run: MockRun;
let task: ContainerRuntime;
let gate: RoleGate;
let store: EmbeddedS3;
let front: S3Front;
let sqs: Awaited<ReturnType<typeof startFakeSqs>>;
let app: string;
let worker: ChildProcess;
let port: number;
const logs: string[] = [];

/** The image's /app: the final stage's COPY sources, with node_modules linking the workspace packages inside it. */
function imageLayout(): string {
  const df = DockerfileParser.parse(fs.readFileSync(path.join(ROOT, "containers/inference.Dockerfile"), "utf8"));
  const final = df.getInstructions().filter((i) => i.getRange().start.line >= (df.getFROMs().at(-1)?.getRange().start.line ?? 0));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-image-"));
  for (const copy of final.filter((i) => i.getKeyword() === "COPY")) {
    if (copy.getTextContent().includes("--from=")) continue; // node and node_modules come from the build stages
    const [src, dest] = copy.getArguments().map((a) => a.getValue());
    fs.cpSync(path.join(ROOT, src), path.join(dir, dest === "./" ? path.basename(src) : dest), { recursive: true });
  }
  const modules = path.join(dir, "node_modules");
  fs.mkdirSync(path.join(modules, "@ganserve"), { recursive: true });
  for (const name of fs.readdirSync(path.join(ROOT, "node_modules"))) {
    if (name !== "@ganserve") fs.symlinkSync(path.join(ROOT, "node_modules", name), path.join(modules, name));
  }
  for (const pkg of ["core", "functions"]) fs.symlinkSync(path.join(dir, "packages", pkg), path.join(modules, "@ganserve", pkg));
  return dir;
}

function nonLoopbackAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  throw new Error("this machine has no non-loopback IPv4 address to probe from");
}

beforeAll(async () => {
  gate = new RoleGate("pending", [{ Effect: "Allow", Action: ["none:None"], Resource: ["*"] }]);
  // The queue URLs must point at the fake before the graph hands them out: start it first, gate it later.
  const gateProxy = { decide: (...a: Parameters<RoleGate["decide"]>) => gate.decide(...a) } as unknown as RoleGate;
  sqs = await startFakeSqs(gateProxy, { visibilitySeconds: 300 });
  run = await runSstConfigUnderMocks({ stage: "rehearsal", sqsOrigin: sqs.endpoint, env: { SST_SECRET_ApiKeys: "k", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  task = gpuTask(run);
  gate = new RoleGate(task.role, rolePolicies(run).get(task.role) ?? []);
  const bucket = String(JSON.parse(task.env.SST_RESOURCE_Storage).name);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-rehearsal-"));
  store = await startEmbeddedS3({ directory: path.join(dataDir, "s3"), bucket, host: STORE_HOST });
  front = await startS3Front({ upstream: store.endpoint, bucket, gate });
  app = imageLayout();
  port = 20000 + Math.floor(Math.random() * 20000);
  const cmd = JSON.parse(/^CMD (\[.*\])\s*$/m.exec(fs.readFileSync(path.join(ROOT, "containers/inference.Dockerfile"), "utf8"))?.[1] ?? "[]") as string[];
  worker = spawn(process.execPath, cmd.slice(1), {
    cwd: app,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...task.env,
      PORT: String(port),
      AWS_REGION: MOCK_REGION,
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: front.endpoint,
      GANSERVE_DATA_DIR: path.join(dataDir, "data"),
      PATH: process.env.PATH ?? "",
    },
  });
  worker.stdout?.on("data", (c) => logs.push(String(c)));
  worker.stderr?.on("data", (c) => logs.push(String(c)));
  const closed = new Promise((r) => worker.once("close", r));
  // Up when /health answers on the task's address, as the container's health check would find it.
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
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`the worker never answered /health: ${logs.join("")}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}, 240_000);

afterAll(async () => {
  worker?.kill("SIGTERM");
  await new Promise((r) => (worker?.exitCode === null ? worker.once("exit", r) : r(undefined)));
  await sqs?.close();
  await front?.close();
  await store?.close();
  await run?.close();
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

describe("GPU prediction worker as ECS starts it", () => {
  test("the task env selects CUDA first and binds every interface", () => {
    expect(task.env.GANSERVE_ORT_PROVIDERS.split(",")[0]).toBe("cuda");
    expect(task.env.GANSERVE_HOST).toBe("0.0.0.0");
    expect(task.env.GANSERVE_LAUNCHER).toBe("none");
  });

  test("/health answers on the task's own (non-loopback) address", async () => {
    const res = await fetch(`http://${nonLoopbackAddress()}:${port}/health`);
    expect(res.status).toBe(200);
  });

  test("/ready: storage reachable through the task role and the worker pulling from the queue", async () => {
    const deadline = Date.now() + 60_000;
    let body = "";
    for (;;) {
      const res = await fetch(`http://${nonLoopbackAddress()}:${port}/ready`);
      body = await res.text();
      if (res.status === 200 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(JSON.parse(body)).toMatchObject({ status: "ready" });
    expect(sqs.accepted.some((c) => c.operation === "ReceiveMessage")).toBe(true);
  });

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
