/**
 * The demo models that ship in the repo (`models/<name>/{model.json, weights.safetensors}`), registered
 * into storage on start when the registry does not have them yet, so a fresh `npm start` has one working
 * model per family with no download.
 */
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../log.ts";
import { MODEL_RECORD_FILE, MODEL_WEIGHTS_FILE } from "../storage/keys.ts";
import { ModelJson } from "./model-json.ts";
import { sha256, type ModelRegistry } from "./registry.ts";

export async function registerBundledModels(registry: ModelRegistry, dir: string, log?: Logger): Promise<string[]> {
  if (!fs.existsSync(dir)) return [];
  const added: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const folder = path.join(dir, name);
    if (name.startsWith("_") || !fs.existsSync(path.join(folder, MODEL_RECORD_FILE))) continue;
    const record = ModelJson.parse(JSON.parse(fs.readFileSync(path.join(folder, MODEL_RECORD_FILE), "utf8")));
    if ((await registry.versions(record.name)).length > 0) continue;
    const weights = new Uint8Array(fs.readFileSync(path.join(folder, MODEL_WEIGHTS_FILE)));
    if (sha256(weights) !== record.weights.sha256) {
      log?.error({ model: record.name }, "bundled model weights do not match their checksum; skipped");
      continue;
    }
    // A tenant may have claimed the name while demo models were off: theirs stays theirs.
    const owner = await registry.owner(record.name);
    if (owner !== undefined && owner !== null) {
      log?.warn({ model: record.name }, "a tenant owns the name of a bundled model; skipped");
      continue;
    }
    const { name: n, family, config, weights: w, version, schema_version: _s, created_at: _c, sample: _p, ...extra } = record;
    const samplePath = path.join(folder, "sample.png");
    const sample = fs.existsSync(samplePath) ? await registry.putSample(n, version, new Uint8Array(fs.readFileSync(samplePath))) : undefined;
    // Example inputs go up before the record, like the weights, so a published version never lists a missing file.
    for (const ex of extra.examples ?? []) if (ex.file) await registry.putExample(n, version, ex.file, new Uint8Array(fs.readFileSync(path.join(folder, ex.file))));
    await registry.publish({ name: n, family, config, weights, dtype: w.dtype, version, extra: { ...extra, sample } });
    added.push(record.name);
  }
  return added;
}
