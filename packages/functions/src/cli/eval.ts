/**
 * `ganserve eval <model> --dataset <zip>`: quality numbers for a model, from the registry (name[/--version])
 * or from a model folder (models/<name>/ with model.json + weights.safetensors). The family decides the
 * evaluation: CycleGAN L1/SSIM against paired targets with the identity baseline, SPADE L1/SSIM against the
 * rendered ground truth, StyleGAN2 domain FID and precision/recall on Fashion-MNIST classifier features, plus
 * Inception FID (pytorch-fid's network, comparable with published FIDs) when --inception names its weights;
 * DCGAN the same domain scores plus the classifier's confidence on its samples and on the real set.
 * Prints a table, then one JSON line (the only output with --json); progress goes to stderr.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Settings } from "@ganserve/core/config";
import { evaluateCycleGAN, evaluateDcgan, evaluateSpade, evaluateStyleGAN2, type ClassScores, type Evaluation, type StyleGAN2Evaluation } from "@ganserve/core/eval/evaluate";
import { evaluateInceptionFID, type InceptionProgress } from "@ganserve/core/eval/inception-fid";
import { INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_SHA256_PREFIX, InceptionV3 } from "@ganserve/core/eval/inception";
import { CLASSIFIER_RELATIVE_PATH, loadFashionClassifier, loadModelFolder, type ModelFiles } from "@ganserve/core/eval/load";
import type { CycleGANEngine, DcganEngine, SpadeEngine, StyleGAN2Engine } from "@ganserve/core/inference/engine";
import { tfjsEngines } from "@ganserve/core/inference/engines/tfjs";
import { ModelRegistry, sha256 } from "@ganserve/core/models/registry";
import { openStorage } from "@ganserve/core/storage/index";

export const EVAL_USAGE = `  ganserve eval <model name | model folder> --dataset <zip> [--version vN] [--seed N] [--n N]
                [--direction AtoB|BtoA] [--limit N] [--classifier <file>] [--inception <file>] [--json]`;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export class EvalUsageError extends Error {}

const INCEPTION_HELP =
  `--inception takes pytorch-fid's FID Inception weights, ${INCEPTION_WEIGHTS_FILE} (95 MB), from the pytorch-fid project's GitHub releases: ` +
  `https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/${INCEPTION_WEIGHTS_FILE}`;

/** pytorch-fid's Inception from the --inception file, or an error that says what is wrong and where to get the right file. */
async function loadInception(file: string): Promise<InceptionV3> {
  if (!fs.existsSync(file)) throw new Error(`--inception ${file} does not exist. ${INCEPTION_HELP}`);
  if (!fs.statSync(file).isFile()) throw new Error(`--inception ${file} is not a file. ${INCEPTION_HELP}`);
  const bytes = new Uint8Array(fs.readFileSync(file));
  let net: InceptionV3;
  try {
    net = await InceptionV3.fromBytes(bytes, file);
  } catch (e) {
    const why = (e as Error).message.replace(/\s*\n\s*/g, " ");
    throw new Error(`--inception: cannot use ${why.startsWith(file) ? why : `${file}: ${why}`}. ${INCEPTION_HELP}`);
  }
  if (!sha256(bytes).startsWith(INCEPTION_WEIGHTS_SHA256_PREFIX))
    console.error(
      `ganserve: warning: ${file} has the FID Inception's layout but is not ${INCEPTION_WEIGHTS_FILE} (its SHA-256 does not start with ${INCEPTION_WEIGHTS_SHA256_PREFIX}); ` +
        "its Inception FID is comparable only with numbers computed with the same weights",
    );
  return net;
}

