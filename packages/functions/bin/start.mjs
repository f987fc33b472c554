#!/usr/bin/env node
// `npm start`: builds the playground when it is missing or older than its sources, then runs the local
// stack under tsx (TypeScript sources run directly; no build step to forget). Signals are forwarded so
// Ctrl-C leaves no orphans. `npm start` runs this under `sh -c`, and a SIGTERM to npm kills only that shell:
// so this process also stops the server when its parent goes away, and the server stops when this process
// does (its IPC channel closes), even if this one is killed outright.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MALLOC_ENV } from "./malloc-env.mjs";

// tsx resolved from here, not from the working directory: the command works from any folder.
const tsx = import.meta.resolve("tsx");
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const web = path.join(root, "packages/web");
const newest = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = path.join(dir, e.name);
    return Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }, 0);
const built = path.join(web, "dist/index.html");
const stale = !fs.existsSync(built) || newest(path.join(web, "src")) > fs.statSync(built).mtimeMs;
if (stale && !process.env.GANSERVE_WEB_DIR) {
  console.log("ganserve: building the playground…");
  const r = spawnSync("npm", ["run", "build", "-w", "@ganserve/web"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) console.error("ganserve: playground build failed; serving the API only");
}
const parent = process.ppid;
const child = spawn(process.execPath, ["--import", tsx, path.join(root, "packages/functions/src/local.ts")], {
  stdio: ["inherit", "inherit", "inherit", "ipc"],
  env: { ...MALLOC_ENV, ...process.env, NODE_NO_WARNINGS: process.env.NODE_NO_WARNINGS ?? "1" },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
// Reparented (npm and its shell are gone): nobody is left to stop the server, so stop it now.
const orphaned = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(orphaned);
    child.kill("SIGTERM");
  }
}, 250);
orphaned.unref();
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
