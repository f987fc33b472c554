// Deployment knobs for ganserve. Plain TypeScript (no SST globals) so that the tests can import it directly
// and compare the Dockerfiles with the task definition. Every knob can be overridden through an environment
// variable at `sst deploy` time, e.g. `GANSERVE_GPU_MIN_TASKS=0 npx sst deploy --stage prod`.

/** Port the inference container listens on; the Dockerfile's EXPOSE and the ECS port mapping must agree. */
export const INFERENCE_PORT = 8080;

/** The one parameter AWS publishes for the current ECS GPU-optimised Amazon Linux 2023 AMI. */
export const ECS_GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id";

/** Batch's AMI family for NVIDIA instances on AL2023 (AL2 AMIs are being retired by AWS). */
export const BATCH_GPU_IMAGE_TYPE = "ECS_AL2023_NVIDIA";

/**
 * What the worker process is told by the task definition (besides links and region): listen on every
 * interface (the ECS check and the rehearsal probe the task's address), never start an embedded store or a
 * fine-tune launcher, and run ONNX Runtime on CUDA with the CPU provider for what CUDA does not cover (the
 * image installs the CUDA 12 add-on; containers/inference.Dockerfile).
 */
export const GPU_WORKER_ENV = {
  NODE_ENV: "production",
  PORT: String(INFERENCE_PORT),
  HOST: "0.0.0.0",
  GANSERVE_HOST: "0.0.0.0",
  GANSERVE_LAUNCHER: "none",
  GANSERVE_EMBEDDED_S3: "false",
  GANSERVE_ORT_PROVIDERS: "cuda,cpu",
} as const;

/**
 * What the fine-tune job is told besides its links: train on tfjs-node-gpu, which the image installs. Named,
 * not "auto": a job whose native GPU backend does not load (no GPU, a CUDA mismatch) fails with that reason
 * instead of quietly training on the CPU of a GPU instance.
 */
export const FINETUNE_JOB_ENV = {
  NODE_ENV: "production",
  GANSERVE_BACKEND: "tensorflow-gpu",
} as const;

/**
 * Largest request body the deployed API accepts. A Lambda invocation's request payload is at most 6 MB, and
 * API Gateway hands a binary body over base64-encoded (4/3 larger) inside an event that also carries the
 * headers: 4 MiB of body fits. Anything larger (dataset zips) goes straight to the bucket with a presigned
 * upload form. The API Gateway HTTP API's own cap (10 MB) is then never the one a client meets.
 */
export const LAMBDA_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What the API Lambda is told besides its links: it submits fine-tunes to Batch and never runs a local store. */
export const API_LAMBDA_ENV = {
  NODE_ENV: "production",
  GANSERVE_DATA_DIR: "/tmp/ganserve",
  GANSERVE_LAUNCHER: "batch",
  GANSERVE_EMBEDDED_S3: "false",
  GANSERVE_MAX_BODY_BYTES: String(LAMBDA_MAX_BODY_BYTES),
} as const;

export interface InfraConfig {
  region: string;
  storage: {
    /** Generated images under outputs/ are transient; they expire after this many days. */
    outputsTtlDays: number;
    /** Origins allowed to PUT presigned uploads from a browser. */
    corsOrigins: string[];
  };
  network: {
    /** "ec2" (fck-nat instance, a few $/month) or "managed" (NAT Gateway, about $33/month per AZ). */
    nat: "ec2" | "managed";
  };
  inference: {
    instanceType: string;
    /** Desired tasks when idle. 0 (the default) scales the GPU fleet to zero; a prediction then waits out a cold start. */
    minTasks: number;
    maxTasks: number;
    /** Queue depth (waiting + in-flight predictions) one task is expected to work off; each multiple adds a task. */
    backlogPerTask: number;
    /** Minutes with an empty queue (nothing waiting, nothing in flight) before the service goes back to minTasks. */
    idleMinutes: number;
    /**
     * Seconds a scale-out waits before it may add the same capacity again: longer than a cold start from nothing,
     * so a backlog that waits on a booting instance does not start a second one.
     */
    scaleOutCooldownSeconds: number;
    /** Stopped, image-pulled instances kept in the ASG's warm pool (EBS cost only). 0 = no warm pool. */
    warmPoolSize: number;
    /**
     * SQS visibility timeout, also given to the worker: it covers a long batch (64 seeds at 512² on one GPU)
     * even before the worker extends it, and bounds how late a dead worker's predictions run again.
     */
    queueVisibilitySeconds: number;
    /** Receives of one prediction before SQS moves it to the dead-letter queue (a poison message, a crash loop). */
    maxReceives: number;
    /** Container reservation; sized to fit one task on a g5.xlarge (4 vCPU, 16 GiB) next to the ECS agent. */
    cpu: number;
    memoryMiB: number;
  };
  fineTune: {
    instanceTypes: string[];
    /** Upper bound of the Batch compute environment; 16 = four concurrent g5.xlarge jobs. */
    maxVcpus: number;
    spot: boolean;
    jobVcpus: number;
    jobMemoryMiB: number;
    timeoutSeconds: number;
  };
}

