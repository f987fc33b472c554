import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { wasmThreadsFromEnv } from "../src/engine/wasm-threads.ts";

const CHILD = path.join(import.meta.dirname, "helpers", "wasm-threads-child.ts");

function run(threads: string | undefined): { threads: number; value: number; grad: number[] } {
  const env = { ...process.env };
  delete env.GANSERVE_WASM_THREADS;
  if (threads !== undefined) env.GANSERVE_WASM_THREADS = threads;
  const r = spawnSync(process.execPath, ["--import", "tsx", CHILD], { env, encoding: "utf8", timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("GANSERVE_WASM_THREADS", () => {
  test("parses a thread count; unset, 0 and 1 mean the single-threaded build", () => {
    expect([undefined, "", "0", "1"].map((v) => wasmThreadsFromEnv(v))).toEqual([undefined, undefined, undefined, undefined]);
    expect(wasmThreadsFromEnv("2")).toBe(2);
    expect(() => wasmThreadsFromEnv("two")).toThrow(/whole number/);
    expect(() => wasmThreadsFromEnv("1.5")).toThrow(/whole number/);
  });

  test("the threaded build starts in Node, runs on 2 threads and gives the single-threaded gradient bit for bit", () => {
    const single = run(undefined);
    const threaded = run("2");
    expect(single.threads).toBe(1);
    expect(threaded.threads).toBe(2);
    expect(threaded.value).toBe(single.value);
    expect(threaded.grad).toEqual(single.grad);
  }, 240_000);
});
