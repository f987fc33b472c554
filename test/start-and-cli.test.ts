/**
 * The two commands the README tells people to type: `npx ganserve --help` prints the usage, and `npm start`
 * stops on SIGTERM without leaving a server behind (npm runs the script under `sh -c` and a SIGTERM to npm
 * kills only that shell, so the launcher must notice on its own).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, repoRoot, tempDataDir } from "./helpers/stack.ts";

describe("npx ganserve --help", () => {
  it("prints the usage of every command and exits 0", () => {
    // Exactly what people type; npm_config_yes=false: never fetch a package, the workspace's own bin is the one meant.
    const r = spawnSync("npx", ["ganserve", "--help"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000, env: { ...process.env, npm_config_yes: "false" } });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage:/);
    for (const command of ["import", "parity", "keys create", "eval"]) expect(r.stdout).toContain(`ganserve ${command}`);
  });

  it("an unknown command still fails with the usage on stderr", () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, "packages/functions/bin/ganserve.mjs"), "frobnicate"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain("usage:");
  });
});

describe("npm start and signals", () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    // Only if a test failed half-way: the whole group this test started (npm, its shell, the launcher, the server).
    for (const p of started.splice(0)) if (p.pid && p.exitCode === null && p.signalCode === null) try { process.kill(-p.pid, "SIGKILL"); } catch { /* gone */ }
  });

  const answers = async (url: string) => {
    try {
      await fetch(url, { signal: AbortSignal.timeout(2000) });
      return true;
    } catch {
      return false;
    }
  };

  /** Starts the command with its own data dir and ports, detached (a group of its own), and waits for /health. */
  async function launch(cmd: string, args: string[]) {
    const port = await freePort();
    const s3Port = await freePort();
    const webDir = tempDataDir(); // an empty folder as the playground: no build on start
    const child = spawn(cmd, args, {
      cwd: repoRoot,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PORT: String(port),
        GANSERVE_DATA_DIR: tempDataDir(),
        GANSERVE_EMBEDDED_S3_PORT: String(s3Port),
        GANSERVE_WEB_DIR: webDir,
        GANSERVE_DEMO_MODELS: "false",
        GANSERVE_LOG_LEVEL: "warn",
      },
    });
    started.push(child);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const api = `http://127.0.0.1:${port}/health`;
    const deadline = Date.now() + 90_000;
    while (!(await answers(api))) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`no /health in 90 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await answers(`http://127.0.0.1:${s3Port}/`)).toBe(true);
    return { child, exited, api, s3: `http://127.0.0.1:${s3Port}/`, output: () => out };
  }

  const stopsAnswering = async (url: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (await answers(url)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
    return true;
  };

  it("SIGTERM to `npm start` stops the server: the process exits and nothing serves the ports any more", async () => {
    const s = await launch("npm", ["start"]);
    process.kill(s.child.pid!, "SIGTERM");
    await s.exited;
    // The server drains for at most 10 s before it forces its exit; give it a little more.
    expect(await stopsAnswering(s.api, 15_000), `still serving after SIGTERM:\n${s.output()}`).toBe(true);
    expect(await stopsAnswering(s.s3, 5_000), "embedded S3 still serving").toBe(true);
    // Nothing of the group is left either (kill(-pgid, 0) throws ESRCH once every member is gone).
    await expect.poll(() => { try { process.kill(-s.child.pid!, 0); return "alive"; } catch { return "gone"; } }, { timeout: 15_000 }).toBe("gone");
  });

  it("the server stops even when the launcher itself is killed outright (SIGKILL)", async () => {
    const s = await launch(process.execPath, [path.join(repoRoot, "packages/functions/bin/start.mjs")]);
    process.kill(s.child.pid!, "SIGKILL");
    await s.exited;
    expect(await stopsAnswering(s.api, 15_000), `orphaned server still serving:\n${s.output()}`).toBe(true);
    await expect.poll(() => { try { process.kill(-s.child.pid!, 0); return "alive"; } catch { return "gone"; } }, { timeout: 15_000 }).toBe("gone");
  });
});
