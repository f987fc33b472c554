/** The fine-tunes API's domain: validate and create jobs, read them back for a tenant, cancel. */
import type { FineTune, FineTuneParams } from "../api/finetune.ts";
import { FineTune as FineTuneSchema } from "../api/finetune.ts";
import { newId, publicDataset, type DatasetService } from "../datasets/service.ts";
import { ApiError } from "../errors.ts";
import type { ModelRegistry } from "../models/registry.ts";
import type { Storage } from "../storage/storage.ts";
import type { Launcher } from "./launcher.ts";
import type { JobReconciler } from "./reconcile.ts";
import { checkDatasetFit } from "./dataset-fit.ts";
import { parseLossOptions } from "../training/losses.ts";
import { TrainerOptionError } from "../training/common/options.ts";
import { newJobRecord, TERMINAL, type JobRecord, type JobStore } from "./store.ts";
import type { SecretBox } from "./secrets.ts";
import { checkWebhookTarget } from "./webhook.ts";

export class FineTuneService {
  constructor(
    private readonly jobs: JobStore,
    private readonly datasets: DatasetService,
    private readonly registry: ModelRegistry,
    private readonly storage: Storage,
    private readonly launcher: Launcher,
    private readonly production: boolean,
    /** Seals webhook secrets before the record is stored (jobs/secrets.ts). */
    private readonly secrets?: SecretBox,
    /** Ends records whose Batch job died without writing its end (jobs/reconcile.ts); absent locally. */
    private readonly reconciler?: JobReconciler,
  ) {}

  async create(params: FineTuneParams, tenant: string): Promise<FineTune> {
    const base = await this.registry.resolve(params.base_model, params.version, tenant);
    const dataset = publicDataset(await this.datasets.get(params.dataset, tenant));
    if (dataset.status !== "ready") throw new ApiError("conflict", `dataset '${dataset.id}' is ${dataset.status}; finalize it first`);
    // 422 with details.reason when the dataset cannot train this base; notes say what the trainer adapts.
    const notes = checkDatasetFit(base, dataset);
    checkLossOptions(base.family, params.options);
    if (params.webhook) await checkWebhookTarget(params.webhook.url, this.production);
    // The result is published under `name`: it must be new or this tenant's already. The claim is the last
    // check, so a request refused for another reason does not take the name; the worker checks it again.
    await this.registry.claim(params.name, tenant);
    const job = newJobRecord({ id: newId("ft"), tenant, family: base.family, baseVersion: base.version, params, secrets: this.secrets });
    await this.jobs.create(job);
    await this.jobs.putEvent(job.id, { seq: 1, type: "status", status: "queued", time: job.created_at, step: 0, ...(notes.length ? { message: notes.join(" ") } : {}) });
    let batchJobId: string | undefined;
    try {
      batchJobId = await this.launcher.launch(job.id);
    } catch (e) {
      // Nothing will run a job whose submit failed: left `queued`, it would hold one of the tenant's slots
      // forever. It ends `failed` now, and the client is told to retry.
      const finished_at = new Date().toISOString();
      const message = `the fine-tune could not be started: ${(e as Error).message}`;
      await this.jobs.save({ ...job, status: "failed", error: { code: "launch_failed", message }, finished_at });
      await this.jobs.putEvent(job.id, { seq: 2, type: "done", status: "failed", time: finished_at, step: 0, message });
      throw new ApiError("queue_unavailable", "the fine-tune queue is unavailable; try again later", { fine_tune: job.id }, 30);
    }
    if (!batchJobId) return this.view(job);
    // Re-read: a worker that started already owns the record (it also keeps the id, from AWS_BATCH_JOB_ID).
    const current = (await this.jobs.load(job.id)) ?? job;
    const withId = current.batch_job_id ? current : { ...current, batch_job_id: batchJobId };
    if (withId !== current) await this.jobs.save(withId);
    return this.view(withId);
  }

  async get(id: string, tenant: string): Promise<FineTune> {
    return this.view(await this.reconciled(await this.jobs.get(id, tenant)));
  }

  async list(tenant: string): Promise<FineTune[]> {
    const records = await this.jobs.list(tenant);
    return Promise.all((this.reconciler ? await this.reconciler.reconcile(records) : records).map((j) => this.view(j)));
  }

  /**
   * The cancel flag stops a running worker at its next step boundary (it records `canceled` and its webhook
   * fires). A job still waiting in Batch is terminated as well, so no GPU instance boots just to read the
   * flag; reconciliation then records it `canceled`.
   */
  async cancel(id: string, tenant: string): Promise<FineTune> {
    const job = await this.reconciled(await this.jobs.get(id, tenant));
    if (TERMINAL.has(job.status)) throw new ApiError("conflict", `fine-tune '${id}' already ${job.status}`);
    await this.jobs.requestCancel(id);
    if (job.status === "queued" && job.batch_job_id && this.launcher.states) await this.launcher.states.terminate(job.batch_job_id, `ganserve: fine-tune ${id} canceled`);
    return this.view({ ...job, cancel_requested: true });
  }

  private async reconciled(job: JobRecord): Promise<JobRecord> {
    if (!this.reconciler) return job;
    const [out] = await this.reconciler.reconcile([job]);
    return out;
  }

  /** API view: internal fields dropped, sample keys turned into short-lived URLs. */
  private async view(job: JobRecord): Promise<FineTune> {
    const samples = await Promise.all(job.samples.map(async (s) => ({ ...s, url: await this.storage.presignGet(s.key, 3600) })));
    return FineTuneSchema.parse({ ...job, samples });
  }
}

/**
 * The loss options a family refuses whatever its discriminator (a loss, R1, a stray gp_lambda) answer 422 here,
 * before a job is queued. What depends on the base's D (Sigmoid, BatchNorm) is only known when the trainer
 * builds it, and fails the job with the same message then.
 */
function checkLossOptions(family: JobRecord["family"], options: Record<string, unknown>): void {
  try {
    parseLossOptions(family, options);
  } catch (e) {
    if (e instanceof TrainerOptionError) throw new ApiError("unprocessable", e.message, { field: "options", reason: "loss_option_refused" });
    throw e;
  }
}
