/**
 * Generated, git-ignored things the end-to-end tests need, made once when missing so `npm install &&
 * npm test` works on a fresh clone: the built playground (served by the stack) and SST's platform in
 * .sst/platform (the infra tests evaluate sst.config.ts against it; `sst install` with the sst:install
 * script's flags downloads nothing but npm packages). It also gives the run one temp folder for the stacks'
 * data dirs (`tempDataDir`) and removes it afterwards: a full run writes ~150 MB of stores and models there.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/** dist/ missing, or older than a source of the SDK (or of core's schemas, which its types come from). */
function sdkStale(sdk: string): boolean {
  const built = path.join(sdk, "dist/index.js");
  if (!fs.existsSync(built)) return true;
  const since = fs.statSync(built).mtimeMs;
  const sources = ["src", "scripts", "package.json", "tsdown.config.ts", "../core/src/api", "../core/src/errors.ts"].map((p) => path.join(sdk, p));
  const newer = (p: string): boolean =>
    fs.statSync(p).isDirectory() ? fs.readdirSync(p).some((f) => newer(path.join(p, f))) : fs.statSync(p).mtimeMs > since;
  return sources.some((p) => fs.existsSync(p) && newer(p));
}

export default function setup() {
  const root = path.resolve(import.meta.dirname, "../..");
  // Test workers are started after this and inherit the variable; its own folder per run, so two runs on one
  // machine never delete each other's data.
  const runTmp = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-e2e-run-"));
  process.env.GANSERVE_TEST_TMP = runTmp;
  // The playground and the SDK README's examples import @ganserve/sdk through its package entry (dist/):
  // npm install builds it (prepare); rebuilt here only when a source is newer than the build.
  if (sdkStale(path.join(root, "packages/sdk"))) {
    const sdk = spawnSync("npm", ["run", "build", "-w", "@ganserve/sdk"], { cwd: root, encoding: "utf8" });
    if (sdk.status !== 0) throw new Error(`the SDK build failed: run npm run build -w @ganserve/sdk\n${sdk.stdout}${sdk.stderr}`);
  }
  const web = spawnSync("npm", ["run", "build", "-w", "@ganserve/web"], { cwd: root, stdio: "ignore" });
  if (web.status !== 0) throw new Error("the playground build failed: run npm run build");
  if (!fs.existsSync(path.join(root, ".sst/platform/node_modules/@pulumi/aws"))) {
    console.log("installing the SST platform for the infra tests (first run only)…");
    const r = spawnSync("npm", ["run", "sst:install"], { cwd: root, stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm run sst:install failed");
  }
  return () => fs.rmSync(runTmp, { recursive: true, force: true });
}
