/**
 * Every setting ganserve reads from its environment, in one schema. Defaults make `npm start` work with
 * nothing set; a bad value stops the process with one line naming the variable.
 *
 * In AWS the same names are filled from SST links (see `sstOverrides`), so the code never branches on where
 * it runs: local dev, `sst dev`, the Lambda control plane and the GPU containers all call `loadSettings()`.
 */
import path from "node:path";
import { Resource } from "sst/resource";
import { z } from "zod";

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

export const SettingsSchema = z.object({
  PORT: port.default(3000).describe("HTTP port of the API and playground"),
  HOST: z.string().min(1).default("127.0.0.1").describe("Interface to listen on (0.0.0.0 in containers)"),
  GANSERVE_DATA_DIR: z.string().min(1).default("./.ganserve").describe("Local data: embedded storage, dev key"),
  GANSERVE_S3_ENDPOINT: z
    .url()
    .optional()
    .describe("S3-compatible endpoint; unset locally = start the embedded server, unset in AWS = S3 itself"),
  GANSERVE_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid S3 bucket name")
    .default("ganserve")
    .describe("Bucket holding models/, datasets/, jobs/, outputs/"),
  GANSERVE_S3_REGION: z.string().default("us-east-1").describe("Region for the S3 client"),
  GANSERVE_EMBEDDED_S3_PORT: port.default(0).describe("Port of the embedded S3 server (0 = any free port)"),
  GANSERVE_EMBEDDED_S3: bool.optional().describe("Force the embedded S3 server on or off (default: on when no endpoint)"),
  GANSERVE_API_KEYS: z
    .string()
    .optional()
    .describe("Comma-separated API keys; unset = a dev key is generated into the data dir"),
  GANSERVE_BACKEND: z
    .enum(["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"])
    .default("auto")
    .describe("TF.js backend (auto = best available)"),
  GANSERVE_WASM_THREADS: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe("Threads of the wasm backend (training, fallback engine): unset, 0 or 1 = its single-threaded build; 2 or more = its threaded build, slower at the demo recipes on 2 cores (docs/performance.md)"),
  GANSERVE_ENGINE: z
    .enum(["auto", "onnx", "tfjs"])
    .default("auto")
    .describe("Serving engine: auto = ONNX Runtime, TF.js for what ONNX does not cover"),
  GANSERVE_ORT_PROVIDERS: z
    .string()
    .regex(/^(cpu|cuda|tensorrt|dml|coreml|webgpu)(,(cpu|cuda|tensorrt|dml|coreml|webgpu))*$/, "comma-separated ONNX Runtime execution providers, e.g. cuda,cpu")
    .default("cpu")
    .describe("ONNX Runtime execution providers in order of preference (the GPU task sets cuda,cpu)"),
  GANSERVE_ORT_CACHE_DIR: z
    .string()
    .optional()
    .describe("Directory of ONNX Runtime-optimised models, so a model's second start skips export and optimisation (unset = <data dir>/ort-cache; empty = off); what one process builds is also copied to the model store for the next"),
  GANSERVE_MAX_BODY_BYTES: positiveInt.default(20 * 1024 * 1024).describe("Largest request body accepted"),
  GANSERVE_MAX_UPLOAD_BYTES: positiveInt.default(512 * 1024 * 1024).describe("Largest dataset zip an upload form accepts"),
  GANSERVE_MAX_PIXELS: positiveInt.default(4096 * 4096).describe("Largest input image (width × height)"),
  GANSERVE_MAX_VIDEO_FRAMES: positiveInt.default(1800).describe("Most frames (× grid cells) one video may have; more is 422 before any work"),
  GANSERVE_MAX_PASS_BYTES: positiveInt
    .default(512 * 1024 * 1024)
    .describe("Estimated memory one forward pass may use: bounds a CycleGAN's network input (preprocess=none) and how many images share a pass"),
  GANSERVE_MODEL_CACHE_BYTES: positiveInt
    .default(2 * 1024 * 1024 * 1024)
    .describe("Memory budget for loaded models (LRU)"),
  GANSERVE_MAX_BATCH: positiveInt.default(8).describe("Largest dynamic batch per forward pass"),
  GANSERVE_MAX_BATCH_DELAY_MS: z.coerce.number().int().min(0).default(10).describe("Longest wait for a batch to fill; a pass starts sooner once as many requests wait as the previous pass had"),
  GANSERVE_MAX_QUEUE: positiveInt.default(64).describe("Queued requests per model before 429"),
  GANSERVE_REQUEST_TIMEOUT_MS: positiveInt.default(60_000).describe("Deadline of one inference request"),
  GANSERVE_WEB_DIR: z.string().optional().describe("Built playground to serve at / (default packages/web/dist)"),
  GANSERVE_DEMO_MODELS: bool.default(true).describe("Register the bundled demo models on start"),
  GANSERVE_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .describe("Log level of the JSON logs"),
  GANSERVE_RATE_LIMIT_RPM: positiveInt.default(600).describe("Requests per minute per API key (token bucket; bursts up to a sixth)"),
  GANSERVE_MAX_CONCURRENT_FINE_TUNES: positiveInt.default(2).describe("Fine-tunes queued or running per tenant"),
  GANSERVE_TENANT_DATASET_BYTES: positiveInt
    .default(2 * 1024 * 1024 * 1024)
    .describe("Dataset storage per tenant (uploads + indexed files)"),
  GANSERVE_LAUNCHER: z
    .enum(["local", "batch", "none"])
    .optional()
    .describe("Where fine-tunes run: local child processes, AWS Batch (needs the FineTune link), or none (this process never runs or submits them); unset = batch when linked, none when deployed, local otherwise"),
  GANSERVE_PREDICTION_WAIT_S: z.coerce.number().int().min(0).default(60).describe("How long /v1/generate, /v1/translate and a bare `Prefer: wait` hold a prediction's request before answering 202"),
  GANSERVE_PREDICTION_MAX_WAIT_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(60)
    .describe("Longest wait a request may ask for (`Prefer: wait=N` is clamped to it; 28 when deployed behind API Gateway)"),
  GANSERVE_PREDICTION_DEADLINE_S: positiveInt.default(1800).describe("Default deadline of a prediction: canceled if it started by then, failed (deadline_exceeded) if not"),
  GANSERVE_PREDICTION_RETENTION_S: positiveInt.default(3600).describe("Prediction outputs are deleted this long after completion (the record stays, data_removed: true)"),
  GANSERVE_PREDICTION_QUEUE_URL: z.url().optional().describe("SQS queue URL of predictions (from the PredictionQueue link when deployed); unset = the in-process queue and worker"),
  GANSERVE_QUEUE_VISIBILITY_S: positiveInt.default(60).describe("Visibility timeout of a received prediction message; a running worker extends it, a dead one lets it reappear"),
  GANSERVE_WORKER_CONCURRENCY: positiveInt.default(64).describe("Predictions one worker runs at once (they share the dynamic batches)"),
  GANSERVE_WORKER_START_DELAY_MS: z.coerce.number().int().min(0).default(0).describe("Delay before the in-process worker starts pulling (a local stand-in for a cold GPU boot)"),
  GANSERVE_HOST: z.string().min(1).optional().describe("Interface of the prediction worker's health server (default 0.0.0.0)"),
  GANSERVE_SYNC_INFERENCE: bool
    .default(false)
    .describe("Comparison switch (bench:http's direct column): run /v1/generate and /v1/translate inside the request instead of as predictions. Never when deployed, where the API has no models"),
  GANSERVE_PRODUCTION: bool.default(false).describe("Production mode: stricter webhooks, no dev key"),
  GANSERVE_SECRET_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, "must be base64 of 32 bytes (openssl rand -base64 32)")
    .optional()
    .describe("Key (base64, 32 bytes) encrypting webhook secrets at rest; required in production, generated into the data dir otherwise"),
});

