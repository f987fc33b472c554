/**
 * The fine-tune worker: one job, start to finish. It reads the job and its dataset, builds the trainer from
 * the base model, resumes from the latest checkpoint if there is one, trains (checkpointing every N steps,
 * honouring cancel between steps, streaming progress events), and publishes the result as a new model
 * version. The same function runs in a local child process and in an AWS Batch container.
 */
import os from "node:os";
import type { FineTuneEvent } from "../api/finetune.ts";
import { readSafetensors, writeSafetensors } from "../checkpoints/safetensors.ts";
import type { DatasetService } from "../datasets/service.ts";
import { initBackend, type BackendChoice } from "../engine/backend.ts";
import { enableTraining } from "../engine/gradients.ts";
import { encodeRgb } from "../images/codec.ts";
import type { Logger } from "../log.ts";
import type { ModelJson } from "../models/model-json.ts";
import { isNameTaken, type ModelRegistry } from "../models/registry.ts";
import type { Storage } from "../storage/storage.ts";
import { createTrainer, trainingImageSize } from "../training/index.ts";
import type { Trainer } from "../training/types.ts";
import type { SecretBox } from "./secrets.ts";
import { openWebhook, TERMINAL, type JobRecord, type JobStore } from "./store.ts";
import { classIndexOf } from "./dataset-fit.ts";
import { loadTrainingData } from "./training-data.ts";
import { deliverWebhook } from "./webhook.ts";


export interface WorkerDeps {
  storage: Storage;
  jobs: JobStore;
  datasets: DatasetService;
  registry: ModelRegistry;
  log: Logger;
  backend?: BackendChoice;
  production?: boolean;
  /** Opens the job's sealed webhook secret (jobs/secrets.ts). */
  secrets?: SecretBox;
  /** Progress is written at most this often (each write is a storage round trip). */
  progressIntervalMs?: number;
  /** AWS_BATCH_JOB_ID when Batch runs the worker: kept on the record even if the API's write of it lost a race. */
  batchJobId?: string;
}

const MAX_HISTORY = 500;

class JobRun {
  private seq = 0;
  private lastWrite = 0;

  constructor(
    private job: JobRecord,
    private readonly deps: WorkerDeps,
  ) {}

  get record() {
    return this.job;
  }

  async init() {
    this.seq = await this.deps.jobs.lastSeq(this.job.id);
  }

  async event(e: Omit<FineTuneEvent, "seq" | "time">) {
    await this.deps.jobs.putEvent(this.job.id, { ...e, seq: ++this.seq, time: new Date().toISOString() });
  }

  async update(patch: Partial<JobRecord>, force = true) {
    this.job = { ...this.job, ...patch, worker: { ...this.job.worker!, heartbeat_at: new Date().toISOString() } };
    const now = Date.now();
    if (force || now - this.lastWrite >= (this.deps.progressIntervalMs ?? 1000)) {
      this.lastWrite = now;
      await this.deps.jobs.save(this.job);
      return true;
    }
    return false;
  }

  async status(status: JobRecord["status"], extra: Partial<JobRecord> = {}, message?: string) {
    await this.update({ status, ...extra });
    await this.event({ type: "status", status, step: this.job.step, message });
  }
}

