/** The ganserve CLI as a deployer runs it against a bucket: an external S3 reached with its own credentials. */
import { spawn } from "node:child_process";
import path from "node:path";
import { EMBEDDED_CREDENTIALS } from "@ganserve/core/storage/index";
import { repoRoot } from "./stack.ts";

export interface BucketTarget {
  /** The S3 endpoint the CLI talks to. */
  endpoint: string;
  bucket: string;
  /** The CLI's own data dir (its local cache). */
  dataDir: string;
  /** Where the CLI is started; the repo root unless a test shows it works from any folder. */
  cwd?: string;
}

/**
 * Spawned, not run synchronously: the store the tests use answers from the test's own process. The env is a
 * deployer's settings only (nothing inherited but PATH), so the CLI cannot lean on the test run's environment.
 */
export async function runCli(args: string[], target: BucketTarget): Promise<{ code: number | null; out: string }> {
  const cli = spawn(process.execPath, [path.join(repoRoot, "packages/functions/bin/ganserve.mjs"), ...args], {
    cwd: target.cwd ?? repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH ?? "",
      GANSERVE_DATA_DIR: target.dataDir,
      GANSERVE_S3_ENDPOINT: target.endpoint,
      GANSERVE_S3_BUCKET: target.bucket,
      GANSERVE_EMBEDDED_S3: "false",
      AWS_ACCESS_KEY_ID: EMBEDDED_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_CREDENTIALS.secretAccessKey,
    },
  });
  let out = "";
  cli.stdout?.on("data", (c) => (out += c));
  cli.stderr?.on("data", (c) => (out += c));
  return { code: await new Promise((r) => cli.once("close", r)), out };
}