export type Settings = z.infer<typeof SettingsSchema> & { dataDir: string };

export class SettingsError extends Error {
  override name = "SettingsError";
}

/**
 * One SST link's properties, or undefined when `name` is not linked. ECS tasks, Batch jobs and `sst dev` get
 * links as SST_RESOURCE_<Name> env JSON; the Lambda gets only SST_RESOURCE_App in its env and the rest in the
 * encrypted `resource.enc` beside its bundle (SST_KEY_FILE + SST_KEY), which SST's `Resource` decrypts.
 */
export function sstLink(name: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | undefined {
  const raw = env[`SST_RESOURCE_${name}`];
  if (raw) {
    try {
      return JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new SettingsError(`SST_RESOURCE_${name}: not valid JSON`);
    }
  }
  // `Resource` reads the process's own env once; only consult it where the links file is what the env names.
  if (!env.SST_KEY_FILE) return undefined;
  let resources: Record<string, unknown>;
  try {
    resources = Resource as unknown as Record<string, unknown>;
    if (!(name in resources)) return undefined;
  } catch (err) {
    throw new SettingsError(`SST links in ${env.SST_KEY_FILE} could not be read: ${(err as Error).message}`);
  }
  return resources[name] as Record<string, unknown>;
}

/** Settings that SST links supply when deployed, so the code needs no extra wiring. */
function sstOverrides(env: NodeJS.ProcessEnv): Record<string, string> {
  const link = (name: string) => sstLink(name, env);
  const out: Record<string, string> = {};
  const storage = link("Storage");
  if (typeof storage?.name === "string") {
    out.GANSERVE_S3_BUCKET = storage.name;
    out.GANSERVE_EMBEDDED_S3 = "false";
  } else if (link("App")) {
    // Deployed without its bucket, a process would otherwise start an embedded store on its local disk and
    // serve from state that vanishes with it.
    throw new SettingsError("SST links are active but Storage is not linked: refusing to start an embedded store");
  }

  const keys = link("ApiKeys");
  if (typeof keys?.value === "string") out.GANSERVE_API_KEYS = keys.value;
  const secretKey = link("SecretKey");
  if (typeof secretKey?.value === "string") out.GANSERVE_SECRET_KEY = secretKey.value;
  const queue = link("PredictionQueue");
  if (typeof queue?.url === "string") out.GANSERVE_PREDICTION_QUEUE_URL = queue.url;
  // API Gateway's integration ends a request at 30 s: waits are clamped below that when deployed.
  if (link("App") && env.GANSERVE_PREDICTION_MAX_WAIT_S === undefined) out.GANSERVE_PREDICTION_MAX_WAIT_S = "28";
  // Deployed, the API Lambda has no models: generate and translate always go through the queue.
  if (link("App")) out.GANSERVE_SYNC_INFERENCE = "false";
  // Deployed (links active) means production unless the environment says otherwise explicitly.
  if (link("App") && env.GANSERVE_PRODUCTION === undefined) out.GANSERVE_PRODUCTION = "true";
  return out;
}

const SECRET_SETTINGS = new Set(["GANSERVE_SECRET_KEY"]);

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const merged = { ...env, ...sstOverrides(env) };
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(SettingsSchema.shape)) {
    const v = merged[key];
    input[key] = v === "" ? undefined : v;
  }
  const parsed = SettingsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    // Keys are never echoed into logs.
    const shown = SECRET_SETTINGS.has(name) ? "(not shown)" : JSON.stringify(input[name]);
    throw new SettingsError(`invalid ${name}=${shown}: ${issue.message}`);
  }
  return { ...parsed.data, dataDir: path.resolve(parsed.data.GANSERVE_DATA_DIR) };
}

