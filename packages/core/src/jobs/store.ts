/**
 * Fine-tune jobs live in storage under `jobs/<id>/` (storage/keys.ts's `jobKeys`):
 *   job.json                  the record (written by the API at creation, then only by the job's worker)
 *   cancel                    present once a cancel was requested (written by the API: never races job.json)
 *   events/<seq>.json         the event log, one object per event, zero-padded so listing is ordered
 *   checkpoints/step-<n>.safetensors + checkpoints/latest.json (written weights first, pointer last)
 *   samples/step-<n>.png      sample grids
 * Storage is the only shared state, so the API, a local child-process worker and an AWS Batch worker all
 * see the same job.
 */
import type { FineTune, FineTuneEvent, FineTuneParams } from "../api/finetune.ts";
import { ApiError } from "../errors.ts";
import { mapLimited } from "../limits/map-limited.ts";
import { jobKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import type { SealedSecret, SecretBox } from "./secrets.ts";

/**
 * How a job keeps its webhook: the signing secret sealed under GANSERVE_SECRET_KEY (jobs/secrets.ts), bound to
 * the job id. Records written before secrets were sealed hold it in clear (`secret`); they still deliver.
 */
export type StoredWebhook = { url: string; secret_sealed: SealedSecret } | { url: string; secret: string };

export type JobRecord = FineTune & {
  tenant: string;
  /** kept out of API responses: the secret signs the completion webhook */
  webhook?: StoredWebhook;
  worker?: { pid?: number; host?: string; attempt: number; heartbeat_at: string };
  /**
   * The AWS Batch job running this fine-tune (jobs/reconcile.ts asks Batch about it). Written by the API
   * after SubmitJob and by the worker from AWS_BATCH_JOB_ID, so neither write can lose it.
   */
  batch_job_id?: string;
};

export const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

/** Records read at once when listing (each is a GET). */
const READ_CONCURRENCY = 8;

export interface CheckpointPointer {
  step: number;
  key: string;
}

export class JobStore {
  constructor(private readonly storage: Storage) {}

  async load(id: string): Promise<JobRecord | undefined> {
    if (!/^ft_[A-Za-z0-9]+$/.test(id)) return undefined;
    return this.storage.getJson<JobRecord>(jobKeys.record(id));
  }

  /** For the API: 404 for other tenants' jobs, as for missing ones. */
  async get(id: string, tenant: string): Promise<JobRecord> {
    const job = await this.load(id);
    if (!job || job.tenant !== tenant) throw new ApiError("not_found", `fine-tune '${id}' does not exist`);
    return { ...job, cancel_requested: job.cancel_requested || (await this.cancelRequested(id)) };
  }

  async save(job: JobRecord): Promise<void> {
    await this.storage.putJson(jobKeys.record(job.id), job);
  }

  /** A new job: its tenant's index marker first, so no record is ever missing from its tenant's list. */
  async create(job: JobRecord): Promise<void> {
    await this.storage.put(jobKeys.tenantEntry(job.tenant, job.id), "");
    await this.save(job);
  }

  /** Every job's id, all tenants (the local launcher re-adopting unfinished jobs at start). */
  async ids(): Promise<string[]> {
    return (await this.storage.listPrefixes(jobKeys.root)).filter((id) => id.startsWith("ft_"));
  }

  /**
   * A tenant's jobs, newest first: its index lists them, so only its own records are read (slot counts and
   * lists stay as fast with many tenants as with one). Without a tenant: every job.
   */
  async list(tenant?: string): Promise<JobRecord[]> {
    const ids =
      tenant === undefined ? await this.ids() : (await this.storage.list(jobKeys.tenantIndex(tenant))).map((o) => o.key.slice(jobKeys.tenantIndex(tenant).length));
    const jobs = await mapLimited(ids, READ_CONCURRENCY, (id) => this.load(id));
    return jobs.filter((j): j is JobRecord => j !== undefined && (tenant === undefined || j.tenant === tenant)).sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  async requestCancel(id: string): Promise<void> {
    await this.storage.put(jobKeys.cancel(id), new Date().toISOString());
  }

  async cancelRequested(id: string): Promise<boolean> {
    return this.storage.exists(jobKeys.cancel(id));
  }

  async lastSeq(id: string): Promise<number> {
    const events = await this.storage.list(jobKeys.events(id));
    return events.length ? jobKeys.eventSeq(events[events.length - 1].key) : 0;
  }

  async putEvent(id: string, event: FineTuneEvent): Promise<void> {
    await this.storage.putJson(jobKeys.event(id, event.seq), event);
  }

  /** Events with seq > after, in order. */
  async events(id: string, after = 0): Promise<FineTuneEvent[]> {
    const keys = (await this.storage.list(jobKeys.events(id))).map((o) => o.key).filter((k) => jobKeys.eventSeq(k) > after);
    const out: FineTuneEvent[] = [];
    for (const k of keys) {
      const e = await this.storage.getJson<FineTuneEvent>(k);
      if (e) out.push(e);
    }
    return out;
  }

  async putCheckpoint(id: string, step: number, bytes: Uint8Array): Promise<CheckpointPointer> {
    const key = jobKeys.checkpoint(id, step);
    const previous = await this.latestCheckpoint(id);
    await this.storage.put(key, bytes);
    const pointer = { step, key };
    await this.storage.putJson(jobKeys.latestCheckpoint(id), pointer);
    // Keep the previous one until the new pointer is written, then drop it: at most two on disk at once.
    if (previous && previous.key !== key) await this.storage.delete(previous.key);
    return pointer;
  }

  async latestCheckpoint(id: string): Promise<CheckpointPointer | undefined> {
    return this.storage.getJson<CheckpointPointer>(jobKeys.latestCheckpoint(id));
  }

  sampleKey(id: string, step: number) {
    return jobKeys.sample(id, step);
  }
}

const webhookContext = (jobId: string) => `ganserve:webhook-secret:${jobId}`;

export function sealWebhook(hook: { url: string; secret: string }, jobId: string, secrets: SecretBox): StoredWebhook {
  return { url: hook.url, secret_sealed: secrets.seal(hook.secret, webhookContext(jobId)) };
}

/** The webhook with its secret in clear, for signing; throws when the secret does not open with this key. */
export function openWebhook(hook: StoredWebhook, jobId: string, secrets: SecretBox | undefined): { url: string; secret: string } {
  if ("secret" in hook && typeof hook.secret === "string") return { url: hook.url, secret: hook.secret };
  if (!secrets) throw new Error("no secret key to open the webhook secret (GANSERVE_SECRET_KEY)");
  return { url: hook.url, secret: secrets.open((hook as { secret_sealed: SealedSecret }).secret_sealed, webhookContext(jobId)) };
}

/** A new job record as the API creates it; a webhook secret is stored sealed, never in clear. */
export function newJobRecord(args: {
  id: string;
  tenant: string;
  family: FineTune["family"];
  baseVersion: string;
  params: FineTuneParams;
  secrets?: SecretBox;
}): JobRecord {
  const { webhook: hook, ...params } = args.params;
  if (hook && !args.secrets) throw new Error("newJobRecord: a webhook secret needs a SecretBox to be stored");
  const webhook = hook && args.secrets ? sealWebhook(hook, args.id, args.secrets) : undefined;
  return {
    id: args.id,
    tenant: args.tenant,
    status: "queued",
    family: args.family,
    base_model: params.base_model,
    base_version: args.baseVersion,
    dataset: params.dataset,
    name: params.name,
    params: params as Record<string, unknown>,
    step: 0,
    total_steps: params.steps,
    losses: {},
    loss_history: [],
    samples: [],
    attempts: 0,
    cancel_requested: false,
    created_at: new Date().toISOString(),
    webhook,
  };
}
