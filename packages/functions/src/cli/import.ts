/**
 * `ganserve import <file> --name <name>`: reads an official checkpoint (safetensors, torch .pth zip or
 * legacy, NVIDIA .pkl), works out the family and upstream config from the file, asks for what the weights
 * cannot tell, checks that the model runs, and publishes it as a native version in the registry.
 */
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { loadCheckpoint, type StateDict } from "@ganserve/core/checkpoints/index";
import { inferModelConfig } from "@ganserve/core/networks/infer";
import { writeSafetensors } from "@ganserve/core/checkpoints/safetensors";
import type { Settings } from "@ganserve/core/config";
import { tfjsEngines } from "@ganserve/core/inference/engines/tfjs";
import { Family, type ModelJson, ModelName } from "@ganserve/core/models/model-json";
import { ModelRegistry, sha256 } from "@ganserve/core/models/registry";
import { openStorage } from "@ganserve/core/storage/index";

export interface ImportOptions {
  file: string;
  name: string;
  family?: string;
  /** CycleGAN: the B→A generator file (latest_net_G_B.pth) next to the A→B one */
  bFile?: string;
  version?: string;
  description?: string;
  float16?: boolean;
  /** upstream options, e.g. label_nc=35 */
  set: Record<string, unknown>;
  /** accept inferred defaults instead of asking (non-interactive use) */
  yes?: boolean;
}

const prefixed = (sd: StateDict, prefix: string): StateDict => new Map([...sd].map(([k, v]) => [prefix + k, v]));

function parseValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

async function ask(missing: string[], config: Record<string, unknown>, yes: boolean | undefined): Promise<Record<string, unknown>> {
  if (missing.length === 0) return {};
  const shown = missing.map((m) => `${m} (using ${JSON.stringify(config[m] ?? (config.mapping_kwargs as Record<string, unknown> | undefined)?.[m])})`);
  if (yes) {
    console.warn(`ganserve import: not in the file, defaults used: ${shown.join(", ")}`);
    return {};
  }
  if (!process.stdin.isTTY)
    throw new Error(
      `the checkpoint does not say ${missing.join(", ")}; pass them with --set name=value (or --yes to accept: ${shown.join(", ")})`,
    );
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answers: Record<string, unknown> = {};
  for (const m of missing) {
    const current = JSON.stringify(config[m]);
    const a = (await rl.question(`${m} [${current}]: `)).trim();
    if (a) answers[m] = parseValue(a);
  }
  rl.close();
  return answers;
}

export async function importModel(opts: ImportOptions, settings: Settings): Promise<ModelJson> {
  const name = ModelName.parse(opts.name);
  const bytes = new Uint8Array(fs.readFileSync(opts.file));
  const ckpt = await loadCheckpoint(bytes, path.basename(opts.file));
  // What the file itself says about its config (our own safetensors metadata, a network pickle's kwargs).
  const fromFile: Record<string, unknown> = { ...(ckpt.initKwargs ?? {}) };
  if (ckpt.metadata?.config) Object.assign(fromFile, JSON.parse(ckpt.metadata.config));
  const family = opts.family ? Family.parse(opts.family) : undefined;
  const hints = { ...fromFile, ...opts.set, ...(family ? { family } : {}) };
  let inferred = inferModelConfig(ckpt.stateDict, hints, path.basename(opts.file));
  // A network pickle's kwargs are what the network was built with; whatever they leave out took the
  // constructor's upstream default, which is exactly what inference assumed.
  const missing = ckpt.initKwargs ? [] : inferred.missing;
  const answers = await ask(missing, inferred.config, opts.yes);
  if (Object.keys(answers).length) inferred = inferModelConfig(ckpt.stateDict, { ...hints, ...answers }, path.basename(opts.file));
  for (const note of inferred.notes) console.warn(`ganserve import: ${note}`);

  let weights: StateDict = ckpt.stateDict;
  if (inferred.family === "cyclegan") {
    weights = prefixed(ckpt.stateDict, "netG_A.");
    if (opts.bFile) {
      const b = await loadCheckpoint(new Uint8Array(fs.readFileSync(opts.bFile)), path.basename(opts.bFile));
      weights = new Map([...weights, ...prefixed(b.stateDict, "netG_B.")]);
    }
  }
  const dtype = opts.float16 ? "float16" : "float32";
  const native = writeSafetensors(weights, { float16: opts.float16 });

  // Prove the model builds and runs before anything is published.
  const probe = {
    schema_version: 1,
    name,
    version: "v1",
    family: inferred.family,
    config: inferred.config,
    created_at: new Date().toISOString(),
    weights: { file: "weights.safetensors", sha256: sha256(native), bytes: native.byteLength, dtype },
  } satisfies ModelJson;
  const engine = await tfjsEngines(settings.GANSERVE_BACKEND).load(probe, native);
  engine.dispose();

  const opened = await openStorage(settings);
  try {
    return await new ModelRegistry(opened.storage).publish({
      name,
      family: inferred.family,
      config: inferred.config,
      weights: native,
      dtype,
      version: opts.version,
      extra: {
        description: opts.description,
        provenance: { source: `imported from ${path.basename(opts.file)} (${ckpt.format})` },
        ...(inferred.family === "cyclegan" ? { domains: { A: "A", B: "B" } } : {}),
      },
    });
  } finally {
    await opened.close();
  }
}
