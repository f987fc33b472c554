// Deploy rehearsal, review defect 3 on its own: what each runtime asks of S3 when it opens storage at start
// and when /ready probes it, decided against that runtime's role. In AWS, HeadBucket is s3:ListBucket with no
// s3:prefix, which a prefix-conditioned grant never allows; a runtime that HeadBuckets its bucket dies at
// start and its /ready stays 503. The settings and storage code are the repository's, opened in this process
// from each runtime's env (the Lambda's links given as env here: how it reads resource.enc is defect 1's
// check, in lambda.test.ts), with S3 sent to the IAM-deciding front.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadSettings } from "@ganserve/core/config";
import { EMBEDDED_CREDENTIALS, openStorage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../../packages/core/test/helpers/embedded-store.ts";
import { apiLambda, fineTuneJob, gpuTask, MOCK_REGION, rolePolicies, runSstConfigUnderMocks, type MockRun } from "../../infra/mock-harness.ts";
import { RoleGate } from "./iam.ts";
import { startS3Front } from "./s3-proxy.ts";

const STORE_HOST = "127.0.0.2";
let run: MockRun;
let store: EmbeddedStore;
let bucket: string;

beforeAll(async () => {
  run = await runSstConfigUnderMocks({ stage: "rehearsal", env: { SST_SECRET_ApiKeys: "rehearsal:gk_rehearsal_0123456789abcdef", SST_SECRET_SecretKey: "cmVoZWFyc2FsLXNlY3JldC1rZXktMzItYnl0ZXMhISE=" } });
  bucket = String(JSON.parse(gpuTask(run).env.SST_RESOURCE_Storage).name);
  store = await startEmbeddedStore({ name: "rehearsal-start", bucket, subdir: "s3", host: STORE_HOST });
  // The role's session credentials, as every runtime gets them from AWS.
  Object.assign(process.env, { AWS_REGION: MOCK_REGION, AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey });
}, 180_000);

afterAll(async () => {
  await store?.close();
  await run?.close();
});

/** Opens storage as the runtime does at start, then probes it as /ready does, through the role's front. */
async function startAndProbe(role: string, env: Record<string, string>) {
  const gate = new RoleGate(role, rolePolicies(run).get(role) ?? []);
  const front = await startS3Front({ upstream: store.endpoint, bucket, gate });
  process.env.AWS_ENDPOINT_URL_S3 = front.endpoint;
  try {
    const settings = loadSettings({ ...env, GANSERVE_DATA_DIR: path.join(store.dir, role) });
    // A start that dies (a denied HeadBucket is a bare 403: the SDK's "UnknownError") is reported with the
    // decisions that explain it.
    const opened = await openStorage(settings).catch((e: Error) => e);
    if (opened instanceof Error) return { failed: `${opened.name}: ${opened.message}`, ready: false, embedded: false, gate };
    try {
      return { failed: undefined, ready: await opened.storage.ping(), embedded: opened.embedded !== undefined, gate };
    } finally {
      await opened.close();
    }
  } finally {
    delete process.env.AWS_ENDPOINT_URL_S3;
    await front.close();
  }
}

const denials = (gate: RoleGate) => gate.denied().map((d) => `${d.call}: ${d.action} ${JSON.stringify(d.context ?? {})}`);

describe("defect 3: storage at start and /ready's probe are allowed by each role (no HeadBucket)", () => {
  test("defect 3: the API Lambda opens the linked bucket and /ready's probe passes through its role", async () => {
    const fn = apiLambda(run);
    const links = Object.fromEntries(Object.entries(fn.links).map(([name, props]) => [`SST_RESOURCE_${name}`, JSON.stringify(props)]));
    const { SST_KEY: _key, SST_KEY_FILE: _file, ...env } = fn.env;
    const r = await startAndProbe(fn.role, { ...env, ...links });
    expect(denials(r.gate)).toEqual([]);
    expect(r.failed).toBeUndefined();
    expect(r.embedded).toBe(false);
    expect(r.gate.decisions.length).toBeGreaterThan(0);
    expect(r.ready).toBe(true);
  });

  test("defect 3: the GPU task opens the bucket and /ready's probe passes through the task role", async () => {
    const task = gpuTask(run);
    const r = await startAndProbe(task.role, task.env);
    expect(denials(r.gate)).toEqual([]);
    expect(r.failed).toBeUndefined();
    expect(r.embedded).toBe(false);
    expect(r.gate.decisions.length).toBeGreaterThan(0);
    expect(r.ready).toBe(true);
  });

  test("defect 3: the fine-tune job opens the bucket through the job role", async () => {
    const job = fineTuneJob(run);
    const r = await startAndProbe(job.role, job.env);
    expect(denials(r.gate)).toEqual([]);
    expect(r.failed).toBeUndefined();
    expect(r.embedded).toBe(false);
    expect(r.gate.decisions.length).toBeGreaterThan(0);
  });
});
