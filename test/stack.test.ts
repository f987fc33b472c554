import { spawnSync } from "node:child_process";
import path from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Storage, EMBEDDED_CREDENTIALS } from "@ganserve/core/storage/index";
import { auth, repoRoot, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

const storageFor = (s3Port: number) =>
  new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${s3Port}`, credentials: EMBEDDED_CREDENTIALS });

describe("local stack", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("answers /health and /ready", async () => {
    const health = await fetch(`${stack.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok" });
    // Ready once storage answers and the startup model warm-up has finished.
    let ready = await fetch(`${stack.url}/ready`);
    for (let i = 0; i < 100 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await fetch(`${stack.url}/ready`);
    }
    expect(ready.status).toBe(200);
    const body = await ready.json();
    expect(body.status).toBe("ready");
    expect(body.checks.storage.ok).toBe(true);
  });

  it("puts a request id on every response", async () => {
    for (const p of ["/health", "/nope", "/v1/models"]) {
      const res = await fetch(`${stack.url}${p}`);
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("serves a valid OpenAPI 3.x document and the docs page", async () => {
    const doc = await (await fetch(`${stack.url}/openapi.json`)).json();
    expect(doc.openapi).toMatch(/^3\./);
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const docs = await fetch(`${stack.url}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("/openapi.json");
  });

  it("rejects /v1 without a key in the error shape, accepts the key", async () => {
    const res = await fetch(`${stack.url}/v1/models`);
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
    const bad = await fetch(`${stack.url}/v1/models`, { headers: { Authorization: "Bearer nope" } });
    expect(bad.status).toBe(401);
    const ok = await fetch(`${stack.url}/v1/models`, { headers: auth(stack) });
    expect(ok.status).not.toBe(401);
  });

  it("answers unknown routes with 404 in the error shape", async () => {
    const res = await fetch(`${stack.url}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("not_found");
  });

  it("accepts an upload to a presigned PUT URL with plain fetch", async () => {
    const storage = storageFor(stack.s3Port);
    const url = await storage.presignPut("datasets/presign-test/archive.zip");
    const put = await fetch(url, { method: "PUT", body: new Uint8Array([80, 75, 5, 6]) });
    expect(put.status).toBe(200);
    expect(await storage.get("datasets/presign-test/archive.zip")).toEqual(new Uint8Array([80, 75, 5, 6]));
    storage.destroy();
  });
});

describe("storage durability", () => {
  it("keeps objects written through the storage module across a restart of the stack", async () => {
    const dataDir = tempDataDir();
    const first = await startStack({ dataDir });
    const storage = storageFor(first.s3Port);
    await storage.putJson("jobs/durable/record.json", { hello: "world" });
    storage.destroy();
    expect(await first.stop()).toBe(0);

    const second = await startStack({ dataDir, s3Port: first.s3Port });
    try {
      const again = storageFor(second.s3Port);
      expect(await again.getJson("jobs/durable/record.json")).toEqual({ hello: "world" });
      again.destroy();
    } finally {
      await second.stop();
    }
  });
});

describe("configuration errors", () => {
  it("exits non-zero with one line naming the bad variable", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "packages/functions/src/local.ts")], {
      env: { ...process.env, PORT: "abc", NODE_NO_WARNINGS: "1" },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PORT");
  });
});
