/**
 * Fine-tune worker entry point: `worker.ts <job id>` (or GANSERVE_JOB_ID, as AWS Batch passes it). Runs
 * the job to a terminal state through storage alone, then exits 0; a crash exits non-zero and the
 * launcher (or Batch) starts it again, which resumes from the last checkpoint.
 * A dataset id (`ds_…`) is a dataset finalize job instead (datasets/finalizer.ts): the deployment runs it on
 * the same Batch queue; it records `ready` or `failed` on the dataset and exits 0.
 */
import { loadSettings } from "@ganserve/core/config";
import { DatasetService } from "@ganserve/core/datasets/service";
import { DatasetFinalizer } from "@ganserve/core/datasets/finalizer";
import { DatasetQuota } from "@ganserve/core/datasets/quota";
import { optionalSecretBox } from "@ganserve/core/jobs/secrets";
import { JobStore } from "@ganserve/core/jobs/store";
import { runFineTune } from "@ganserve/core/jobs/worker";
import { createLogger } from "@ganserve/core/log";
import { ModelRegistry } from "@ganserve/core/models/registry";
import { openStorage } from "@ganserve/core/storage/index";

const jobId = process.argv[2] ?? process.env.GANSERVE_JOB_ID;
if (!jobId) {
  console.error("usage: worker.ts <fine-tune id>   (or set GANSERVE_JOB_ID)");
  process.exit(2);
}
const settings = loadSettings();
const log = createLogger(settings.GANSERVE_LOG_LEVEL);
const opened = await openStorage(settings);
// The same key as the API (GANSERVE_SECRET_KEY, or the data dir's generated one locally) opens webhook
// secrets. Without it the job still trains; only its webhook is skipped, with a warning.
const secrets = optionalSecretBox(settings, (err) => log.error({ err }, "no secret key: webhooks of this job will not be sent"));
// SIGTERM (Ctrl-C of npm start, Batch termination) just stops: the job resumes from its checkpoint later.
process.on("SIGTERM", () => process.exit(143));
if (jobId.startsWith("ds_")) {
  const datasets = new DatasetService(opened.storage, { maxUploadBytes: settings.GANSERVE_MAX_UPLOAD_BYTES });
  const record = await datasets.load(jobId);
  if (!record) throw new Error(`dataset ${jobId} does not exist`);
  const quota = new DatasetQuota({ storage: opened.storage, datasets }, settings.GANSERVE_TENANT_DATASET_BYTES);
  const ended = await new DatasetFinalizer(datasets, quota).run(jobId, record.tenant).catch(async () => datasets.load(jobId));
  log.info({ datasetId: jobId, status: ended?.status, error: ended?.error }, "dataset finalize job finished");
  await opened.close();
  process.exit(0);
}
const status = await runFineTune(jobId, {
  storage: opened.storage,
  jobs: new JobStore(opened.storage),
  datasets: new DatasetService(opened.storage, { maxUploadBytes: settings.GANSERVE_MAX_UPLOAD_BYTES }),
  registry: new ModelRegistry(opened.storage),
  log,
  backend: settings.GANSERVE_BACKEND,
  production: settings.GANSERVE_PRODUCTION,
  secrets,
  batchJobId: process.env.AWS_BATCH_JOB_ID,
});
log.info({ jobId, status }, "fine-tune worker finished");
await opened.close();
process.exit(0);
