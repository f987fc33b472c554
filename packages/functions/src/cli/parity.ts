/**
 * `ganserve parity [<dir>] [--engine tfjs|onnx]`: the numeric-parity check against official fixtures (every
 * `manifest.json` under dir; by default the repo's test/fixtures/official, or GANSERVE_FIXTURES_DIR's). tfjs
 * (default) runs the networks on the active TF.js backend (GANSERVE_BACKEND); onnx runs the ONNX exports
 * that serving uses by default.
 */
import path from "node:path";
import { initBackend } from "@ganserve/core/engine/backend";
import { runOnnxParity } from "@ganserve/core/parity/onnx";
import { runParity as runTfjs } from "@ganserve/core/parity/runner";

export async function runParity(args: string[]): Promise<boolean> {
  const i = args.indexOf("--engine");
  const engine = i >= 0 ? args[i + 1] : "tfjs";
  const given = args.find((a, j) => !a.startsWith("--") && !(i >= 0 && j === i + 1));
  // The fixtures ship with the repo (test/fixtures), not with the package: load their location only when needed.
  const dir = given ?? (await import("../../../../test/fixtures/index.ts")).officialDir;
  if (engine !== "tfjs" && engine !== "onnx") throw new Error("--engine is tfjs or onnx");
  let passed = 0;
  let failed = 0;
  if (engine === "onnx") {
    console.log("engine: onnxruntime (CPU)");
    for (const l of await runOnnxParity(path.resolve(dir))) {
      console.log(l.line);
      l.ok ? passed++ : failed++;
    }
  } else {
    console.log(`engine: tfjs, backend: ${await initBackend()}`);
    ({ passed, failed } = await runTfjs(path.resolve(dir)));
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0;
}