export type LauncherMode = { mode: "local" } | { mode: "none" } | { mode: "batch"; jobQueue: string; jobDefinition: string };

/**
 * Where this process sends fine-tunes. An explicit GANSERVE_LAUNCHER wins; otherwise AWS Batch when the
 * FineTune link is present, nothing when deployed without it (a deployed process never spawns local
 * trainers), local child processes in development.
 */
export function launcherMode(settings: Settings, env: NodeJS.ProcessEnv = process.env): LauncherMode {
  const link = sstLink("FineTune", env);
  const mode = settings.GANSERVE_LAUNCHER ?? (link ? "batch" : sstLink("App", env) ? "none" : "local");
  if (mode !== "batch") return { mode };
  const { jobQueue, jobDefinition } = link ?? {};
  if (typeof jobQueue !== "string" || typeof jobDefinition !== "string") {
    throw new SettingsError("GANSERVE_LAUNCHER=batch needs the FineTune link (jobQueue, jobDefinition)");
  }
  return { mode, jobQueue, jobDefinition };
}

/** The configuration table for the README, generated from the schema so docs cannot drift. */
export function settingsTable(): string {
  const rows = Object.entries(SettingsSchema.shape).map(([name, schema]) => {
    const s = schema as z.ZodType;
    const def = (s as unknown as { def?: { defaultValue?: unknown } }).def?.defaultValue;
    const shown = def === undefined ? "—" : `\`${String(def)}\``;
    return `| \`${name}\` | ${shown} | ${s.description ?? ""} |`;
  });
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
