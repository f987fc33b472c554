/**
 * The infra tests evaluate sst.config.ts against SST's platform in .sst/platform, which is generated (and
 * git-ignored). Generate it once when missing so `npm install && npm test` works on a fresh clone.
 * `sst install` here downloads nothing but npm packages (see the sst:install script's flags).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export default function setup() {
  const root = path.resolve(import.meta.dirname, "../..");
  if (fs.existsSync(path.join(root, ".sst/platform/node_modules/@pulumi/aws"))) return;
  console.log("installing the SST platform for the infra tests (first run only)…");
  const r = spawnSync("npm", ["run", "sst:install"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run sst:install failed");
}
