/**
 * Starts the real local stack (`packages/functions/src/local.ts`) as a child process on free ports with its
 * own data dir, the way `npm start` runs it, and stops it cleanly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { MALLOC_ENV } from "../../packages/functions/bin/malloc-env.mjs";

export const repoRoot = path.resolve(import.meta.dirname, "../..");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export interface Stack {
  url: string;
  dataDir: string;
  s3Port: number;
  apiKey: string;
  /** The stack's process id, for memory readings (memoryOf). */
  pid: number;
  output: () => string;
  stop(): Promise<number | null>;
}

export interface StackOptions {
  dataDir?: string;
  s3Port?: number;
  env?: Record<string, string>;
}

/** Under the test run's own folder (test/setup/generated.ts removes it), or the system temp dir outside vitest. */
export const tempDataDir = () => fs.mkdtempSync(path.join(process.env.GANSERVE_TEST_TMP ?? os.tmpdir(), "ganserve-e2e-"));

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const port = await freePort();
  const s3Port = opts.s3Port ?? (await freePort());
  const env = {
    // glibc's settings for a serving process, as `npm start` gives them (the environment may override them).
    ...MALLOC_ENV,
    ...process.env,
    PORT: String(port),
    GANSERVE_DATA_DIR: dataDir,
    GANSERVE_EMBEDDED_S3_PORT: String(s3Port),
    GANSERVE_LOG_LEVEL: "warn",
    NODE_NO_WARNINGS: "1",
    // Tests bring their own models and drive traffic harder than a person; the ones about demo models and
    // rate limits turn these back on.
    GANSERVE_DEMO_MODELS: "false",
    GANSERVE_RATE_LIMIT_RPM: "1000000",
    ...opts.env,
  };
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "packages/functions/src/local.ts")], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`stack exited with ${child.exitCode}:\n${out}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`stack did not answer /health in 90 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  // GANSERVE_API_KEYS entries are `key` or `tenant:key`.
  const apiKey = opts.env?.GANSERVE_API_KEYS?.split(",")[0].replace(/^[a-z0-9][a-z0-9_-]{0,62}:/, "") ?? fs.readFileSync(path.join(dataDir, "dev-api-key"), "utf8").trim();
  return {
    url,
    dataDir,
    s3Port,
    apiKey,
    pid: child.pid!,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}

export const auth = (stack: Stack) => ({ Authorization: `Bearer ${stack.apiKey}` });

/**
 * Resident memory of a process, now and at its peak (Linux /proc; VmHWM is the high-water mark since start),
 * in bytes. Hostile-input tests check that a stack stays within a memory budget.
 */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}
