/**
 * Generated, git-ignored things the end-to-end tests need, made once when missing so `npm install &&
 * npm test` works on a fresh clone: the built playground (served by the stack) and SST's platform in
 * .sst/platform (the infra tests evaluate sst.config.ts against it; `sst install` with the sst:install
 * script's flags downloads nothing but npm packages).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export default function setup() {
  const root = path.resolve(import.meta.dirname, "../..");
  const web = spawnSync("npm", ["run", "build", "-w", "@ganserve/web"], { cwd: root, stdio: "ignore" });
  if (web.status !== 0) throw new Error("the playground build failed: run npm run build");
  if (fs.existsSync(path.join(root, ".sst/platform/node_modules/@pulumi/aws"))) return;
  console.log("installing the SST platform for the infra tests (first run only)…");
  const r = spawnSync("npm", ["run", "sst:install"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run sst:install failed");
}