// Families with NVIDIA GPUs that the ECS GPU AMI and ECS_AL2023_NVIDIA support and tfjs-node-gpu's CUDA 11 can drive.
const GPU_INSTANCE = /^(g4dn|g5|g6|g6e)\.[0-9]*x?large$/;

function int(env: Record<string, string | undefined>, key: string, fallback: number, min: number): number {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${key} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

function gpuType(key: string, value: string): string {
  if (!GPU_INSTANCE.test(value)) throw new Error(`${key} must be an NVIDIA GPU instance type (g4dn/g5/g6/g6e), got "${value}"`);
  return value;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): InfraConfig {
  const instanceType = gpuType("GANSERVE_GPU_INSTANCE_TYPE", env.GANSERVE_GPU_INSTANCE_TYPE || "g5.xlarge");
  // Serverless by default: predictions queue while the fleet wakes, so nothing needs a GPU running idle.
  const minTasks = int(env, "GANSERVE_GPU_MIN_TASKS", 0, 0);
  const maxTasks = int(env, "GANSERVE_GPU_MAX_TASKS", 4, 1);
  if (maxTasks < minTasks) throw new Error(`GANSERVE_GPU_MAX_TASKS (${maxTasks}) < GANSERVE_GPU_MIN_TASKS (${minTasks})`);
  const instanceTypes = (env.GANSERVE_FT_INSTANCE_TYPES || "g5.xlarge,g5.2xlarge")
    .split(",")
    .map((t) => gpuType("GANSERVE_FT_INSTANCE_TYPES", t.trim()));
  const nat = env.GANSERVE_NAT || "ec2";
  if (nat !== "ec2" && nat !== "managed") throw new Error(`GANSERVE_NAT must be "ec2" or "managed", got "${nat}"`);
  const maxVcpus = int(env, "GANSERVE_FT_MAX_VCPUS", 16, 0);
  const jobVcpus = int(env, "GANSERVE_FT_JOB_VCPUS", 4, 1);
  if (maxVcpus !== 0 && maxVcpus < jobVcpus) throw new Error(`GANSERVE_FT_MAX_VCPUS (${maxVcpus}) cannot fit one job of ${jobVcpus} vCPUs`);
  return {
    region: env.GANSERVE_AWS_REGION || "us-east-1",
    storage: {
      outputsTtlDays: int(env, "GANSERVE_OUTPUTS_TTL_DAYS", 7, 1),
      corsOrigins: (env.GANSERVE_CORS_ORIGINS || "*").split(",").map((o) => o.trim()),
    },
    network: { nat },
    inference: {
      instanceType,
      minTasks,
      maxTasks,
      backlogPerTask: int(env, "GANSERVE_GPU_BACKLOG_PER_TASK", 16, 1),
      idleMinutes: int(env, "GANSERVE_GPU_IDLE_MINUTES", 15, 1),
      scaleOutCooldownSeconds: int(env, "GANSERVE_GPU_SCALE_OUT_COOLDOWN_SECONDS", 600, 60),
      warmPoolSize: int(env, "GANSERVE_GPU_WARM_POOL", 1, 0),
      queueVisibilitySeconds: int(env, "GANSERVE_QUEUE_VISIBILITY_SECONDS", 300, 30),
      maxReceives: int(env, "GANSERVE_QUEUE_MAX_RECEIVES", 3, 1),
      cpu: int(env, "GANSERVE_GPU_TASK_CPU", 3072, 256),
      memoryMiB: int(env, "GANSERVE_GPU_TASK_MEMORY_MIB", 14336, 512),
    },
    fineTune: {
      instanceTypes,
      maxVcpus,
      spot: env.GANSERVE_FT_SPOT === "1" || env.GANSERVE_FT_SPOT === "true",
      jobVcpus,
      jobMemoryMiB: int(env, "GANSERVE_FT_JOB_MEMORY_MIB", 14336, 512),
      timeoutSeconds: int(env, "GANSERVE_FT_TIMEOUT_SECONDS", 8 * 3600, 60),
    },
  };
}
