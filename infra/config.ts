// Deployment knobs for ganserve. Plain TypeScript (no SST globals) so that the tests can import it directly
// and compare the Dockerfiles with the task definition. Every knob can be overridden through an environment
// variable at `sst deploy` time, e.g. `GANSERVE_GPU_MIN_TASKS=0 npx sst deploy --stage prod`.

/** Port the inference container listens on; the Dockerfile's EXPOSE and the ECS port mapping must agree. */
export const INFERENCE_PORT = 8080;

/** The one parameter AWS publishes for the current ECS GPU-optimised Amazon Linux 2023 AMI. */
export const ECS_GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id";

/** Batch's AMI family for NVIDIA instances on AL2023 (AL2 AMIs are being retired by AWS). */
export const BATCH_GPU_IMAGE_TYPE = "ECS_AL2023_NVIDIA";

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
    /** Desired tasks when idle. 0 scales the GPU fleet to zero; the first request then waits for a cold start. */
    minTasks: number;
    maxTasks: number;
    /** Target-tracking set point: requests per task per minute before another task is added. */
    requestsPerTarget: number;
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

export function loadConfig(env: Record<string, string | undefined> = process.env, opts: { dev?: boolean } = {}): InfraConfig {
  const instanceType = gpuType("GANSERVE_GPU_INSTANCE_TYPE", env.GANSERVE_GPU_INSTANCE_TYPE || "g5.xlarge");
  // A dev stage should not keep a GPU instance running between sessions.
  const minTasks = int(env, "GANSERVE_GPU_MIN_TASKS", opts.dev ? 0 : 1, 0);
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
      requestsPerTarget: int(env, "GANSERVE_GPU_REQUESTS_PER_TARGET", 120, 1),
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
