/**
 * Hostile dataset uploads on the real stack (issue 21, review N2): a presigned PUT accepted 700 MB from a
 * tenant already over its quota, kept it after finalize refused it, and took more PUTs for an hour. Now the
 * upload is S3's POST form with a signed content-length-range, and the quota is held when the form is issued:
 * - a 700 MB-class body (generated as it streams, never held) is cut off: 400 EntityTooLarge, nothing stored,
 *   and the quota held by the form unchanged;
 * - the form's size is reserved atomically: concurrent creates cannot together promise more than the quota;
 * - the form used again after a successful finalize changes nothing the tenant is charged for;
 * - a finalize over the quota (the quota lowered after the upload) → 413 and the zip deleted;
 * - the stack stays up and within a memory budget throughout.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, Storage } from "@ganserve/core/storage/index";
import { datasetKeys } from "@ganserve/core/storage/keys";
import { squaresZip } from "./helpers/finetune.ts";
import { memoryOf, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";
import { postUpload, type UploadForm } from "./helpers/upload.ts";

const MiB = 1024 * 1024;
const QUOTA = 1_000_000;
const ALPHA = `gs_alpha_${randomBytes(18).toString("base64url")}`;
const BETA = `gs_beta_${randomBytes(18).toString("base64url")}`;
const KEYS = `alpha:${ALPHA},beta:${BETA}`;
/** What the API process (it hosts the embedded store) may add to its peak RSS over this file. */
const MEMORY_BUDGET = 256 * MiB;
/** The review's body: far past any form's max_bytes; generated chunk by chunk as the client sends it. */
const HOSTILE_BYTES = 700 * 1000 * 1000;

let stack: Stack;
let storage: Storage;
let dataDir: string;
let peakBefore: number;

const api = (key: string, method: string, path: string, body?: unknown) =>
  fetch(`${stack.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });

type Created = { id: string; status: string; upload: UploadForm };
async function create(key: string, sizeBytes?: number): Promise<Created> {
  const res = await api(key, "POST", "/v1/datasets", { layout: "stylegan2", ...(sizeBytes !== undefined ? { size_bytes: sizeBytes } : {}) });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json();
}

/**
 * POSTs the form with a file part of `size` bytes generated as the client sends it (1 MiB chunks of one
 * buffer): never in memory at once. Resolves with the store's answer, or "closed" when the store cut the
 * connection before the client could read one (also a refusal).
 */
async function postGenerated(upload: UploadForm, size: number): Promise<{ status: number | "closed"; code?: string; sent: number }> {
  const boundary = `----hostile${randomBytes(8).toString("hex")}`;
  let head = "";
  for (const [k, v] of Object.entries(upload.fields)) head += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  head += `--${boundary}\r\nContent-Disposition: form-data; name="${upload.file_field}"; filename="big.zip"\r\nContent-Type: application/zip\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const chunk = new Uint8Array(MiB).fill(0x50);
  let sent = 0;
  let stage = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (stage === 0) {
        stage = 1;
        ctl.enqueue(new TextEncoder().encode(head));
      } else if (sent < size) {
        const n = Math.min(chunk.length, size - sent);
        sent += n;
        ctl.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
      } else {
        ctl.enqueue(new TextEncoder().encode(tail));
        ctl.close();
      }
    },
  });
  try {
    const res = await fetch(upload.url, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: "half",
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1], sent };
  } catch {
    return { status: "closed", sent };
  }
}

