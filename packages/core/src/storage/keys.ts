/**
 * Every storage key layout, in one place. The bucket holds:
 *
 *   models/<name>/owner.json   who owns the name: written once (If-None-Match: *) by the first fine-tune or
 *                              import that claims it; the name's versions are published only for that owner
 *   models/<name>/<version>/directions/  sefa.json (the version's SeFa directions, computed on first use) and
 *                              <owner>/<direction>.json (uploaded directions; owner: the tenant or "operator")
 *   models/<name>/<version>/   model.json (the version record, written last), weights.safetensors, sample.png,
 *                              examples/<file>.png (example inputs listed in model.json)
 *   models/<name>/<version>/compiled/<key>.onnx   graphs ONNX Runtime optimised for one CPU and runtime
 *                              (inference/engines/ort-cache.ts: the key hashes weights, code, runtime and CPU),
 *                              written by the first serving process that built them, read by every later one
 *   datasets/<id>/             dataset.json (the record), upload.zip (what the client PUT to the presigned
 *                              URL, deleted by a successful finalize), files/<key> (every accepted image,
 *                              written by finalize), index.json
 *   datasets/_tenants/<tenant>/<id>   an empty marker per dataset, written before its record: listing a
 *                              tenant's datasets lists this folder and reads only that tenant's records
 *   jobs/<id>/                 job.json, cancel, events/<seq>.json, checkpoints/step-<n>.safetensors +
 *                              checkpoints/latest.json, samples/step-<n>.png
 *   jobs/_tenants/<tenant>/<id>   the same per-tenant index for fine-tunes (slot counts, lists)
 *   outputs/<tenant>/<day>/    generated images handed out as presigned URLs (expire after a few days)
 *   auth/keys/<id>.json        API key records (hashes only)
 *   predictions/<tenant>/<id>.json   prediction records, nothing else, so a listing is one page of records
 *                              (ids sort newest first)
 *   predictions-data/<tenant>/<id>/  input.json (the full input, translate's files in base64), output-<attempt>.json
 *                              (the result), <attempt>-<n>.<ext> (images): deleted by retention, the record stays
 *   predictions-state/<tenant>/ <id>.done.json (the terminal record, written once with If-None-Match: *, so
 *                              a second completion never overwrites the first), idempotency/<sha256>.json
 *
 * Services, quotas, tests and scripts build keys with these functions instead of spelling the paths; the
 * deployment's per-role bucket permissions are granted on these prefixes.
 */

/** Zero-padded so that listing a folder returns steps and events in order. */
const pad8 = (n: number) => String(n).padStart(8, "0");

export const MODEL_RECORD_FILE = "model.json";
export const MODEL_WEIGHTS_FILE = "weights.safetensors";
export const MODEL_SAMPLE_FILE = "sample.png";

export const modelKeys = {
  root: "models/",
  /** Everything of one model: its version folders. */
  prefix: (name: string) => `models/${name}/`,
  /** The name's owner record (registry.ts `claim`): a file, so version listings (by "/" prefixes) skip it. */
  owner: (name: string) => `models/${name}/owner.json`,
  version: (name: string, version: string) => `models/${name}/${version}/`,
  record: (name: string, version: string) => `${modelKeys.version(name, version)}${MODEL_RECORD_FILE}`,
  weights: (name: string, version: string) => `${modelKeys.version(name, version)}${MODEL_WEIGHTS_FILE}`,
  sample: (name: string, version: string) => `${modelKeys.version(name, version)}${MODEL_SAMPLE_FILE}`,
  /** An example input listed in model.json (`examples/<file>.png`, validated by ModelExample). */
  example: (name: string, version: string, file: string) => `${modelKeys.version(name, version)}${file}`,
  /** A graph optimised by ONNX Runtime (ort-cache.ts); `key` is that cache's hex key. */
  compiled: (name: string, version: string, key: string) => `${modelKeys.version(name, version)}compiled/${key}.onnx`,
  /**
   * Every version's compiled graphs, as an IAM resource pattern (the serving task may write only these). IAM's
   * `*` also matches "/", so the suffix matters: without it the pattern also matched a tenant named "compiled"'s
   * directions (`models/<name>/<version>/directions/compiled/<d>.json`).
   */
  compiledPattern: "models/*/*/compiled/*.onnx",
} as const;

/** Latent directions stored with a model version (inference/directions.ts). */
export const directionKeys = {
  prefix: (name: string, version: string) => `${modelKeys.version(name, version)}directions/`,
  sefa: (name: string, version: string) => `${directionKeys.prefix(name, version)}sefa.json`,
  /** `owner`: a tenant id or "operator"; `direction` matches api/inference.ts's DirectionName. */
  owned: (name: string, version: string, owner: string) => `${directionKeys.prefix(name, version)}${owner}/`,
  direction: (name: string, version: string, owner: string, direction: string) => `${directionKeys.owned(name, version, owner)}${direction}.json`,
} as const;