/** Progress of the Inception features on stderr: silent for the first 5 s, then a line every 10 s and one at the end. */
function inceptionProgress(): (p: InceptionProgress) => void {
  const start = Date.now();
  let last = start;
  let realTotal = 0;
  let generatedTotal = 0;
  return (p) => {
    if (p.stage === "real") realTotal = p.total;
    else generatedTotal = p.total;
    const now = Date.now();
    const finished = p.stage === "generated" && p.done === p.total;
    if (now - start < 5000 || (now - last < 10_000 && !finished)) return;
    last = now;
    const done = p.stage === "real" ? p.done : realTotal + p.done;
    const perImage = (now - start) / done;
    const left = p.stage === "real" ? "" : ` ~${Math.ceil(((generatedTotal - p.done) * perImage) / 1000)} s left`;
    console.error(`ganserve: Inception features: ${p.stage} ${p.done}/${p.total}, ${perImage.toFixed(0)} ms/image, ${((now - start) / 1000).toFixed(0)} s${finished ? "" : left}`);
  };
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

/** What the command reports: the core evaluation, plus Inception FID for StyleGAN2 when --inception is given. */
export type EvalResult = Exclude<Evaluation, StyleGAN2Evaluation> | (StyleGAN2Evaluation & { inception_fid?: number });

/** A conditional StyleGAN2's class rows: does the classifier see each class, and do two classes draw alike. */
function classRows(c: ClassScores): string[][] {
  const real = (v: number | undefined) => (v === undefined ? "" : ` (real ${f4(v)})`);
  return [
    [`class accuracy: samples the classifier puts in their class${real(c.real_accuracy)}`, f4(c.accuracy)],
    ["per-class accuracy", c.per_class_accuracy.map((a) => a.toFixed(2)).join(" ")],
    [`closest class mean images: |difference| of classes ${c.closest_classes.join(" and ")}${real(c.real_mean_image_min_distance)}`, f4(c.mean_image_min_distance)],
  ];
}

export function formatTable(name: string, e: EvalResult): string {
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
            ...(e.family === "dcgan"
              ? [
                  ["classifier confidence, generated (mean top-class p)", f4(e.confidence)],
                  ["classifier confidence, real", f4(e.real_confidence)],
                ]
              : []),
            ...(e.family === "stylegan2" && e.inception_fid !== undefined ? [["Inception FID (pytorch-fid pool3 features)", e.inception_fid.toFixed(3)]] : []),
            ...(e.family === "stylegan2" && e.classes ? classRows(e.classes) : []),
            [`precision (k=${e.k})`, f4(e.precision)],
            [`recall (k=${e.k})`, f4(e.recall)],
            ["generated / real", `${e.generated} / ${e.real}`],
          ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c])).join(" | ")} |`;
  return [`${name} (${e.family})`, line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

export async function runEval(args: string[], settings: Settings): Promise<EvalResult> {
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
  if (values.inception && record.family !== "stylegan2")
    console.error(
      `ganserve: --inception does not apply to ${record.family} models: Inception FID compares a generator's samples with a real set (StyleGAN2); ` +
        `${record.family} is scored against paired targets with L1/SSIM. Ignoring it.`,
    );
  const engine = await tfjsEngines(settings.GANSERVE_BACKEND).load(record, weights);
  let result: EvalResult;
  try {
    if (record.family === "cyclegan")
      result = await evaluateCycleGAN(engine as CycleGANEngine, zip, { direction: values.direction as "AtoB" | "BtoA" | undefined, limit });
    else if (record.family === "spade") result = await evaluateSpade(engine as SpadeEngine, zip, { seed, limit });
    else if (record.family === "dcgan") {
      const classifier = loadFashionClassifier(values.classifier ?? path.join(REPO_ROOT, CLASSIFIER_RELATIVE_PATH));
      try {
        result = await evaluateDcgan(engine as DcganEngine, zip, { seed, n: int("n", values.n, 1000), classifier, limitReal: limit });
      } finally {
        classifier.dispose();
      }
    } else {
      const n = int("n", values.n, 1000);
      // Loaded first, so a wrong file fails in seconds rather than after the domain FID.
      const inception = values.inception ? await loadInception(values.inception) : undefined;
      try {
        const classifier = loadFashionClassifier(values.classifier ?? path.join(REPO_ROOT, CLASSIFIER_RELATIVE_PATH));
        let sg2: StyleGAN2Evaluation;
        try {
          sg2 = await evaluateStyleGAN2(engine as StyleGAN2Engine, zip, { seed, n, classifier, limitReal: limit });
        } finally {
          classifier.dispose();
        }
        if (inception) {
          const i = await evaluateInceptionFID(engine as StyleGAN2Engine, zip, { seed, n, net: inception, limitReal: limit, onProgress: inceptionProgress() });
          result = { ...sg2, inception_fid: i.inception_fid };
        } else result = sg2;
      } finally {
        inception?.dispose();
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
