/**
 * `ganserve eval <model> --dataset <zip>`: quality numbers for a model, from the registry (name[/--version])
 * or from a model folder (models/<name>/ with model.json + weights.safetensors). The family decides the
 * evaluation: CycleGAN L1/SSIM against paired targets with the identity baseline, SPADE L1/SSIM against the
 * rendered ground truth, StyleGAN2 domain FID and precision/recall on Fashion-MNIST classifier features.
 * Prints a table, then one JSON line (the only output with --json).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Settings } from "@ganserve/core/config";
import { evaluateCycleGAN, evaluateSpade, evaluateStyleGAN2, type Evaluation } from "@ganserve/core/eval/evaluate";
import { CLASSIFIER_RELATIVE_PATH, loadFashionClassifier, loadModelFolder, type ModelFiles } from "@ganserve/core/eval/load";
import type { CycleGANEngine, SpadeEngine, StyleGAN2Engine } from "@ganserve/core/inference/engine";
import { tfjsEngines } from "@ganserve/core/inference/engines/tfjs";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { openStorage } from "@ganserve/core/storage/index";

export const EVAL_USAGE = `  ganserve eval <model name | model folder> --dataset <zip> [--version vN] [--seed N] [--n N]
                [--direction AtoB|BtoA] [--limit N] [--classifier <file>] [--inception <file>] [--json]`;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export class EvalUsageError extends Error {}

const INCEPTION_HELP =
  "Inception FID is not supported yet: ganserve does not implement the Inception-v3 network, so it cannot compute an FID comparable with published numbers. " +
  "The reference weights are pt_inception-2015-12-05-6726825d.pth from the pytorch-fid project's GitHub releases (a PyTorch port of the 2015-12-05 TF Inception graph). " +
  "Use the domain FID this command prints (Fashion-MNIST classifier features), or compute Inception FID with pytorch-fid on images exported from the API.";

/** Why a given --inception file could not be used, in the user's terms. */
function inceptionProblem(file: string): string {
  if (!fs.existsSync(file)) return `${file} does not exist. ${INCEPTION_HELP}`;
  const head = new Uint8Array(fs.readFileSync(file).subarray(0, 4));
  const kind =
    head[0] === 0x50 && head[1] === 0x4b
      ? "a PyTorch zip checkpoint"
      : head[0] === 0x80
        ? "a Python pickle"
        : /\.pb$/i.test(file)
          ? "a TensorFlow graph"
          : "a file of unknown format";
  return `${file} looks like ${kind}; it cannot be loaded. ${INCEPTION_HELP}`;
}

async function loadModel(ref: string, version: string | undefined, settings: Settings): Promise<ModelFiles> {
  if (fs.existsSync(path.join(ref, "model.json"))) {
    if (version) throw new EvalUsageError("--version applies to registry models, not to a model folder");
    return loadModelFolder(ref);
  }
  if (ref.includes("/") || ref.includes(path.sep)) throw new Error(`${ref} is not a model folder (no model.json) and not a model name`);
  const opened = await openStorage(settings);
  try {
    const registry = new ModelRegistry(opened.storage);
    const record = await registry.resolve(ref, version ?? "latest");
    return { record, weights: await registry.weights(record) };
  } finally {
    await opened.close();
  }
}

const f4 = (v: number) => v.toFixed(4);

export function formatTable(name: string, e: Evaluation): string {
  const rows: string[][] =
    e.family === "cyclegan"
      ? [
          ["metric", "model", "identity baseline"],
          [`L1 (${e.direction}, lower is better)`, f4(e.model.l1), f4(e.identity.l1)],
          ["SSIM (higher is better)", f4(e.model.ssim), f4(e.identity.ssim)],
          ["pairs", String(e.pairs), String(e.pairs)],
        ]
      : e.family === "spade"
        ? [
            ["metric", "model"],
            ["L1 (lower is better)", f4(e.model.l1)],
            ["SSIM (higher is better)", f4(e.model.ssim)],
            ["pairs", String(e.pairs)],
          ]
        : [
            ["metric", "value"],
            ["domain FID (Fashion-MNIST features, not Inception)", e.domain_fid.toFixed(3)],
            [`precision (k=${e.k})`, f4(e.precision)],
            [`recall (k=${e.k})`, f4(e.recall)],
            ["generated / real", `${e.generated} / ${e.real}`],
          ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c])).join(" | ")} |`;
  return [`${name} (${e.family})`, line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

export async function runEval(args: string[], settings: Settings): Promise<Evaluation> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dataset: { type: "string" },
      version: { type: "string" },
      seed: { type: "string" },
      n: { type: "string" },
      direction: { type: "string" },
      limit: { type: "string" },
      classifier: { type: "string" },
      inception: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length !== 1 || !values.dataset) throw new EvalUsageError("eval needs one model (name or folder) and --dataset <zip>");
  if (values.inception) throw new Error(inceptionProblem(values.inception));
  const int = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new EvalUsageError(`--${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
  const seed = int("seed", values.seed, 0);
  const limit = values.limit === undefined ? undefined : int("limit", values.limit, 0);
  if (values.direction && values.direction !== "AtoB" && values.direction !== "BtoA") throw new EvalUsageError("--direction is AtoB or BtoA");
  if (!fs.existsSync(values.dataset)) throw new Error(`dataset ${values.dataset} does not exist`);
  const zip = new Uint8Array(fs.readFileSync(values.dataset));

  const { record, weights } = await loadModel(positionals[0], values.version, settings);
  const engine = await tfjsEngines(settings.GANSERVE_BACKEND).load(record, weights);
  let result: Evaluation;
  try {
    if (record.family === "cyclegan")
      result = await evaluateCycleGAN(engine as CycleGANEngine, zip, { direction: values.direction as "AtoB" | "BtoA" | undefined, limit });
    else if (record.family === "spade") result = await evaluateSpade(engine as SpadeEngine, zip, { seed, limit });
    else {
      const classifier = loadFashionClassifier(values.classifier ?? path.join(REPO_ROOT, CLASSIFIER_RELATIVE_PATH));
      try {
        result = await evaluateStyleGAN2(engine as StyleGAN2Engine, zip, { seed, n: int("n", values.n, 1000), classifier, limitReal: limit });
      } finally {
        classifier.dispose();
      }
    }
  } finally {
    engine.dispose();
  }
  const name = `${record.name}/${record.version}`;
  if (!values.json) console.log(formatTable(name, result));
  console.log(JSON.stringify({ name, ...result }));
  return result;
}
