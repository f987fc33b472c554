// Deploy rehearsal, fine-tunes: the Batch job's command (the image's CMD, from the image's file layout) with
// exactly the job definition's environment and secrets plus what SubmitJob overrides (GANSERVE_JOB_ID), its
// S3 calls decided against the job role by the IAM-deciding front of the embedded store. The job writes a
// checkpoint every step; the first attempt is SIGKILLed after its first checkpoint (a lost Spot host), the
// retry resumes from it, replaces the older checkpoints (s3:DeleteObject) and publishes the model version.
// The job env names the GPU backend (tfjs-node-gpu), which this machine lacks: with exactly that env a job
// must fail at once with that reason; the training runs change only GANSERVE_BACKEND to what is here.
// What the deployer and the API did before the job runs (a base model, a finalized dataset, the job record)
// goes straight to the store.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CreateFineTuneRequest } from "@ganserve/core/api/finetune";
import { DatasetService } from "@ganserve/core/datasets/service";
import { submitJobInput } from "@ganserve/core/jobs/launcher";
import { FineTuneService } from "@ganserve/core/jobs/service";
import { JobStore } from "@ganserve/core/jobs/store";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { datasetKeys, jobKeys } from "@ganserve/core/storage/keys";
import { EMBEDDED_CREDENTIALS, type Storage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { fineTuneJob, MOCK_REGION, ROOT, rolePolicies, runSstConfigUnderMocks, type ContainerRuntime, type MockRun } from "../../infra/mock-harness.ts";
import { official } from "../fixtures/index.ts";
import { runCli } from "../helpers/cli.ts";
import { squaresZip } from "../helpers/finetune.ts";
import { RoleGate } from "./iam.ts";
import { imageCmd, imageLayout } from "./image.ts";
import { startS3Front, type S3Front } from "./s3-proxy.ts";

const DOCKERFILE = "containers/finetune.Dockerfile";
const STORE_HOST = "127.0.0.2";
const TENANT = "rehearsal";
/** tfjs-node-gpu, which the image installs and the job env names, is not installed here (it needs CUDA). */
const GPU_BACKEND_HERE = fs.existsSync(path.join(ROOT, "node_modules/@tensorflow/tfjs-node-gpu"));
/** The one change for the training runs: the best TF.js backend this machine has instead of the GPU one. */
const ON_THIS_MACHINE = { GANSERVE_BACKEND: "auto" };
/** Grants of the job role whose calls come from jobs this file does not run, each with the job that needs it. */
const NOT_DRIVEN: [RegExp, string][] = [];
/** Checkpoints at steps 1, 2 and 3 (none at the last step: the model version is published instead). */
const STEPS = 4;

let run: MockRun;
let job: ContainerRuntime;
let gate: RoleGate;
let store: EmbeddedStore;
let front: S3Front;
let storage: Storage;
let jobs: JobStore;
let app: string;
let jobId: string;
/** A second job, run once with exactly the job env: on this machine (no tfjs-node-gpu) it must fail at once. */
let gpuJobId: string;
let bucket: string;
/** The container overrides SubmitJob carries, as the API's BatchLauncher builds them. */
let overrides: Record<string, string>;

beforeAll(async () => {
  run = await runSstConfigUnderMocks({ stage: "rehearsal", env: { SST_SECRET_ApiKeys: "k", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  job = fineTuneJob(run);
  gate = new RoleGate(job.role, rolePolicies(run).get(job.role) ?? []);
  bucket = String(JSON.parse(job.env.SST_RESOURCE_Storage).name);
  store = await startEmbeddedStore({ name: "rehearsal-ft", bucket, subdir: "s3", host: STORE_HOST, region: MOCK_REGION });
  front = await startS3Front({ upstream: store.endpoint, bucket, gate });
  storage = store.storage;
  jobs = new JobStore(storage);
}, 180_000);

/** What the deployer and the API did before Batch runs the job: a base model, a finalized dataset, the job. */
async function seed() {
  // The base model, as a deployer seeds it (docs/deploy.md): the CLI straight to the bucket.
  const cli = await runCli(["import", path.join(official("stylegan2/z32_w32_res32_skip"), "network-snapshot.pkl"), "--name", "sg-base"], {
    endpoint: store.endpoint,
    bucket,
    dataDir: path.join(store.dir, "cli"),
  });
  if (cli.code !== 0) throw new Error(`seeding the base model failed: ${cli.out}`);

  // The API's part: a finalized dataset and a created job, whose launch is the SubmitJob input.
  const datasets = new DatasetService(storage, { maxUploadBytes: 1 << 24 });
  const ds = await datasets.create({ layout: "stylegan2" }, TENANT);
  await storage.put(datasetKeys.upload(ds.id), await squaresZip(8, 32));
  await datasets.finalize(ds.id, TENANT);
  const launched: string[] = [];
  const launcher = { launch: async (id: string) => void launched.push(id), adopt: async () => [], close: async () => {} };
  const service = new FineTuneService(jobs, datasets, new ModelRegistry(storage), storage, launcher, false);
  // Parsed as the route parses the body: the schema's defaults (learning_rate, seed, options) are part of the
  // job. (A raw body here left learning_rate undefined, and the worker's losses were NaN at step 1.)
  const params = CreateFineTuneRequest.parse({ base_model: "sg-base", dataset: ds.id, name: "sg-tuned", steps: STEPS, batch_size: 2, checkpoint_every: 1, sample_every: STEPS });
  const created = await service.create(params, TENANT);
  jobId = created.id;
  if (launched[0] !== jobId) throw new Error("the job was not launched");
  gpuJobId = (await service.create({ ...params, name: "sg-tuned-gpu" }, TENANT)).id;
  const input = submitJobInput(jobId, { jobQueue: "q", jobDefinition: "d" });
  overrides = Object.fromEntries((input.containerOverrides?.environment ?? []).map((e) => [String(e.name), String(e.value)]));
}

afterAll(async () => {
  await front?.close();
  await store?.close();
  await run?.close();
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

/** One attempt of a job, as Batch starts the container. Changed: the S3 endpoint (to the front) and `changes`. */
function attempt(id: string, changes: Record<string, string> = {}): { child: ChildProcess; exited: Promise<number | null>; logs: string[] } {
  const cmd = imageCmd(DOCKERFILE);
  const logs: string[] = [];
  const child = spawn(process.execPath, cmd.slice(1), {
    cwd: app,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...job.env,
      ...overrides,
      GANSERVE_JOB_ID: id,
      // What the container gets from the job role and the image, and the one redirection to the front.
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: front.endpoint,
      GANSERVE_DATA_DIR: path.join(store.dir, "worker"),
      TMPDIR: path.join(store.dir, "worker"),
      PATH: process.env.PATH ?? "",
      ...changes,
    },
  });
  child.stdout?.on("data", (c) => logs.push(String(c)));
  child.stderr?.on("data", (c) => logs.push(String(c)));
  return { child, exited: new Promise((r) => child.once("close", (code) => r(code))), logs };
}

const checkpointKeys = async () => (await storage.list(`${jobKeys.prefix(jobId)}checkpoints/`)).map((o) => o.key).filter((k) => k.endsWith(".safetensors"));

describe("fine-tune job role", () => {
  test("defect 6: the job role may delete the checkpoint a newer one supersedes", async () => {
    // Decided on a gate of its own, so that the grant-use check below counts only what the worker did.
    const own = new RoleGate(job.role, rolePolicies(run).get(job.role) ?? []);
    const resource = `arn:aws:s3:::${bucket}/${jobKeys.checkpoint("ft_rehearsal0000000000", 1)}`;
    expect(await own.decide("DeleteObject of a superseded checkpoint", { action: "s3:DeleteObject", resource })).toBe(true);
  });
});

describe("fine-tune worker as Batch runs it", () => {
  beforeAll(async () => {
    await seed();
    app = imageLayout(DOCKERFILE);
  }, 300_000);


  test("the job definition asks for a GPU and the job id comes from SubmitJob's overrides", () => {
    expect(job.definition.resourceRequirements).toContainEqual({ type: "GPU", value: "1" });
    expect(overrides.GANSERVE_JOB_ID).toBe(jobId);
    // Trains on tfjs-node-gpu (the image installs it), named so that a missing GPU backend fails the job.
    expect(job.env.GANSERVE_BACKEND).toBe("tensorflow-gpu");
    expect(imageCmd(DOCKERFILE).at(-1)).toBe("packages/functions/src/worker.ts");
  });

  test.runIf(!GPU_BACKEND_HERE)("with exactly the job env and no GPU backend, the job fails with that reason instead of training on the CPU", async () => {
    const only = attempt(gpuJobId);
    const code = await only.exited;
    const record = await jobs.get(gpuJobId, TENANT);
    expect(record.status, only.logs.join("")).toBe("failed");
    expect(record.error?.message).toMatch(/GANSERVE_BACKEND=tensorflow-gpu is not available/);
    expect(record.step).toBe(0);
    // A failed job is not retried: Batch sees the worker's ordinary end.
    expect(code).toBe(0);
  }, 300_000);

  test("defect 6: killed after its first checkpoint, the retry resumes, replaces checkpoints and publishes the model", async () => {
    fs.mkdirSync(path.join(store.dir, "worker"), { recursive: true });
    const first = attempt(jobId, ON_THIS_MACHINE);
    const deadline = Date.now() + 400_000;
    while ((await checkpointKeys()).length === 0) {
      if (first.child.exitCode !== null) throw new Error(`the first attempt ended before a checkpoint: ${first.logs.join("")}`);
      if (Date.now() > deadline) throw new Error(`no checkpoint in time: ${first.logs.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    first.child.kill("SIGKILL");
    await first.exited;
    const killedAt = await jobs.get(jobId, TENANT);
    expect(killedAt.status).toBe("running");
    expect(killedAt.step).toBeLessThan(STEPS);

    const second = attempt(jobId, ON_THIS_MACHINE);
    const code = await second.exited;
    const logs = second.logs.join("");
    const record = await jobs.get(jobId, TENANT);
    expect(record.status, logs).toBe("succeeded");
    // Exit 0 is what Batch reports SUCCEEDED; the record says the same.
    expect(code, logs).toBe(0);
    expect(record.step).toBe(STEPS);
    expect(record.attempts).toBe(2);
    const events = await jobs.events(jobId, 0);
    expect(events.some((e) => e.type === "log" && /resumed from the checkpoint at step/.test(e.message ?? "")), JSON.stringify(events)).toBe(true);
    // Only the last checkpoint is kept: the others were deleted as they were superseded.
    expect(await checkpointKeys()).toEqual([jobKeys.checkpoint(jobId, STEPS - 1)]);
    // The published model version is readable from the bucket.
    const model = await new ModelRegistry(storage).resolve("sg-tuned", "latest", TENANT);
    expect(model.family).toBe("stylegan2");
  }, 900_000);

  test("defect 12: a dataset finalize job (a ds_ id on the same queue and definition) indexes the upload through the job role", async () => {
    // What POST /v1/datasets/{id}/finalize did before submitting: an uploaded zip, the dataset `processing`.
    const datasets = new DatasetService(storage, { maxUploadBytes: 1 << 24 });
    const ds = await datasets.create({ layout: "stylegan2" }, TENANT);
    await storage.put(datasetKeys.upload(ds.id), await squaresZip(4, 32));
    expect((await datasets.markProcessing(ds.id, TENANT, 0)).started).toBe(true);
    // Exactly the job env: finalizing needs no GPU backend.
    const only = attempt(ds.id);
    const code = await only.exited;
    const record = await datasets.get(ds.id, TENANT);
    expect(record.status, only.logs.join("")).toBe("ready");
    expect(record.stats?.images).toBe(4);
    expect(code).toBe(0);
    // The zip is deleted once indexed (s3:DeleteObject on datasets/*).
    expect(await storage.exists(datasetKeys.upload(ds.id))).toBe(false);
  }, 300_000);

  test("every call the worker made was allowed by the job role", () => {
    expect(gate.decisions.length).toBeGreaterThan(0);
    expect(gate.denied()).toEqual([]);
    expect(gate.decisions.some((d) => d.action === "s3:DeleteObject" && d.resource.includes("/checkpoints/"))).toBe(true);
  });

  test("every grant of the job role was used, except those of jobs this rehearsal does not run", async () => {
    const unused = await gate.unused();
    expect(unused.filter((g) => !NOT_DRIVEN.some(([p]) => p.test(g)))).toEqual([]);
    for (const [pattern, why] of NOT_DRIVEN) expect(unused.some((g) => pattern.test(g)), `${pattern} (${why}) is used now: drop it`).toBe(true);
  });
});
