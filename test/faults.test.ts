/**
 * Faults, fast form: the stack runs against an S3 server this test owns (GANSERVE_EMBEDDED_S3=false), so the
 * test can stop it under generate traffic. While storage is gone every answer must be 503
 * storage_unavailable with Retry-After (never a 500, never a crash), /health stays up and /ready says
 * not_ready; once storage is back, generate succeeds again without a restart. The fine-tune faults (storage
 * gone for 5 s mid-training, API restarted mid-training) take minutes: test/soak/faults-finetune.test.ts.
 */
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from "@ganserve/core/storage/index";
import { freePort, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

const KEY = "gs_faults_test_key_0123456789";

let stack: Stack;
let s3: EmbeddedS3 | undefined;
let s3Dir: string;
let s3Port: number;

const startS3 = async () => (s3 = await startEmbeddedS3({ directory: s3Dir, bucket: "ganserve", port: s3Port }));
const stopS3 = async () => {
  await s3?.close();
  s3 = undefined;
};

beforeAll(async () => {
  const dataDir = tempDataDir();
  s3Dir = path.join(dataDir, "external-s3");
  s3Port = await freePort();
  await startS3();
  const env = {
    GANSERVE_S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    GANSERVE_EMBEDDED_S3: "false",
    AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
  };
  // The shipped demo models are registered into this S3 on start.
  stack = await startStack({ dataDir, s3Port, env: { ...env, GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: KEY, GANSERVE_REQUEST_TIMEOUT_MS: "15000" } });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await stopS3();
});

const generate = async (seed: number, output: "base64" | "url" = "base64") => {
  const res = await fetch(`${stack.url}/v1/generate`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "fashion-stylegan2", class_idx: seed % 10, seeds: [seed], output }),
    // Bounded even if the server stops answering, so the traffic loops always end.
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code, retryAfter: res.headers.get("retry-after") };
};

it("storage outage under generate traffic: 503 storage_unavailable, no 500, no crash, recovery after", async () => {
  expect((await generate(0)).status).toBe(200);
  const seen: { phase: string; status: number; code?: string; retryAfter: string | null }[] = [];
  let phase = "before";
  let stop = false;
  const workers = Array.from({ length: 4 }, async (_, w) => {
    // Bounded in count as well as time, whatever happens to the server.
    for (let i = 0; i < 2000 && !stop; i++) {
      const r = await generate(w * 10_000 + i, i % 2 ? "url" : "base64");
      seen.push({ phase, ...r });
      // A client honouring Retry-After would wait seconds; a short pause keeps the count bounded yet dense.
      if (r.status !== 200) await new Promise((res) => setTimeout(res, 50));
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  phase = "down";
  const t0 = Date.now();
  await stopS3();
  const stopMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 3000));
  const ready = await fetch(`${stack.url}/ready`);
  const health = await fetch(`${stack.url}/health`);
  await startS3();
  phase = "up";
  const upAt = Date.now();
  const deadline = upAt + 15_000;
  let recovered = false;
  while (!recovered && Date.now() < deadline) {
    const last = seen.slice(-4);
    recovered = last.length === 4 && last.every((s) => s.phase === "up" && s.status === 200);
    if (!recovered) await new Promise((r) => setTimeout(r, 100));
  }
  const recoveryMs = Date.now() - upAt;
  stop = true;
  await Promise.all(workers);

  const count = (p: string) => {
    const m: Record<string, number> = {};
    for (const s of seen.filter((s) => s.phase === p)) {
      const k = `${s.status} ${s.code ?? ""}`.trim();
      m[k] = (m[k] ?? 0) + 1;
    }
    return Object.entries(m);
  };
  console.log(JSON.stringify({ test: "faults-storage-outage", requests: seen.length, before: count("before"), down: count("down"), after: count("up"), ready_while_down: ready.status, recovered, s3_stop_ms: stopMs, recovery_ms: recoveryMs }));

  expect(health.status).toBe(200);
  expect(ready.status).toBe(503);
  expect(seen.filter((s) => s.status >= 500 && s.code !== "storage_unavailable")).toEqual([]);
  const down = seen.filter((s) => s.phase === "down");
  expect(down.some((s) => s.status === 503)).toBe(true);
  for (const s of down.filter((s) => s.status === 503)) expect(s.retryAfter).not.toBeNull();
  for (const s of seen) expect([200, 503]).toContain(s.status);
  expect(recovered).toBe(true);
  expect((await generate(99)).status).toBe(200);
  expect((await fetch(`${stack.url}/ready`)).status).toBe(200);
});