beforeAll(async () => {
  dataDir = tempDataDir();
  stack = await startStack({ dataDir, env: { GANSERVE_API_KEYS: KEYS, GANSERVE_TENANT_DATASET_BYTES: String(QUOTA) } });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${stack.s3Port}`, credentials: EMBEDDED_CREDENTIALS, maxAttempts: 1 });
  peakBefore = memoryOf(stack.pid).peak;
});

afterAll(async () => {
  storage?.destroy();
  await stack?.stop();
});

describe("hostile dataset uploads", () => {
  let held: Created;

  it("the form holds the tenant's remaining quota and accepts no more; a second create finds no room", async () => {
    held = await create(ALPHA);
    expect(held.upload).toMatchObject({ method: "POST", file_field: "file", max_bytes: QUOTA });
    expect(Date.parse(held.upload.expires_at) - Date.now()).toBeLessThanOrEqual(15 * 60_000 + 5_000);
    expect(held.upload).not.toHaveProperty("headers");
    const again = await api(ALPHA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 1 });
    expect(again.status).toBe(413);
    expect(await again.json()).toMatchObject({ error: { code: "payload_too_large", details: { reason: "quota_exceeded", quota: "dataset_bytes", limit: QUOTA } } });
    const tooBig = await api(BETA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 600 * MiB });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toMatchObject({ error: { details: { reason: "upload_too_large" } } });
  });

  it("a 700 MB-class body is cut off (400 EntityTooLarge), nothing is stored, and the hold is unchanged", async () => {
    const started = Date.now();
    const res = await postGenerated(held.upload, HOSTILE_BYTES);
    if (res.status !== "closed") {
      expect(res.status).toBe(400);
      expect(res.code).toBe("EntityTooLarge");
    }
    // Refused long before the end: the store stopped reading once the body passed max_bytes.
    expect(res.sent).toBeLessThan(HOSTILE_BYTES);
    const m = memoryOf(stack.pid);
    console.log(`hostile upload: refused after ${(res.sent / MiB).toFixed(0)} MiB sent (${res.status}) in ${Date.now() - started} ms; peak RSS ${(m.peak / MiB).toFixed(0)} MiB (before: ${(peakBefore / MiB).toFixed(0)} MiB)`);
    expect(m.peak - peakBefore).toBeLessThan(MEMORY_BUDGET);
    expect(await storage.exists(datasetKeys.upload(held.id))).toBe(false);
    expect((await api(ALPHA, "GET", `/v1/datasets/${held.id}`).then((r) => r.json())).status).toBe("awaiting_upload");
    // The store's temp folder keeps nothing of it either.
    const again = await api(ALPHA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 1 });
    expect(again.status).toBe(413);
    await again.arrayBuffer();
    // Just over the form's limit is refused too, and exactly at it accepted.
    const over = await postUpload(held.upload, new Uint8Array(QUOTA + 1));
    expect(over.status).toBe(400);
    expect(await over.text()).toContain("EntityTooLarge");
    expect(await storage.exists(datasetKeys.upload(held.id))).toBe(false);
  });

  it("finalize of an accepted zip counts its real size and frees the rest of the hold", async () => {
    const zip = await squaresZip(6);
    expect((await postUpload(held.upload, zip)).status).toBe(204);
    const fin = await api(ALPHA, "POST", `/v1/datasets/${held.id}/finalize`);
    expect(fin.status).toBe(200);
    const ready = await fin.json();
    expect(ready).toMatchObject({ status: "ready", stats: { images: 6 } });
    expect(ready.upload).toBeUndefined();
    expect(await storage.exists(datasetKeys.upload(held.id))).toBe(false);
    const files = (await storage.list(datasetKeys.prefix(held.id))).reduce((s, o) => s + o.size, 0);
    // Room again for everything but what the dataset stores.
    const next = await create(ALPHA, QUOTA - files - 10_000);
    expect(next.upload.max_bytes).toBe(QUOTA - files - 10_000);
    const beyond = await api(ALPHA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 20_000 });
    expect(beyond.status).toBe(413);
    await beyond.arrayBuffer();
    // Posting to the used form again (S3 accepts it until it expires) changes nothing charged or served.
    const stats = ready.stats;
    expect((await postUpload(held.upload, new Uint8Array(QUOTA))).status).toBe(204);
    const after = await api(ALPHA, "POST", `/v1/datasets/${held.id}/finalize`).then((r) => r.json());
    expect(after).toMatchObject({ status: "ready", stats });
    // The stray zip is not counted against the tenant: the same room as before, and it is gone.
    const same = await api(ALPHA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 5_000 });
    expect(same.status).toBe(201);
    await same.arrayBuffer();
    expect(await storage.exists(datasetKeys.upload(held.id))).toBe(false);
  });

  it("concurrent creates reserve atomically: never more than the quota promised", async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => api(BETA, "POST", "/v1/datasets", { layout: "stylegan2", size_bytes: 300_000 })));
    const statuses = results.map((r) => r.status).sort();
    for (const r of results) await r.arrayBuffer();
    expect(statuses).toEqual([201, 201, 201, 413, 413]);
  });

  it("a finalize over the quota (lowered after the upload) → 413, the zip deleted, the dataset failed", async () => {
    // Gamma uploads 400 KB within its quota, then the operator lowers the quota to 300 KB.
    const gamma = `gs_gamma_${randomBytes(18).toString("base64url")}`;
    await stack.stop();
    stack = await startStack({ dataDir, s3Port: stack.s3Port, env: { GANSERVE_API_KEYS: `${KEYS},gamma:${gamma}`, GANSERVE_TENANT_DATASET_BYTES: String(QUOTA) } });
    const ds = await create(gamma, 400_000);
    expect((await postUpload(ds.upload, randomBytes(400_000))).status).toBe(204);
    await stack.stop();
    stack = await startStack({ dataDir, s3Port: stack.s3Port, env: { GANSERVE_API_KEYS: `${KEYS},gamma:${gamma}`, GANSERVE_TENANT_DATASET_BYTES: "300000" } });
    const fin = await api(gamma, "POST", `/v1/datasets/${ds.id}/finalize`);
    expect(fin.status).toBe(413);
    expect(await fin.json()).toMatchObject({ error: { code: "payload_too_large", details: { reason: "quota_exceeded", limit: 300_000, used: 0, incoming: 400_000 } } });
    expect(await storage.exists(datasetKeys.upload(ds.id))).toBe(false);
    expect(await api(gamma, "GET", `/v1/datasets/${ds.id}`).then((r) => r.json())).toMatchObject({ status: "failed", error: { code: "quota_exceeded" } });
    // The form is gone from the record, and what it held with it: gamma has its (new) quota to use.
    expect((await create(gamma, 290_000)).upload.max_bytes).toBe(290_000);
  });

  it("the stack stays up, and the restarted one within the same budget", async () => {
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);
    const m = memoryOf(stack.pid);
    console.log(`hostile uploads: restarted stack's peak RSS ${(m.peak / MiB).toFixed(0)} MiB`);
    expect(m.peak - peakBefore).toBeLessThan(MEMORY_BUDGET);
  });
});
