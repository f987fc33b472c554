/**
 * Fine-tune faults (`npm run test:soak`): the stack runs against an S3 server this test owns. During one
 * fine-tune the storage is stopped for 5 s, then the API process is restarted (SIGTERM, start again on the
 * same data dir and storage). The job must still finish (the new API re-adopts it and the worker resumes
 * from its checkpoint), and the published model must be readable and serve.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from "@ganserve/core/storage/index";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import sharp from "sharp";
import { freePort, repoRoot, startStack, tempDataDir, type Stack } from "../helpers/stack.ts";
import { official } from "../fixtures/index.ts";
import { postUpload } from "../helpers/upload.ts";

const SG = official("stylegan2/z32_w32_res32_skip");
const KEY = "gs_ft_faults_key_0123456789";
const H = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

let s3: EmbeddedS3 | undefined;
let stack: Stack | undefined;
let dataDir: string;
let s3Port: number;
let env: Record<string, string>;

const startS3 = async () => (s3 = await startEmbeddedS3({ directory: path.join(dataDir, "external-s3"), bucket: "ganserve", port: s3Port }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dataDir = tempDataDir();
  s3Port = await freePort();
  await startS3();
  env = {
    GANSERVE_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    GANSERVE_EMBEDDED_S3: "false",
    AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
    GANSERVE_API_KEYS: KEY,
  };
  // Async spawn: the S3 server lives in this process and must answer while the CLI runs.
  const cli = spawn(process.execPath, [path.join(repoRoot, "packages/functions/bin/ganserve.mjs"), "import", path.join(SG, "network-snapshot.pkl"), "--name", "sg-base"], {
    cwd: repoRoot,
    env: { ...process.env, GANSERVE_DATA_DIR: dataDir, ...env },
    stdio: "ignore",
  });
  expect(await new Promise((r) => cli.on("exit", r))).toBe(0);
  stack = await startStack({ dataDir, s3Port, env });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
  await s3?.close();
});

const job = async (id: string) => (await (await fetch(`${stack!.url}/v1/fine-tunes/${id}`, { headers: H })).json()) as { status: string; step: number; attempts: number; result?: { model: string; version: string } };

it("a fine-tune survives 5 s without storage and an API restart, and its result serves", async () => {
  const files = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => ({ path: `images/i${i}.png`, bytes: new Uint8Array(await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 30 * i, g: 120, b: 200 - 20 * i } } }).png().toBuffer()) })),
  );
  const ds = await (await fetch(`${stack!.url}/v1/datasets`, { method: "POST", headers: H, body: JSON.stringify({ layout: "stylegan2" }) })).json();
  expect((await postUpload(ds.upload, await buildDatasetZip(files))).ok).toBe(true);
  expect((await fetch(`${stack!.url}/v1/datasets/${ds.id}/finalize`, { method: "POST", headers: H })).status).toBe(200);
  const created = await fetch(`${stack!.url}/v1/fine-tunes`, {
    method: "POST",
    headers: H,
    body: JSON.stringify({ base_model: "sg-base", dataset: ds.id, name: "sg-survivor", steps: 30, batch_size: 2, checkpoint_every: 3, sample_every: 30 }),
  });
  expect(created.status).toBe(201);
  const { id } = await created.json();

  const waitFor = async (cond: (j: Awaited<ReturnType<typeof job>>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const j = await job(id);
      if (cond(j)) return j;
      if (Date.now() > deadline) throw new Error(`timed out; job is ${JSON.stringify(j)}`);
      await sleep(500);
    }
  };
  await waitFor((j) => j.step >= 3, 180_000);

  // Storage gone for 5 s under a running worker.
  await s3!.close();
  s3 = undefined;
  const health = await fetch(`${stack!.url}/health`);
  await sleep(5000);
  await startS3();
  expect(health.status).toBe(200);

  // Then the API restarts mid-training: the new process must re-adopt the job.
  const mid = await waitFor((j) => j.status === "running" || ["succeeded", "failed", "canceled"].includes(j.status), 60_000);
  await stack!.stop();
  stack = await startStack({ dataDir, s3Port, env });

  const done = await waitFor((j) => ["succeeded", "failed", "canceled"].includes(j.status), 480_000);
  console.log(JSON.stringify({ test: "faults-finetune", storage_down_s: 5, api_restarts: 1, step_at_restart: mid.step, status: done.status, attempts: done.attempts }));
  expect(done.status).toBe("succeeded");
  expect(done.result?.model).toBe("sg-survivor");
  const version = await fetch(`${stack!.url}/v1/models/sg-survivor/versions/${done.result!.version}`, { headers: H });
  expect(version.status).toBe(200);
  const gen = await fetch(`${stack!.url}/v1/generate`, { method: "POST", headers: H, body: JSON.stringify({ model: "sg-survivor", seeds: [0, 1] }) });
  expect(gen.status).toBe(200);
}, 600_000);
