// What a container image would hold and run, read from its Dockerfile: the final stage's COPY set laid out
// in a fresh folder (the image's /app) and the CMD. node_modules comes from a build stage in the image;
// here it links the repository's installed packages, with the workspace packages pointing inside the folder
// so that nothing outside the COPY set is reachable through them.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { ROOT } from "../../infra/mock-harness.ts";

/** The image's /app for `containers/<name>`: a temporary folder the caller removes. */
export function imageLayout(dockerfile: string): string {
  const df = DockerfileParser.parse(fs.readFileSync(path.join(ROOT, dockerfile), "utf8"));
  const final = df.getInstructions().filter((i) => i.getRange().start.line >= (df.getFROMs().at(-1)?.getRange().start.line ?? 0));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-image-"));
  const workspace: string[] = [];
  for (const copy of final.filter((i) => i.getKeyword() === "COPY")) {
    if (copy.getTextContent().includes("--from=")) continue; // node and node_modules come from the build stages
    const [src, dest] = copy.getArguments().map((a) => a.getValue());
    fs.cpSync(path.join(ROOT, src), path.join(dir, dest === "./" ? path.basename(src) : dest), { recursive: true });
    if (src.startsWith("packages/")) workspace.push(path.basename(src));
  }
  const modules = path.join(dir, "node_modules");
  fs.mkdirSync(path.join(modules, "@ganserve"), { recursive: true });
  for (const name of fs.readdirSync(path.join(ROOT, "node_modules"))) {
    if (name !== "@ganserve") fs.symlinkSync(path.join(ROOT, "node_modules", name), path.join(modules, name));
  }
  for (const pkg of workspace) fs.symlinkSync(path.join(dir, "packages", pkg), path.join(modules, "@ganserve", pkg));
  return dir;
}

/** The image's CMD (exec form), e.g. ["node", "--import", "tsx", "packages/functions/src/worker.ts"]. */
export function imageCmd(dockerfile: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, dockerfile), "utf8");
  const cmd = /^CMD (\[.*\])\s*$/m.exec(text)?.[1];
  if (!cmd) throw new Error(`${dockerfile} has no exec-form CMD`);
  return JSON.parse(cmd) as string[];
}

/** An address of this machine that is not loopback: what a load balancer or health check would dial. */
export function nonLoopbackAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  throw new Error("this machine has no non-loopback IPv4 address to probe from");
}
