/**
 * The PyTorch anchor of `npm run bench:http`: bench/torch_http.py (a small http.server around the official
 * torch wheel, bench/torch.ts) serves the same weights files with the same work per request and the same thread
 * count, and the same load generator measures it at concurrency 1 and 8. Traffic goes only to 127.0.0.1.
 */
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { runLoad } from "../test/soak/lib.ts";
import { findTorch } from "./torch.ts";

export interface AnchorRow {
  model: string;
  concurrency: number;
  images_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non200: number;
}

/** images/s of the torch server per model at concurrency 1 and 8, or why there is no anchor. */
export async function torchHttpAnchor(models: Record<string, string>, seconds: number): Promise<{ torch: string; threads: number; rows: AnchorRow[] } | { error: string }> {
  const threads = os.availableParallelism();
  const torch = findTorch(threads, { install: true, log: (s) => process.stderr.write(`${s}\n`) });
  if (typeof torch === "string") return { error: torch };
  const args = [path.join(import.meta.dirname, "torch_http.py"), String(threads), ...Object.entries(models).map(([n, f]) => `${n}=${f}`)];
  const child = spawn(torch.python, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdio: ["ignore", "pipe", "inherit"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`torch_http.py exited (${code}) before listening`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const rows: AnchorRow[] = [];
    for (const model of Object.keys(models))
      for (const connections of [1, 8]) {
        const f = await runLoad({ url, path: "/v1/generate", key: "none", body: { model, seeds: [0] }, connections, seconds });
        const ok = f.statuses["200"] ?? 0;
        rows.push({ model, concurrency: connections, images_per_s: ok / seconds, p50_ms: f.p50_ms, p99_ms: f.p99_ms, non200: f.requests - ok });
      }
    return { torch: `${torch.version} (BLAS ${torch.blas}${torch.anchor ? "" : ", NOT the anchor"})`, threads, rows };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    child.kill();
  }
}
