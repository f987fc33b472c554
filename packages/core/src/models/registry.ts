/**
 * The model registry is storage itself: `models/<name>/<version>/{weights.safetensors, model.json}` (the
 * layout is storage/keys.ts's `modelKeys`).
 * Publishing writes the weights first and the version record last, then reads the weights back and checks
 * their SHA-256, so a crash or a failed write never leaves a version that looks complete but is not.
 *
 * A name belongs to whoever claims it first: `models/<name>/owner.json`, written with `If-None-Match: *`
 * when a fine-tune is created and checked again when anything publishes, so of two tenants racing for a
 * new name exactly one gets it. Demo models and `ganserve import` publish as the operator (tenant null).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { MODEL_WEIGHTS_FILE, modelKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import { ModelJson, ModelName, type Family } from "./model-json.ts";

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const versionNumber = (v: string) => Number(v.slice(1));

export interface ModelSummary {
  name: string;
  family: Family;
  versions: string[];
  latest: string;
  record: ModelJson;
}

export interface PublishInput {
  name: string;
  family: Family;
  config: Record<string, unknown>;
  weights: Uint8Array;
  dtype: "float32" | "float16";
  /** Explicit version; default: one past the highest existing. */
  version?: string;
  extra?: Partial<Omit<ModelJson, "schema_version" | "name" | "version" | "family" | "config" | "weights" | "created_at">>;
}

/** `models/<name>/owner.json`. `tenant` null: the operator's (shared models: demos, `ganserve import`). */
export const NameOwner = z.object({ name: ModelName, tenant: z.string().nullable(), claimed_at: z.string() });
export type NameOwner = z.infer<typeof NameOwner>;

/**
 * 409 for a name someone else owns. The same answer whoever the owner is and whether it has published yet,
 * so it says the name is in use and nothing about by whom.
 */
export const nameTaken = (name: string) =>
  new ApiError("conflict", `model name '${name}' is taken`, { reason: "model_name_taken", name });

/** Whether `e` is `nameTaken`'s error. */
export const isNameTaken = (e: unknown) =>
  e instanceof ApiError && (e.details as { reason?: string } | undefined)?.reason === "model_name_taken";

/** Who may see a model: shared base models (no tenant) are public, the rest only to their tenant. */
export const visibleTo = (record: ModelJson, tenant: string | undefined) =>
  record.tenant === undefined || tenant === undefined || record.tenant === tenant;

export class ModelRegistry {
  /**
   * Resolved versions, kept briefly: resolving costs several storage round trips, which dominated a small
   * model's request time. A new version (published here or by a worker process) is seen within `ttlMs`.
   */
  private readonly resolved = new Map<string, { record: ModelJson; expires: number }>();

  constructor(
    private readonly storage: Storage,
    private readonly ttlMs = 2000,
  ) {}

  async versions(name: string): Promise<string[]> {
    const ids = await this.storage.listPrefixes(modelKeys.prefix(name));
    const complete: string[] = [];
    // Only versions whose record exists count: a half-written version (weights but no model.json) is invisible.
    for (const id of ids.filter((v) => /^v[1-9][0-9]*$/.test(v)))
      if (await this.storage.exists(modelKeys.record(name, id))) complete.push(id);
    return complete.sort((a, b) => versionNumber(a) - versionNumber(b));
  }

  /**
   * The owner of a name: a tenant id, null for the operator, undefined while nobody has claimed it. A name
   * published before owner records existed belongs to the tenant of its latest version (null: a shared model).
   */
  async owner(name: string): Promise<string | null | undefined> {
    const recorded = await this.ownerRecord(name);
    return recorded ? recorded.tenant : this.ownerByVersions(name);
  }

  private async ownerByVersions(name: string): Promise<string | null | undefined> {
    const versions = await this.versions(name);
    if (versions.length === 0) return undefined;
    return (await this.record(name, versions[versions.length - 1]))?.tenant ?? null;
  }

  private async ownerRecord(name: string): Promise<NameOwner | undefined> {
    const raw = await this.storage.getJson(modelKeys.owner(name));
    if (raw === undefined) return undefined;
    const parsed = NameOwner.safeParse(raw);
    // Unreadable: nobody may publish under it until an operator looks, rather than guess an owner.
    if (!parsed.success) throw new ApiError("internal", `the owner record of model '${name}' is unreadable`);
    return parsed.data;
  }

