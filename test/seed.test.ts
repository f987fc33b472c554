// `ganserve seed` (docs/deploy.md "Seed models"): the CLI, as a deployer runs it, publishes the bundled demo
// models into a bucket it reaches with its own credentials (here the embedded store, as an external S3), and a
// second run changes nothing.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ModelRegistry, sha256 } from "@ganserve/core/models/registry";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, Storage, type EmbeddedS3 } from "@ganserve/core/storage/index";

const ROOT = path.resolve(import.meta.dirname, "..");
let dir: string;
let store: EmbeddedS3;
let storage: Storage;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-seed-"));
  store = await startEmbeddedS3({ directory: path.join(dir, "s3"), bucket: "stage-bucket" });
  storage = new Storage({ bucket: "stage-bucket", region: "us-east-1", endpoint: store.endpoint, credentials: EMBEDDED_CREDENTIALS });
});
afterAll(async () => {
  storage?.destroy();
  await store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The CLI in a process of its own (the store answers from this one), with a deployer's settings only. */
async function seed(): Promise<{ code: number | null; out: string }> {
  const cli = spawn(process.execPath, [path.join(ROOT, "packages/functions/bin/ganserve.mjs"), "seed"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      GANSERVE_DATA_DIR: path.join(dir, "cli"),
      GANSERVE_S3_ENDPOINT: store.endpoint,
      GANSERVE_S3_BUCKET: "stage-bucket",
      GANSERVE_EMBEDDED_S3: "false",
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
    },
  });
  let out = "";
  cli.stdout?.on("data", (c) => (out += c));
  cli.stderr?.on("data", (c) => (out += c));
  return { code: await new Promise((r) => cli.once("close", r)), out };
}

const bundled = fs
  .readdirSync(path.join(ROOT, "models"))
  .filter((n) => !n.startsWith("_") && fs.existsSync(path.join(ROOT, "models", n, "model.json")))
  .sort();

test("seed publishes every bundled model into an empty bucket, weights as shipped; a second run changes nothing", async () => {
  expect(bundled).toEqual(expect.arrayContaining(["emoji-cyclegan", "fashion-stylegan2", "scenes-spade"]));
  const registry = new ModelRegistry(storage);
  for (const name of bundled) expect(await registry.versions(name)).toEqual([]);

  const first = await seed();
  expect(first.code, first.out).toBe(0);
  expect(first.out).toContain(`published: ${bundled.join(", ")};`);
  for (const name of bundled) {
    const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, "models", name, "model.json"), "utf8"));
    const model = await registry.resolve(name, "latest");
    expect(model.version).toBe(shipped.version);
    expect(sha256(await registry.weights(model))).toBe(shipped.weights.sha256);
  }
  const before = (await storage.list("models/")).map((o) => `${o.key}@${o.lastModified?.toISOString()}`).sort();

  const second = await seed();
  expect(second.code, second.out).toBe(0);
  expect(second.out).toContain(`published: none; already in the bucket: ${bundled.join(", ")}`);
  expect((await storage.list("models/")).map((o) => `${o.key}@${o.lastModified?.toISOString()}`).sort()).toEqual(before);
});
