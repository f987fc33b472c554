#!/usr/bin/env node
// `npx ganserve …`: runs the TypeScript CLI under tsx, so there is no build step to forget.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

// tsx resolved from here, not from the working directory: the command works from any folder.
const tsx = import.meta.resolve("tsx");
const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/cli/main.ts");
const child = spawn(process.execPath, ["--import", tsx, main, ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, NODE_NO_WARNINGS: process.env.NODE_NO_WARNINGS ?? "1" },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