  /**
   * Claims `name` for `tenant` (undefined: the operator), or confirms it already has it; 409 conflict
   * (details.reason "model_name_taken") when someone else owns it. The claim is a conditional write, so of
   * concurrent claims exactly one wins and the others read the winner. A name published before owner records
   * existed gets its record written for its owner on the first claim.
   */
  async claim(name: string, tenant: string | undefined): Promise<void> {
    const want = tenant ?? null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const recorded = await this.ownerRecord(name);
      if (recorded) {
        if (recorded.tenant !== want) throw nameTaken(name);
        return;
      }
      const legacy = await this.ownerByVersions(name);
      if (legacy !== undefined && legacy !== want) throw nameTaken(name);
      const record: NameOwner = { name, tenant: want, claimed_at: new Date().toISOString() };
      if (await this.storage.putIfAbsent(modelKeys.owner(name), JSON.stringify(record), { contentType: "application/json" })) return;
      // A record exists now (ours from an earlier claim, or a concurrent claim's): the next round reads it.
    }
    throw new ApiError("storage_unavailable", `could not settle who owns model name '${name}'; retry`, undefined, 1);
  }

  async record(name: string, version: string): Promise<ModelJson | undefined> {
    const raw = await this.storage.getJson(modelKeys.record(name, version));
    if (raw === undefined) return undefined;
    const parsed = ModelJson.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
  }

  /** Resolves `latest` and checks visibility; throws model_not_found / version_not_found. */
  async resolve(name: string, version: string = "latest", tenant?: string): Promise<ModelJson> {
    const key = `${tenant ?? ""}\u0000${name}\u0000${version}`;
    const hit = this.resolved.get(key);
    if (hit && hit.expires > Date.now()) return hit.record;
    const record = await this.resolveUncached(name, version, tenant);
    if (this.resolved.size > 1000) this.resolved.clear();
    this.resolved.set(key, { record, expires: Date.now() + this.ttlMs });
    return record;
  }

  private async resolveUncached(name: string, version: string, tenant?: string): Promise<ModelJson> {
    const versions = await this.versions(name);
    if (versions.length === 0) throw new ApiError("model_not_found", `model '${name}' does not exist`);
    const latest = await this.record(name, versions[versions.length - 1]);
    // Visibility before the version check: a version error would tell another tenant the model exists.
    if (latest && !visibleTo(latest, tenant)) throw new ApiError("model_not_found", `model '${name}' does not exist`);
    const id = version === "latest" ? versions[versions.length - 1] : version;
    if (!versions.includes(id)) throw new ApiError("version_not_found", `model '${name}' has no version '${version}'`, { versions });
    const record = await this.record(name, id);
    if (!record) throw new ApiError("version_not_found", `model '${name}' version '${id}' has an unreadable record`);
    if (!visibleTo(record, tenant)) throw new ApiError("model_not_found", `model '${name}' does not exist`);
    return record;
  }

  async list(tenant?: string): Promise<ModelSummary[]> {
    const names = await this.storage.listPrefixes(modelKeys.root);
    const out: ModelSummary[] = [];
    for (const name of names.sort()) {
      const versions = await this.versions(name);
      if (versions.length === 0) continue;
      const latest = versions[versions.length - 1];
      const record = await this.record(name, latest);
      if (!record || !visibleTo(record, tenant)) continue;
      out.push({ name, family: record.family, versions, latest, record });
    }
    return out;
  }

  /** Loads and verifies the weights of a version. */
  async weights(record: ModelJson): Promise<Uint8Array> {
    const key = modelKeys.weights(record.name, record.version);
    const bytes = await this.storage.get(key);
    if (!bytes) throw new ApiError("version_not_found", `weights of ${record.name}/${record.version} are missing`);
    if (sha256(bytes) !== record.weights.sha256)
      throw new ApiError("internal", `weights of ${record.name}/${record.version} fail their checksum`);
    return bytes;
  }

  /** Stores a sample image next to a version (before its record, like the weights); returns its key. */
  async putSample(name: string, version: string, png: Uint8Array): Promise<string> {
    const key = modelKeys.sample(name, version);
    await this.storage.put(key, png, { contentType: "image/png" });
    return key;
  }

  /** Stores an example input listed in the version's record (`examples/<file>.png`), before the record. */
  async putExample(name: string, version: string, file: string, png: Uint8Array): Promise<void> {
    await this.storage.put(modelKeys.example(name, version, file), png, { contentType: "image/png" });
  }

  /** Publishes the next (or the given) version; 409 model_name_taken unless the publisher owns the name. */
  async publish(input: PublishInput): Promise<ModelJson> {
    await this.claim(input.name, input.extra?.tenant);
    const existing = await this.storage.listPrefixes(modelKeys.prefix(input.name));
    const highest = existing.filter((v) => /^v[1-9][0-9]*$/.test(v)).map(versionNumber);
    const version = input.version ?? `v${Math.max(0, ...highest) + 1}`;
    if (await this.storage.exists(modelKeys.record(input.name, version)))
      throw new ApiError("conflict", `model '${input.name}' already has version '${version}'`);
    const digest = sha256(input.weights);
    await this.storage.put(modelKeys.weights(input.name, version), input.weights, { contentType: "application/octet-stream" });
    const stored = await this.storage.get(modelKeys.weights(input.name, version));
    if (!stored || sha256(stored) !== digest)
      throw new ApiError("storage_unavailable", `weights of ${input.name}/${version} did not read back intact; not published`);
    const record = ModelJson.parse({
      ...input.extra,
      schema_version: 1,
      name: input.name,
      version,
      family: input.family,
      config: input.config,
      created_at: new Date().toISOString(),
      weights: { file: MODEL_WEIGHTS_FILE, sha256: digest, bytes: input.weights.byteLength, dtype: input.dtype },
    });
    await this.storage.putJson(modelKeys.record(input.name, version), record);
    for (const k of this.resolved.keys()) if (k.includes(`\u0000${input.name}\u0000`)) this.resolved.delete(k);
    return record;
  }
}
