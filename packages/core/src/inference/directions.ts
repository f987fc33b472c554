/**
 * Directions in w stored with a StyleGAN2 version (keys: storage/keys.ts `directionKeys`):
 * - SeFa's, computed from the weights the first time anything asks for them (listing or an edit) and stored as
 *   `sefa.json`, so every shipped, imported or fine-tuned version has them without a separate step;
 * - uploaded ones (e.g. InterFaceGAN boundaries), stored per owner (the caller's tenant, "operator" for keys
 *   without one) and normalised to unit length, so a strength means the same distance for every direction.
 * An edit names a direction of the version it runs on; any other name (another model's, another tenant's) is 404.
 */
import { z } from "zod";
import { MAX_EDIT_STRENGTH, type DirectionInfo, type Edit } from "../api/inference.ts";
import { readSafetensors } from "../checkpoints/safetensors.ts";
import { ApiError } from "../errors.ts";
import type { ModelJson } from "../models/model-json.ts";
import type { ModelRegistry } from "../models/registry.ts";
import { expandLayers } from "./params.ts";
import { directionKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import { toBase64, wsFromW, type LatentShape } from "../latents/codec.ts";
import { sefa } from "../latents/sefa.ts";
import { synthesisKeys } from "../networks/stylegan2/synthesis.ts";

/** How many SeFa directions a version keeps (largest eigenvalues); all eigenvalues are kept. */
export const SEFA_KEPT = 32;
const SEFA_PREFIX = "sefa-";

const StoredSefa = z.object({
  schema_version: z.literal(1),
  layers: z.array(z.string()),
  w_dim: z.number().int(),
  values: z.array(z.number()),
  /** base64 float32 [kept, w_dim] */
  vectors: z.string(),
});
type StoredSefa = z.infer<typeof StoredSefa>;

const StoredDirection = z.object({
  schema_version: z.literal(1),
  name: z.string(),
  description: z.string().optional(),
  /** the norm of the vector as uploaded (stored unit length) */
  norm: z.number(),
  vector: z.array(z.number()),
  created_at: z.string(),
});

export interface ResolvedEdit {
  vector: Float32Array;
  strength: number;
  /** ws indices to move; undefined: all */
  layers?: number[];
}

const ownerOf = (tenant: string | undefined) => tenant ?? "operator";

const notFound = (record: ModelJson, name: string) =>
  new ApiError("not_found", `direction '${name}' does not exist for model '${record.name}' version ${record.version}`, {
    reason: "direction_not_found",
    direction: name,
  });

function vectorsOf(s: StoredSefa): Float32Array {
  const b = Buffer.from(s.vectors, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export class Directions {
  /** SeFa sets by version: computing one reads the weights and solves an eigenproblem, so it happens once. */
  private readonly sefaSets = new Map<string, Promise<StoredSefa>>();

  constructor(
    private readonly storage: Storage,
    private readonly registry: ModelRegistry,
  ) {}

  private requireStyleGAN(record: ModelJson) {
    if (record.family !== "stylegan2")
      throw new ApiError("wrong_model_family", `model '${record.name}' is a ${record.family} model; directions exist for stylegan2 models`, { family: record.family });
  }

  /** The version's SeFa set: stored, or computed now and stored. */
  sefa(record: ModelJson): Promise<StoredSefa> {
    this.requireStyleGAN(record);
    const id = `${record.name}/${record.version}`;
    let p = this.sefaSets.get(id);
    if (!p) {
      p = this.loadOrComputeSefa(record);
      this.sefaSets.set(id, p);
      p.catch(() => this.sefaSets.delete(id));
    }
    return p;
  }

  private async loadOrComputeSefa(record: ModelJson): Promise<StoredSefa> {
    const key = directionKeys.sefa(record.name, record.version);
    const stored = StoredSefa.safeParse(await this.storage.getJson(key));
    if (stored.success) return stored.data;
    const { tensors } = readSafetensors(await this.registry.weights(record), `${id(record)}/weights.safetensors`);
    const r = sefa(tensors, synthesisKeys.styleAffineWeights(tensors.keys()));
    const kept = Math.min(SEFA_KEPT, r.wDim);
    const doc: StoredSefa = {
      schema_version: 1,
      layers: r.layers,
      w_dim: r.wDim,
      values: Array.from(r.values),
      vectors: toBase64(Float32Array.from(r.vectors.subarray(0, kept * r.wDim))),
    };
    // Two first uses may race; both computed the same set, so whichever write lands is right.
    await this.storage.putJson(key, doc);
    return doc;
  }

  async list(record: ModelJson, tenant: string | undefined): Promise<{ w_dim: number; directions: DirectionInfo[] }> {
    const s = await this.sefa(record);
    const kept = vectorsOf(s).length / s.w_dim;
    const out: DirectionInfo[] = Array.from({ length: kept }, (_, k) => ({ name: `${SEFA_PREFIX}${k}`, kind: "sefa" as const, eigenvalue: s.values[k] }));
    const prefix = directionKeys.owned(record.name, record.version, ownerOf(tenant));
    for (const o of await this.storage.list(prefix)) {
      const d = StoredDirection.safeParse(await this.storage.getJson(o.key));
      if (d.success) out.push({ name: d.data.name, kind: "uploaded", description: d.data.description });
    }
    return { w_dim: s.w_dim, directions: out };
  }

  /** One direction's unit vector; 404 when this version has no direction of that name for the caller. */
  async get(record: ModelJson, tenant: string | undefined, name: string): Promise<DirectionInfo & { vector: number[] }> {
    const s = await this.sefa(record);
    if (name.startsWith(SEFA_PREFIX)) {
      const k = Number(name.slice(SEFA_PREFIX.length));
      const all = vectorsOf(s);
      if (!Number.isInteger(k) || k < 0 || (k + 1) * s.w_dim > all.length || String(k) !== name.slice(SEFA_PREFIX.length)) throw notFound(record, name);
      return { name, kind: "sefa", eigenvalue: s.values[k], vector: Array.from(all.subarray(k * s.w_dim, (k + 1) * s.w_dim)) };
    }
    const d = StoredDirection.safeParse(await this.storage.getJson(directionKeys.direction(record.name, record.version, ownerOf(tenant), name)));
    if (!d.success) throw notFound(record, name);
    return { name, kind: "uploaded", description: d.data.description, vector: d.data.vector };
  }

  async put(record: ModelJson, tenant: string | undefined, name: string, vector: number[] | string, description?: string): Promise<DirectionInfo> {
    const s = await this.sefa(record);
    if (name.startsWith(SEFA_PREFIX))
      throw new ApiError("validation_failed", `direction names starting with '${SEFA_PREFIX}' are SeFa's; choose another name`, { field: "direction" });
    const shape: LatentShape = { numWs: 1, wDim: s.w_dim };
    const v = wsFromW(shape, [vector]);
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm);
    if (!(norm > 0)) throw new ApiError("unprocessable", "vector: must not be all zeros", { field: "vector", reason: "bad_latent", expected_shape: [s.w_dim] });
    const unit = Array.from(v, (x) => Math.fround(x / norm));
    await this.storage.putJson(directionKeys.direction(record.name, record.version, ownerOf(tenant), name), {
      schema_version: 1,
      name,
      description,
      norm,
      vector: unit,
      created_at: new Date().toISOString(),
    });
    return { name, kind: "uploaded", description, vector: unit };
  }

  async delete(record: ModelJson, tenant: string | undefined, name: string): Promise<void> {
    const key = directionKeys.direction(record.name, record.version, ownerOf(tenant), name);
    if (!(await this.storage.exists(key))) throw notFound(record, name);
    await this.storage.delete(key);
  }

  /** A request's edits checked (strength range, layers) and looked up; strength-0 edits drop out (the identity). */
  async resolve(record: ModelJson, tenant: string | undefined, numWs: number, edits: Edit[] | undefined): Promise<ResolvedEdit[]> {
    if (!edits?.length) return [];
    const out: ResolvedEdit[] = [];
    for (const [i, e] of edits.entries()) {
      if (!(Math.abs(e.strength) <= MAX_EDIT_STRENGTH))
        throw new ApiError("unprocessable", `edits[${i}].strength: ${e.strength} is outside ${-MAX_EDIT_STRENGTH}..${MAX_EDIT_STRENGTH}`, {
          field: `edits[${i}].strength`,
          reason: "strength_out_of_range",
          min: -MAX_EDIT_STRENGTH,
          max: MAX_EDIT_STRENGTH,
        });
      const layers = e.layers === undefined ? undefined : expandLayers(e.layers, `edits[${i}].layers`);
      const bad = layers?.find((l) => l >= numWs);
      if (bad !== undefined) throw new ApiError("validation_failed", `edits[${i}].layers: ${bad} is out of range 0..${numWs - 1}`);
      const d = await this.get(record, tenant, e.direction);
      if (e.strength !== 0) out.push({ vector: Float32Array.from(d.vector), strength: e.strength, layers });
    }
    return out;
  }
}

const id = (r: ModelJson) => `${r.name}/${r.version}`;

/** ws [n, numWs, wDim] moved along each edit (a new array; the input stays as it was). */
export function applyEdits(ws: Float32Array, shape: LatentShape, edits: ResolvedEdit[]): Float32Array {
  if (edits.length === 0) return ws;
  const out = Float32Array.from(ws);
  const n = ws.length / (shape.numWs * shape.wDim);
  for (const e of edits) {
    const layers = e.layers ?? Array.from({ length: shape.numWs }, (_, l) => l);
    for (let i = 0; i < n; i++)
      for (const l of layers) {
        const at = (i * shape.numWs + l) * shape.wDim;
        for (let j = 0; j < shape.wDim; j++) out[at + j] += e.strength * e.vector[j];
      }
  }
  return out;
}