/** Runs (or resumes) a job to a terminal state. Returns that state. */
export async function runFineTune(jobId: string, deps: WorkerDeps): Promise<JobRecord["status"]> {
  const found = await deps.jobs.load(jobId);
  if (!found) throw new Error(`job ${jobId} does not exist`);
  if (TERMINAL.has(found.status)) return found.status;
  const run = new JobRun({ ...found, batch_job_id: found.batch_job_id ?? deps.batchJobId, attempts: found.attempts + 1, worker: { pid: process.pid, host: os.hostname(), attempt: found.attempts + 1, heartbeat_at: new Date().toISOString() } }, deps);
  await run.init();
  let trainer: Trainer | undefined;
  try {
    if (await deps.jobs.cancelRequested(jobId)) {
      await finish(run, deps, "canceled", {}, "canceled before it started");
      return "canceled";
    }
    await run.status("running", { started_at: run.record.started_at ?? new Date().toISOString() }, run.record.attempts > 1 ? `worker attempt ${run.record.attempts}` : undefined);
    // Before training, so a job whose name another tenant owns (a job created before names had owner
    // records) fails now, not after its steps; `publish` checks again.
    await deps.registry.claim(run.record.name, run.record.tenant);

    await initBackend(deps.backend ?? "auto");
    enableTraining();
    const base = await deps.registry.resolve(run.record.base_model, run.record.base_version);
    const baseWeights = readSafetensors(await deps.registry.weights(base)).tensors;
    const p = run.record.params as { steps: number; batch_size: number; learning_rate: number; seed: number; options: Record<string, unknown>; resolution?: number; checkpoint_every?: number; sample_every?: number };
    const options = { steps: p.steps, batch_size: p.batch_size, learning_rate: p.learning_rate, seed: p.seed, options: { ...p.options, ...(p.resolution ? { resolution: p.resolution } : {}) } };
    const data = await loadTrainingData(base.family, run.record.dataset, deps, trainingImageSize(base.family, { config: base.config, options }), (folder) => classIndexOf(base, folder));
    const t: Trainer = createTrainer(base.family, { config: base.config, weights: baseWeights, data, options });
    trainer = t;

    const pointer = await deps.jobs.latestCheckpoint(jobId);
    if (pointer) {
      const bytes = await deps.storage.get(pointer.key);
      if (bytes) {
        t.loadState(readSafetensors(bytes, pointer.key).tensors);
        await run.event({ type: "log", step: t.step, message: `resumed from the checkpoint at step ${pointer.step}` });
      }
    }

    const checkpointEvery = p.checkpoint_every ?? Math.max(1, Math.floor(p.steps / 10));
    const sampleEvery = p.sample_every ?? Math.max(1, Math.floor(p.steps / 5));
    let spsEma: number | undefined;
    while (t.step < p.steps) {
      if (await deps.jobs.cancelRequested(jobId)) {
        await finish(run, deps, "canceled", {}, `canceled at step ${t.step}`);
        return "canceled";
      }
      const t0 = performance.now();
      const { step, losses } = await t.trainStep();
      for (const [k, v] of Object.entries(losses)) if (!Number.isFinite(v)) throw new Error(`loss ${k} became ${v} at step ${step}`);
      const seconds = (performance.now() - t0) / 1000;
      spsEma = spsEma === undefined ? seconds : 0.9 * spsEma + 0.1 * seconds;
      const history = [...run.record.loss_history, { step, losses }].slice(-MAX_HISTORY);
      const wrote = await run.update(
        { step, losses, loss_history: history, seconds_per_step: spsEma, eta_seconds: spsEma * (p.steps - step) },
        step === p.steps,
      );
      if (wrote || step % checkpointEvery === 0) await run.event({ type: "progress", step, losses, data: { seconds_per_step: spsEma, eta_seconds: spsEma * (p.steps - step) } });
      if (step % sampleEvery === 0 || step === p.steps) await writeSample(run, deps, t, step);
      if (step % checkpointEvery === 0 && step < p.steps) {
        const ptr = await deps.jobs.putCheckpoint(jobId, step, writeSafetensors(t.saveState()));
        await run.update({ last_checkpoint_step: ptr.step });
        await run.event({ type: "checkpoint", step, data: { key: ptr.key } });
      }
    }

    const result = await publish(run, deps, base, t);
    await finish(run, deps, "succeeded", { result }, `published ${result.model}/${result.version}`);
    return "succeeded";
  } catch (e) {
    deps.log.error({ jobId, err: e }, "fine-tune failed");
    const code = isNameTaken(e) ? "model_name_taken" : "training_failed";
    await finish(run, deps, "failed", { error: { code, message: (e as Error).message } }, (e as Error).message);
    return "failed";
  } finally {
    trainer?.dispose();
  }
}

async function writeSample(run: JobRun, deps: WorkerDeps, trainer: Trainer, step: number) {
  const grid = await trainer.sampleGrid();
  const key = deps.jobs.sampleKey(run.record.id, step);
  await deps.storage.put(key, await encodeRgb(grid, "png"), { contentType: "image/png" });
  await run.update({ samples: [...run.record.samples.filter((s) => s.step !== step), { step, key }] });
  await run.event({ type: "sample", step, data: { key } });
}

/** Publishes once: a relaunch after a crash between publishing and finishing finds its own version. */
async function publish(run: JobRun, deps: WorkerDeps, base: ModelJson, trainer: Trainer) {
  const job = run.record;
  for (const v of (await deps.registry.versions(job.name)).reverse()) {
    const r = await deps.registry.record(job.name, v);
    if (r?.provenance?.fine_tune_job === job.id) return { model: r.name, version: r.version };
  }
  const { config, weights } = trainer.exportGenerator();
  const record = await deps.registry.publish({
    name: job.name,
    family: base.family,
    config,
    weights: writeSafetensors(weights),
    dtype: "float32",
    extra: {
      tenant: job.tenant,
      description: `${base.name}/${base.version} fine-tuned on ${job.dataset}`,
      parent: { name: base.name, version: base.version },
      provenance: { fine_tune_job: job.id, dataset: job.dataset, steps: trainer.step, losses: job.losses, source: "ganserve fine-tune" },
      classes: base.classes,
      class_names: base.class_names,
      domains: base.domains,
      sample: job.samples.at(-1)?.key,
    },
  });
  return { model: record.name, version: record.version };
}

async function finish(run: JobRun, deps: WorkerDeps, status: "succeeded" | "failed" | "canceled", extra: Partial<JobRecord>, message: string) {
  await run.status(status, { ...extra, finished_at: new Date().toISOString(), cancel_requested: status === "canceled" || run.record.cancel_requested }, message);
  await run.event({ type: "done", status, step: run.record.step, message });
  if (run.record.webhook) {
    const { webhook: _w, worker: _k, tenant: _t, ...pub } = run.record;
    let hook: { url: string; secret: string };
    try {
      hook = openWebhook(run.record.webhook, run.record.id, deps.secrets);
    } catch (err) {
      deps.log.warn({ jobId: run.record.id, err }, "webhook not sent: its secret does not open with this GANSERVE_SECRET_KEY");
      return;
    }
    const res = await deliverWebhook(hook, { event: `fine_tune.${status}`, fine_tune: pub }, { production: deps.production ?? false });
    if (!res.ok) deps.log.warn({ jobId: run.record.id, ...res }, "webhook delivery failed");
  }
}
