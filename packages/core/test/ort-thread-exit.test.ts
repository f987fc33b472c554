/**
 * A runtime thread started ahead of any session (startOrtThread, as the ONNX engine does before it reads the
 * weights) must not keep the process alive, nor crash it: a load that fails before its first session, or a CLI
 * that never gets that far, still exits cleanly, whether the thread has finished loading ONNX Runtime or not.
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const thread = fileURLToPath(new URL("../src/inference/engines/ort-thread.ts", import.meta.url));

describe("ONNX Runtime thread, started early", () => {
  // "loading": the process exits while the thread is still loading the binding; "ready": after it has loaded.
  for (const exitWhen of ["loading", "ready"] as const) it(`lets the process exit when no session was ever made (thread ${exitWhen})`, () => {
    // A module file, not `node -e`: under -e the thread's start differs, and the process exited even when a
    // started thread kept plain scripts alive.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-ort-exit-"));
    const script = path.join(dir, "start.mts");
    const waitReady = `for (let i = 0; i < 600 && ortThreadState() !== "ready"; i++) await new Promise((r) => setTimeout(r, 50));\n`;
    fs.writeFileSync(
      script,
      `const { startOrtThread, ortThreadState } = await import(${JSON.stringify(thread)});\nconsole.log(ortThreadState());\nstartOrtThread();\n` +
        (exitWhen === "ready" ? waitReady : "") +
        `console.log(ortThreadState());\n`,
    );
    let r: SpawnSyncReturns<string>;
    try {
      r = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 30_000 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // The thread did start (a startOrtThread that did nothing would print "idle" twice), and the script ran to its end.
    expect(r.stdout.trim().split("\n"), r.stderr).toEqual(["idle", exitWhen]);
    // killed by the timeout: signal SIGTERM and status null
    expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 0, signal: null });
  });
});
