// `ganserve seed` (docs/deploy.md "Seed models"): the CLI, as a deployer runs it, publishes the bundled demo
// models into a bucket it reaches with its own credentials (here the embedded store, as an external S3), and a
// second run changes nothing.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ModelRegistry, sha256 } from "@ganserve/core/models/registry";
import type { Storage } from "@ganserve/core/storage/index";
import { startEmbeddedStore, type EmbeddedStore } from "../packages/core/test/helpers/embedded-store.ts";
import { runCli } from "./helpers/cli.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
let store: EmbeddedStore;
let storage: Storage;

beforeAll(async () => {
  store = await startEmbeddedStore({ name: "seed", bucket: "stage-bucket", subdir: "s3" });
  storage = store.storage;
});
afterAll(() => store?.close());

/** `ganserve seed` with a deployer's settings only, started outside the repo. */
const seed = () => runCli(["seed"], { endpoint: store.endpoint, bucket: "stage-bucket", dataDir: path.join(store.dir, "cli"), cwd: store.dir });

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
