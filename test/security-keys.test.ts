/**
 * Keys, limits and quotas below the HTTP stack: the key comparison is structurally constant-time, stored keys
 * are hashed and revocations reach a running KeyRing within its TTL, the `keys` CLI round-trips, and the
 * rate limiter / fine-tune slots / dataset quota refuse with the documented codes. Everything runs against
 * an S3 server this test starts in-process, so it needs no stack and no wiring.
 */
import fs from "node:fs";
import path from "node:path";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// Wraps the real timingSafeEqual so the test can count calls; everything else stays the real module.
vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, default: { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) }, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

import * as crypto from "node:crypto";
import { hashKey, KeyRing, keyId } from "@ganserve/core/auth/keys";
import { createStoredKey, listStoredKeys, revokeStoredKey, StoredKeyRing } from "@ganserve/core/auth/store";
import { loadSettings } from "@ganserve/core/config";
import { DatasetService } from "@ganserve/core/datasets/service";
import { newJobRecord, JobStore } from "@ganserve/core/jobs/store";
import { checkDatasetQuota } from "@ganserve/core/datasets/quota";
import { FineTuneSlots } from "@ganserve/core/jobs/quota";
import { TokenBucketLimiter } from "@ganserve/core/limits/rate-limiter";
import { createLogger } from "@ganserve/core/log";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, Storage, type EmbeddedS3 } from "@ganserve/core/storage/index";
import { authKeys, datasetKeys } from "@ganserve/core/storage/keys";
import { requireApiKey } from "../packages/functions/src/api/middleware/auth.ts";
import { onError } from "../packages/functions/src/api/middleware/errors.ts";
import { rateLimit } from "../packages/functions/src/api/middleware/rate-limit.ts";
import { keysCommand } from "../packages/functions/src/cli/keys.ts";
import type { AppEnv } from "../packages/functions/src/api/env.ts";
import { freePort, tempDataDir } from "./helpers/stack.ts";

const tse = vi.mocked(crypto.timingSafeEqual);

let s3: EmbeddedS3;
let storage: Storage;
let dataDir: string;
let s3Port: number;

