/**
 * Starting fine-tune workers. Locally each job runs in a child process that this process supervises: one
 * at a time (the machine's cores are the limit), relaunched from its last checkpoint if it dies, and
 * re-adopted when the server restarts. In AWS a job is an AWS Batch GPU job; Batch does the retrying.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import { BatchClient, DescribeJobsCommand, SubmitJobCommand, TerminateJobCommand, type SubmitJobCommandInput } from "@aws-sdk/client-batch";
import type { Logger } from "../log.ts";
import { TERMINAL, type JobStore } from "./store.ts";

/** What AWS Batch says of one of its jobs (DescribeJobs), reduced to what reconciliation needs. */
export interface BatchJobState {
  status: "SUBMITTED" | "PENDING" | "RUNNABLE" | "STARTING" | "RUNNING" | "SUCCEEDED" | "FAILED";
  /** Batch's statusReason and the last attempt's container reason and exit code, when it gave them. */
  reason?: string;
}

/** Where the state of launched jobs can be asked for: Batch. A local launcher watches its children instead. */
export interface JobStates {
  /** States of the given Batch job ids; an id Batch no longer knows is absent from the map. */
  describe(batchJobIds: string[]): Promise<Map<string, BatchJobState>>;
  /** Stops a job Batch has not finished: cancels it while it waits, kills its container once it runs. */
  terminate(batchJobId: string, reason: string): Promise<void>;
}

export interface Launcher {
  /** Starts the job; resolves with the Batch job id when Batch runs it (stored on the record for reconciliation). */
  launch(jobId: string): Promise<string | undefined>;
  /** Set when jobs run somewhere this process cannot watch (Batch): the reconciler asks it. */
  readonly states?: JobStates;
  /** Re-adopt jobs left queued or running by a previous process. */
  adopt(): Promise<string[]>;
  close(): Promise<void>;
}

export interface LocalLauncherOptions {
  /** argv of the worker entry point; the job id is appended */
  command: string[];
  env: NodeJS.ProcessEnv;
  jobs: JobStore;
  log: Logger;
  maxAttempts?: number;
  concurrency?: number;
}

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export class LocalLauncher implements Launcher {
  private readonly queue: string[] = [];
  private readonly running = new Map<string, ChildProcess>();
  private closing = false;

  constructor(private readonly opts: LocalLauncherOptions) {}

  async launch(jobId: string) {
    if (!this.queue.includes(jobId) && !this.running.has(jobId)) this.queue.push(jobId);
    this.pump();
    return undefined;
  }

  /** Pids of running workers by job, for tests that kill one. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.running].map(([id, c]) => [id, c.pid]));
  }

  private pump() {
    while (!this.closing && this.queue.length && this.running.size < (this.opts.concurrency ?? 1)) {
      const id = this.queue.shift()!;
      const child = spawn(this.opts.command[0], [...this.opts.command.slice(1), id], { env: this.opts.env, stdio: ["ignore", "inherit", "inherit"] });
      this.running.set(id, child);
      this.opts.log.info({ jobId: id, pid: child.pid }, "fine-tune worker started");
      child.on("exit", (code, signal) => void this.exited(id, code, signal));
    }
  }

  private async exited(id: string, code: number | null, signal: NodeJS.Signals | null) {
    this.running.delete(id);
    if (this.closing) return;
    try {
      const job = await this.opts.jobs.load(id);
      if (job && !TERMINAL.has(job.status)) {
        if (job.attempts >= (this.opts.maxAttempts ?? 3)) {
          this.opts.log.error({ jobId: id, attempts: job.attempts }, "fine-tune worker keeps dying; giving up");
          await this.opts.jobs.save({ ...job, status: "failed", finished_at: new Date().toISOString(), error: { code: "worker_crashed", message: `the worker died ${job.attempts} times (last: ${signal ?? `exit ${code}`})` } });
        } else {
          this.opts.log.warn({ jobId: id, code, signal }, "fine-tune worker died; resuming from its last checkpoint");
          this.queue.unshift(id);
        }
      }
    } catch (e) {
      this.opts.log.error({ jobId: id, err: e }, "could not inspect a finished worker's job");
    }
    this.pump();
  }

  async adopt() {
    const adopted: string[] = [];
    for (const job of await this.opts.jobs.list()) {
      if (TERMINAL.has(job.status) || this.running.has(job.id)) continue;
      // A worker from a previous server process may still be running (it outlives a crash): leave it be.
      if (job.status === "running" && job.worker?.host === os.hostname() && alive(job.worker.pid)) continue;
      adopted.push(job.id);
      await this.launch(job.id);
    }
    return adopted;
  }

  async close() {
    this.closing = true;
    const exits = [...this.running.values()].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r))));
    for (const c of this.running.values()) c.kill("SIGTERM");
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
  }
}

export interface BatchLauncherOptions {
  jobQueue: string;
  jobDefinition: string;
  client?: Pick<BatchClient, "send">;
  /** extra environment for the container (the job definition carries the rest) */
  environment?: Record<string, string>;
}

/** The SubmitJob request for one fine-tune: exported so a test can check exactly what AWS receives. */
export function submitJobInput(jobId: string, opts: BatchLauncherOptions): SubmitJobCommandInput {
  return {
    jobName: `ganserve-${jobId}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 128),
    jobQueue: opts.jobQueue,
    jobDefinition: opts.jobDefinition,
    containerOverrides: {
      environment: [{ name: "GANSERVE_JOB_ID", value: jobId }, ...Object.entries(opts.environment ?? {}).map(([name, value]) => ({ name, value }))],
    },
    tags: { "ganserve:job": jobId },
    propagateTags: true,
  };
}

/** DescribeJobs takes at most 100 job ids a call. */
const DESCRIBE_MAX = 100;

export class BatchLauncher implements Launcher, JobStates {
  private readonly client: Pick<BatchClient, "send">;
  readonly states: JobStates = this;

  constructor(private readonly opts: BatchLauncherOptions) {
    this.client = opts.client ?? new BatchClient({});
  }

  async launch(jobId: string) {
    const out = await this.client.send(new SubmitJobCommand(submitJobInput(jobId, this.opts)));
    return out.jobId;
  }

  async describe(batchJobIds: string[]) {
    const out = new Map<string, BatchJobState>();
    for (let i = 0; i < batchJobIds.length; i += DESCRIBE_MAX) {
      const { jobs = [] } = await this.client.send(new DescribeJobsCommand({ jobs: batchJobIds.slice(i, i + DESCRIBE_MAX) }));
      for (const j of jobs) {
        if (!j.jobId || !j.status) continue;
        const last = j.attempts?.at(-1)?.container;
        const container = [last?.reason, last?.exitCode === undefined ? undefined : `exit code ${last.exitCode}`].filter(Boolean).join(", ");
        const reason = [j.statusReason, container].filter(Boolean).join("; ");
        out.set(j.jobId, { status: j.status, ...(reason ? { reason } : {}) });
      }
    }
    return out;
  }

  async terminate(batchJobId: string, reason: string) {
    await this.client.send(new TerminateJobCommand({ jobId: batchJobId, reason }));
  }

  /** Batch owns retries and survives API restarts; nothing to re-adopt. */
  async adopt() {
    return [];
  }

  async close() {}
}