export const datasetKeys = {
  root: "datasets/",
  prefix: (id: string) => `datasets/${id}/`,
  record: (id: string) => `${datasetKeys.prefix(id)}dataset.json`,
  upload: (id: string) => `${datasetKeys.prefix(id)}upload.zip`,
  index: (id: string) => `${datasetKeys.prefix(id)}index.json`,
  files: (id: string) => `${datasetKeys.prefix(id)}files/`,
  /** `key` is already safe (datasets/inspect's safeKeyFor): nothing a client names becomes a key otherwise. */
  file: (id: string, key: string) => `${datasetKeys.files(id)}${key}`,
  /** One tenant's markers (tenant ids are key-safe: auth's TENANT_PATTERN). Not an id: ids start with `ds_`. */
  tenantIndex: (tenant: string) => `datasets/_tenants/${tenant}/`,
  tenantEntry: (tenant: string, id: string) => `datasets/_tenants/${tenant}/${id}`,
} as const;

export const jobKeys = {
  root: "jobs/",
  prefix: (id: string) => `jobs/${id}/`,
  record: (id: string) => `${jobKeys.prefix(id)}job.json`,
  cancel: (id: string) => `${jobKeys.prefix(id)}cancel`,
  events: (id: string) => `${jobKeys.prefix(id)}events/`,
  event: (id: string, seq: number) => `${jobKeys.events(id)}${pad8(seq)}.json`,
  /** The sequence number of a key made by `event`. */
  eventSeq: (key: string) => Number(key.slice(-13, -5)),
  checkpoint: (id: string, step: number) => `${jobKeys.prefix(id)}checkpoints/step-${pad8(step)}.safetensors`,
  latestCheckpoint: (id: string) => `${jobKeys.prefix(id)}checkpoints/latest.json`,
  samples: (id: string) => `${jobKeys.prefix(id)}samples/`,
  sample: (id: string, step: number) => `${jobKeys.samples(id)}step-${pad8(step)}.png`,
  /** One tenant's markers, as datasetKeys.tenantIndex. Not an id: ids start with `ft_`. */
  tenantIndex: (tenant: string) => `jobs/_tenants/${tenant}/`,
  tenantEntry: (tenant: string, id: string) => `jobs/_tenants/${tenant}/${id}`,
} as const;

export const outputKeys = {
  root: "outputs/",
  /** One generated image: `name` unique, `ext` without the dot. */
  image: (tenant: string | undefined, day: string, name: string, ext: string) => `outputs/${tenant ?? "default"}/${day}/${name}.${ext}`,
} as const;

export const predictionKeys = {
  root: "predictions/",
  dataRoot: "predictions-data/",
  stateRoot: "predictions-state/",
  /** One tenant's records (and nothing else). */
  tenant: (tenant: string) => `predictions/${tenant}/`,
  record: (tenant: string, id: string) => `predictions/${tenant}/${id}.json`,
  /** The id of a key made by `record`. */
  idOf: (key: string) => key.slice(key.lastIndexOf("/") + 1, -".json".length),
  /** Everything retention deletes: input and images (the result itself sits in the end record, `done`). */
  data: (tenant: string, id: string) => `predictions-data/${tenant}/${id}/`,
  input: (tenant: string, id: string) => `predictions-data/${tenant}/${id}/input.json`,
  /** Each attempt writes its own images, so a redelivered run never overwrites the first one's. */
  image: (tenant: string, id: string, attempt: number, n: number, ext: string) => `predictions-data/${tenant}/${id}/${attempt}-${n}.${ext}`,
  /** One tenant's end records (and idempotency keys, under `idempotency/`). */
  state: (tenant: string) => `predictions-state/${tenant}/`,
  /** The end record, result included: written once (If-None-Match), it alone decides how a prediction ended. */
  done: (tenant: string, id: string) => `predictions-state/${tenant}/${id}.done.json`,
  /** The id of a key made by `done`, or undefined for other keys under `state`. */
  idOfDone: (key: string) => /\/(p[a-z0-9]{21})\.done\.json$/.exec(key)?.[1],
  idempotency: (tenant: string, hash: string) => `predictions-state/${tenant}/idempotency/${hash}.json`,
} as const;

export const authKeys = {
  root: "auth/keys/",
  key: (id: string) => `auth/keys/${id}.json`,
} as const;

/** The prefixes the deployment scopes its bucket permissions to (infra/storage.ts and the roles in infra/). */
export const STORAGE_PREFIXES = [datasetKeys.root, modelKeys.root, jobKeys.root, outputKeys.root, predictionKeys.root, predictionKeys.dataRoot, predictionKeys.stateRoot] as const;
