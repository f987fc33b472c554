/** `ganserve parity <dir>`: the numeric-parity check against official fixtures, on the active backend. */
import path from "node:path";
import { initBackend } from "@ganserve/core/engine/backend";
import { runParity as run } from "@ganserve/core/parity/runner";

export async function runParity(dir: string | undefined): Promise<boolean> {
  if (!dir) throw new Error("parity needs a fixtures directory, e.g. npm run parity -- ../shared/fixtures/official");
  const backend = await initBackend();
  console.log(`backend: ${backend}`);
  const r = await run(path.resolve(dir));
  console.log(`${r.passed} passed, ${r.failed} failed`);
  return r.failed === 0 && r.passed > 0;
}