beforeAll(async () => {
  dataDir = tempDataDir();
  s3Port = await freePort();
  s3 = await startEmbeddedS3({ directory: path.join(dataDir, "s3"), bucket: "ganserve", port: s3Port });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: s3.endpoint, credentials: EMBEDDED_CREDENTIALS, maxAttempts: 1 });
  await storage.ensureBucket();
});
afterAll(async () => {
  storage?.destroy();
  await s3?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("KeyRing.verify is constant-time in the key", () => {
  const keys = Array.from({ length: 7 }, (_, i) => `tenant${i}:gs_key_number_${i}_${"x".repeat(i * 5)}`);
  const ring = KeyRing.fromList(keys.join(","));

  it.each([
    ["the first key", "gs_key_number_0_"],
    ["the last key", `gs_key_number_6_${"x".repeat(30)}`],
    ["a wrong key", "gs_not_a_key"],
    ["an empty key", ""],
    ["a very long key", "k".repeat(100_000)],
  ])("compares against every record with timingSafeEqual for %s", (_label, presented) => {
    tse.mockClear();
    ring.verify(presented);
    // One call per record, whether or not (and wherever) it matches: no early exit to time.
    expect(tse).toHaveBeenCalledTimes(ring.size);
    // Every comparison is between fixed-length digests, never the raw key.
    for (const [a, b] of tse.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
  });

  it("answers the right tenant and nothing for near misses", () => {
    expect(ring.verify("gs_key_number_3_xxxxxxxxxxxxxxx")?.tenant).toBe("tenant3");
    expect(ring.verify("gs_key_number_3_xxxxxxxxxxxxxx")).toBeUndefined();
    expect(ring.verify("gs_key_number_3_xxxxxxxxxxxxxxx ")).toBeUndefined();
    expect(keyId(ring.verify("gs_key_number_3_xxxxxxxxxxxxxxx")!)).toMatch(/^env-[0-9a-f]{12}$/);
  });

  it("drops records with malformed hashes instead of throwing on every request", () => {
    const r = new KeyRing([
      { hash: "abc", tenant: "t", name: "bad" },
      { hash: hashKey("good"), tenant: "t", name: "good" },
    ]);
    expect(r.size).toBe(1);
    expect(r.verify("good")?.name).toBe("good");
  });
});

describe("stored keys", () => {
  it("stores only the hash, lists and revokes; a running ring notices the revocation within its TTL", async () => {
    const configured = KeyRing.fromList("ops:env-key-1");
    const errors: unknown[] = [];
    const ring = await StoredKeyRing.open(storage, configured, { ttlMs: 200, onError: (e) => errors.push(e) });
    try {
      const { key, record } = await createStoredKey(storage, { tenant: "acme", name: "ci" });
      expect(key).toMatch(/^gs_[A-Za-z0-9_-]{32}$/);
      const raw = await storage.getText(authKeys.key(record.id));
      expect(raw).not.toContain(key);
      expect(JSON.parse(raw!)).toMatchObject({ id: record.id, hash: hashKey(key), tenant: "acme", name: "ci" });

      // The configured keys keep working next to the stored ones.
      expect(ring.verify("env-key-1")?.tenant).toBe("ops");
      await waitFor(() => ring.verify(key)?.tenant === "acme", 3000);
      expect(ring.verify(key)).toMatchObject({ id: record.id, tenant: "acme" });

      const t0 = Date.now();
      await revokeStoredKey(storage, record.id);
      await waitFor(() => ring.verify(key) === undefined, 3000);
      const noticedMs = Date.now() - t0;
      expect(noticedMs).toBeLessThan(3000);
      console.log(JSON.stringify({ test: "stored-key-revocation", ttl_ms: 200, noticed_after_ms: noticedMs }));

      const listed = await listStoredKeys(storage);
      expect(listed.find((k) => k.id === record.id)?.revoked_at).toBeTruthy();
      await expect(revokeStoredKey(storage, "../models/x")).rejects.toMatchObject({ code: "not_found" });
      await expect(revokeStoredKey(storage, "key_0000000000000000")).rejects.toMatchObject({ code: "not_found" });
      await expect(createStoredKey(storage, { tenant: "Not A Tenant" })).rejects.toMatchObject({ code: "validation_failed" });
      expect(errors).toEqual([]);
    } finally {
      ring.stop();
    }
  });

  it("skips unreadable records and keeps the last good set while storage is down", async () => {
    const { key } = await createStoredKey(storage, { tenant: "steady" });
    await storage.put(authKeys.key("key_garbage000000000"), "{not json");
    await storage.putJson(authKeys.key("key_wronghash000000"), { id: "key_wronghash000000", hash: "zz", tenant: "x" });
    const errors: unknown[] = [];
    const ring = await StoredKeyRing.open(storage, [], { ttlMs: 100, onError: (e) => errors.push(e) });
    ring.stop();
    expect(ring.verify(key)?.tenant).toBe("steady");
    expect(errors).toEqual([]);
    // Point the same ring at a store that refuses connections: refresh fails, verify keeps the last good set.
    const down = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${await freePort()}`, credentials: EMBEDDED_CREDENTIALS, maxAttempts: 1 });
    (ring as unknown as { storage: Storage }).storage = down;
    await expect(ring.refresh()).rejects.toMatchObject({ code: "storage_unavailable" });
    expect(ring.verify(key)?.tenant).toBe("steady");
    down.destroy();
  });

  it("the keys CLI creates (printing the key once), lists without hashes and revokes", async () => {
    const settings = loadSettings({ GANSERVE_DATA_DIR: dataDir, GANSERVE_S3_ENDPOINT: s3.endpoint, GANSERVE_EMBEDDED_S3: "false" });
    // The CLI builds its own S3 client from the environment's credentials, as it does in production.
    vi.stubEnv("AWS_ACCESS_KEY_ID", EMBEDDED_CREDENTIALS.accessKeyId);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", EMBEDDED_CREDENTIALS.secretAccessKey);
    try {
      const out: string[] = [];
      await keysCommand(["create", "--tenant", "cli-tenant", "--name", "laptop", "--json"], settings, (l) => out.push(l));
      const created = JSON.parse(out.pop()!);
      expect(created).toMatchObject({ tenant: "cli-tenant", name: "laptop" });
      expect(created.key).toMatch(/^gs_/);
      await keysCommand(["list", "--json"], settings, (l) => out.push(l));
      const listing = out.pop()!;
      expect(listing).not.toContain(created.key);
      expect(listing).not.toContain(hashKey(created.key));
      expect(JSON.parse(listing).keys.some((k: { id: string }) => k.id === created.id)).toBe(true);
      await keysCommand(["list"], settings, (l) => out.push(l));
      expect(out.pop()).toContain(created.id);
      await keysCommand(["revoke", created.id], settings, (l) => out.push(l));
      expect(out.pop()).toContain("revoked");
      await expect(keysCommand(["create"], settings)).rejects.toThrow(/--tenant/);
      await expect(keysCommand(["bogus"], settings)).rejects.toThrow(/unknown/);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe("rate limit", () => {
  it("token bucket: a burst, then 429 with Retry-After until tokens refill; buckets are bounded", () => {
    const l = new TokenBucketLimiter({ rpm: 60, burst: 5, maxKeys: 100 });
    const t = 1_000_000;
    const first = Array.from({ length: 5 }, () => l.take("a", t));
    expect(first.every((d) => d.allowed)).toBe(true);
    expect(first.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0]);
    const denied = l.take("a", t);
    expect(denied).toMatchObject({ allowed: false, retryAfter: 1 });
    expect(l.take("b", t).allowed).toBe(true); // keys do not share a bucket
    expect(l.take("a", t + 1000).allowed).toBe(true); // 60 rpm = one token a second
    expect(l.take("a", t + 1000).allowed).toBe(false);
    for (let i = 0; i < 1000; i++) l.take(`k${i}`, t);
    expect(l.size).toBeLessThanOrEqual(100);
  });

  it("middleware answers 429 rate_limited in the error shape with Retry-After, per key", async () => {
    const app = new Hono<AppEnv>();
    app.use("*", async (c, next) => {
      c.set("requestId", "req-test");
      await next();
    });
    app.onError(onError(createLogger("silent")));
    app.use("*", requireApiKey(KeyRing.fromList("a:key-a,b:key-b")));
    app.use("*", rateLimit(new TokenBucketLimiter({ rpm: 6, burst: 2 })));
    app.get("/x", (c) => c.json({ ok: true }));
    const call = (key: string) => app.request("/x", { headers: { authorization: `Bearer ${key}` } });
    expect((await call("key-a")).status).toBe(200);
    const second = await call("key-a");
    expect(second.headers.get("x-ratelimit-remaining")).toBe("0");
    const limited = await call("key-a");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toEqual({ error: { code: "rate_limited", message: expect.any(String), details: { limit_rpm: 6 }, requestId: "req-test" } });
    expect((await call("key-b")).status).toBe(200);
    // A bad key is refused before it can spend (or probe) anyone's bucket.
    expect((await call("nope")).status).toBe(401);
  });
});

describe("quotas", () => {
  it("fine-tune slots: concurrent creates for one tenant get at most the limit; other tenants are unaffected", async () => {
    const jobs = new JobStore(storage);
    const slots = new FineTuneSlots(jobs, 2);
    let n = 0;
    const create = (tenant: string) => () => {
      const job = newJobRecord({ id: `ft_slot${tenant.replace(/-/g, "")}${n++}`, tenant, family: "stylegan2", baseVersion: "v1", params: { base_model: "m", dataset: "ds_x", name: "out", steps: 10 } as never });
      return jobs.create(job).then(() => job.id);
    };
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => slots.run("slot-a", create("slot-a"))));
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(3);
    for (const r of refused) expect(r.reason).toMatchObject({ code: "rate_limited", status: 429, retryAfter: 30, details: { reason: "concurrent_fine_tunes", limit: 2 } });
    await expect(slots.run("slot-b", create("slot-b"))).resolves.toMatch(/^ft_/);
    // A finished job frees its slot.
    const first = (await jobs.load((ok[0] as PromiseFulfilledResult<string>).value))!;
    await jobs.save({ ...first, status: "succeeded" });
    await expect(slots.run("slot-a", create("slot-a"))).resolves.toMatch(/^ft_/);
  });

  it("dataset bytes: finalize beyond the tenant's quota is refused with 413 reason quota_exceeded", async () => {
    const datasets = new DatasetService(storage, { maxUploadBytes: 1 << 30 });
    // Each upload form holds (and accepts) 6000 bytes.
    const a = await datasets.create({ layout: "stylegan2" }, "quota-a", { maxBytes: 6000 });
    await storage.put(datasetKeys.upload(a.id), new Uint8Array(6000));
    const usage = await checkDatasetQuota({ storage, datasets }, a.id, "quota-a", 15_000);
    expect(usage.incoming).toBe(6000);
    // The pending upload counts once, as incoming, not again in used (issue 21, N2).
    expect(usage.used).toBe(0);
    const b = await datasets.create({ layout: "stylegan2" }, "quota-a", { maxBytes: 6000 });
    await storage.put(datasetKeys.upload(b.id), new Uint8Array(6000));
    // a's pending 6000 bytes (and its record) + b's 6000: within 15 000, beyond 12 000.
    const fits = await checkDatasetQuota({ storage, datasets }, b.id, "quota-a", 15_000);
    expect(fits).toMatchObject({ incoming: 6000 });
    // Exactly a's zip and its record (which carries the upload form, about 1 KB): counted once.
    expect(fits.used).toBe(6000 + (await storage.head(datasetKeys.record(a.id)))!.size);
    const err = await checkDatasetQuota({ storage, datasets }, b.id, "quota-a", 12_000).catch((e) => e);
    expect(err).toMatchObject({ code: "payload_too_large", status: 413, details: { reason: "quota_exceeded", quota: "dataset_bytes", limit: 12_000 } });
    // Another tenant's usage does not count against this one, and foreign ids are 404 as everywhere.
    await expect(checkDatasetQuota({ storage, datasets }, b.id, "quota-b", 20_000)).rejects.toMatchObject({ code: "not_found" });
    const c = await datasets.create({ layout: "stylegan2" }, "quota-b", { maxBytes: 6000 });
    await storage.put(datasetKeys.upload(c.id), new Uint8Array(6000));
    await expect(checkDatasetQuota({ storage, datasets }, c.id, "quota-b", 20_000)).resolves.toMatchObject({ incoming: 6000 });
  });
});

async function waitFor(cond: () => boolean, ms: number) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}
