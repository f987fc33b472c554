/**
 * `ganserve seed`: publishes the repo's bundled demo models (`models/<name>/`) into the configured bucket.
 * A deployed stage starts with an empty bucket, and its runtimes' roles may not write `models/` (docs/deploy.md
 * "Seed models"): the deployer runs this with their own credentials, pointed at the stage's bucket. Locally
 * `npm start` does the same at start (GANSERVE_DEMO_MODELS). Models already in the bucket are left as they are.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Settings } from "@ganserve/core/config";
import { createLogger } from "@ganserve/core/log";
import { registerBundledModels } from "@ganserve/core/models/bundled";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { openStorage } from "@ganserve/core/storage/index";

export const SEED_USAGE = "  ganserve seed [<models dir>]      publish the bundled demo models (default: the repo's models/) into the bucket";

export const BUNDLED_MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../models");

export class SeedUsageError extends Error {}

/** Returns the names published now and those the bucket already had. */
export async function seedModels(settings: Settings, dir = BUNDLED_MODELS_DIR): Promise<{ published: string[]; present: string[] }> {
  if (!fs.existsSync(dir)) throw new SeedUsageError(`no models folder at ${dir}`);
  const opened = await openStorage(settings);
  try {
    const registry = new ModelRegistry(opened.storage);
    // Says which models it skipped and why (a checksum mismatch, a name a tenant owns).
    const published = await registerBundledModels(registry, dir, createLogger(settings.GANSERVE_LOG_LEVEL));
    const present: string[] = [];
    for (const name of fs.readdirSync(dir).sort()) {
      if (published.includes(name) || name.startsWith("_") || !fs.existsSync(path.join(dir, name, "model.json"))) continue;
      if ((await registry.versions(name)).length > 0) present.push(name);
    }
    return { published, present };
  } finally {
    await opened.close();
  }
}
