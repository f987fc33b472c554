// Static checks of the GPU container images (Docker cannot run on the development machines): the Dockerfiles
// are parsed with dockerfile-ast and held to the contract the infrastructure relies on.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { DockerfileParser, type Dockerfile, type Instruction } from "dockerfile-ast";
import { GPU_WORKER_ENV, INFERENCE_PORT } from "../infra/config.ts";

const root = path.resolve(import.meta.dirname, "..");
const read = (rel: string) => fs.readFileSync(path.join(root, rel), "utf8");

interface Parsed {
  file: string;
  text: string;
  df: Dockerfile;
  /** Instructions of the final (shipped) stage. */
  final: Instruction[];
}

function parse(file: string): Parsed {
  const text = read(file);
  const df = DockerfileParser.parse(text);
  const all = df.getInstructions();
  const lastFrom = df.getFROMs().at(-1)!;
  const final = all.filter((i) => i.getRange().start.line >= lastFrom.getRange().start.line);
  return { file, text, df, final };
}

const images = {
  inference: parse("containers/inference.Dockerfile"),
  finetune: parse("containers/finetune.Dockerfile"),
};
const kw = (list: Instruction[], keyword: string) => list.filter((i) => i.getKeyword() === keyword);
/** Everything after the keyword, flags included, with line continuations joined. */
const args = (i: Instruction) =>
  i
    .getTextContent()
    .replace(/\\\r?\n\s*/g, " ")
    .replace(/^\s*\S+\s+/, "")
    .trim();
const jsonArgs = (i: Instruction) => JSON.parse(args(i));
/** The final stage's ENV as a map (ENV k=v k2=v2 …, continuation lines joined). */
const envOf = (img: Parsed) =>
  Object.fromEntries(
    kw(img.final, "ENV")
      .flatMap((i) => args(i).split(/\s+/))
      .map((kv) => kv.split("=") as [string, string]),
  );

/**
 * The CUDA runtime each image needs: onnxruntime-node 1.30's CUDA add-on is built for CUDA 12 + cuDNN 9
 * (the "cudnn-runtime" tags); libtensorflow 2.9.1 (tfjs-node-gpu 4.22) opens CUDA 11 sonames and cuDNN 8.
 */
const CUDA_BASE = {
  inference: "12.8.1-cudnn-runtime-ubuntu22.04",
  finetune: "11.8.0-cudnn8-runtime-ubuntu22.04",
} as const;

describe.each(Object.entries(images))("%s.Dockerfile", (name, img) => {
  test("every base image is pinned to an exact tag; the shipped stage is an nvidia/cuda runtime image", () => {
    const froms = img.df.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const stages = new Set<string>();
    for (const f of froms) {
      const image = f.getImageName();
      const tag = f.getImageTag();
      expect(f.getRegistry(), `${name}: ${f.getImage()}`).toBeNull();
      if (image && stages.has(image)) continue;
      expect(tag, `${name}: ${f.getImage()} has no tag`).toBeTruthy();
      expect(tag).not.toBe("latest");
      if (image === "nvidia/cuda") {
        expect(tag).toBe(CUDA_BASE[name as keyof typeof CUDA_BASE]);
      } else {
        expect(image).toBe("node");
        expect(tag).toMatch(/^20\.\d+\.\d+-[a-z]+(-slim)?$/);
      }
      const stage = f.getBuildStage();
      if (stage) stages.add(stage);
    }
    const last = froms.at(-1)!;
    expect(last.getImageName()).toBe("nvidia/cuda");
    expect(last.getImageTag()).toBe(CUDA_BASE[name as keyof typeof CUDA_BASE]);
    expect(last.getBuildStage()).toBeNull();
  });

  test("Node 20 comes from the pinned node image; the shipped stage has no build toolchain", () => {
    const copies = kw(img.final, "COPY").map(args);
    expect(copies).toContain("--from=node /usr/local/bin/node /usr/local/bin/node");
    expect(kw(img.final, "RUN").map(args).join("\n")).not.toMatch(/apt-get install|g\+\+|make/);
  });

  test("production install of the locked workspace", () => {
    const runs = kw(img.df.getInstructions(), "RUN").map(args);
    expect(runs.some((r) => /\bnpm ci --omit=dev\b/.test(r))).toBe(true);
    expect(img.text).not.toMatch(/@latest\b|:latest\b/);
    // Dependencies are installed from the lockfile before the sources are copied.
    expect(kw(img.df.getInstructions(), "COPY").map(args)).toContain("package.json package-lock.json ./");
  });

  test("review defect 22: the SST CLI binary is not shipped (only the sst package's runtime SDK is)", () => {
    const runs = kw(img.df.getInstructions(), "RUN").map(args);
    const install = runs.findIndex((r) => /\bnpm ci --omit=dev\b/.test(r));
    expect(runs.slice(install).some((r) => /\brm -rf node_modules\/sst-\*/.test(r))).toBe(true);
    // The shipped stage takes node_modules from the stage that removed it.
    expect(kw(img.final, "COPY").map(args).filter((c) => c.includes("node_modules"))).toEqual(["--from=deps --chown=root:root /app/node_modules ./node_modules"]);
  });

  test("runs as a non-root user", () => {
    const users = kw(img.final, "USER");
    expect(users.length).toBeGreaterThan(0);
    const user = args(users.at(-1)!).split(":")[0];
    expect(user).not.toMatch(/^(root|0)$/);
    // The user must be created in the same stage.
    expect(kw(img.final, "RUN").map(args).join("\n")).toMatch(new RegExp(`useradd[^\\n]*--uid ${user}\\b`));
    // The application files stay owned by root, so a compromised process cannot rewrite them.
    for (const c of kw(img.final, "COPY")) if (!args(c).startsWith("--from=node")) expect(args(c)).toMatch(/(^| )--chown=root:root /);
  });

  test("no ADD of remote URLs", () => {
    for (const add of kw(img.df.getInstructions(), "ADD")) expect(args(add)).not.toMatch(/(https?|git|ftp):\/\/|git@/);
  });

  test("a per-Dockerfile .dockerignore keeps secrets, state and local installs out of the context", () => {
    const ignore = read(`containers/${name}.Dockerfile.dockerignore`).split("\n").map((l) => l.trim());
    for (const entry of ["**/node_modules", ".git", ".sst", ".env*", ".ganserve"]) expect(ignore).toContain(entry);
    // npm ci needs every workspace manifest even though only core and functions are shipped.
    expect(ignore).toContain("!packages/web/package.json");
    expect(ignore).toContain("!packages/sdk/package.json");
  });
});

describe("inference image", () => {
  const img = images.inference;

  test("ONNX Runtime's CUDA 12 add-on is installed at build and checked present; no tfjs-node-gpu (CUDA 11) beside it", () => {
    const runs = kw(img.df.getInstructions(), "RUN").map(args).join("\n");
    expect(runs).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
    expect(runs).toMatch(/test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/);
    expect(img.text).not.toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(img.text).not.toContain("tfjs-node-gpu@");
  });

  test("the worker listens on every interface and prefers the CUDA provider, as the task definition says", () => {
    const env = envOf(img);
    for (const [k, v] of Object.entries(GPU_WORKER_ENV)) if (k in env) expect(env[k], k).toBe(v);
    expect(env.HOST).toBe("0.0.0.0");
    expect(env.GANSERVE_HOST).toBe("0.0.0.0");
    expect(env.GANSERVE_ORT_PROVIDERS).toBe(GPU_WORKER_ENV.GANSERVE_ORT_PROVIDERS);
  });

  test("EXPOSE and PORT match the ECS task's containerPort", () => {
    expect(INFERENCE_PORT).toBe(8080);
    const exposes = kw(img.final, "EXPOSE").map(args);
    expect(exposes).toEqual([String(INFERENCE_PORT)]);
    const env = kw(img.final, "ENV").map(args).join("\n");
    expect(env).toMatch(new RegExp(`\\bPORT=${INFERENCE_PORT}\\b`));
  });

  test("HEALTHCHECK probes /ready on the configured port", () => {
    const hcs = img.df.getHEALTHCHECKs();
    expect(hcs).toHaveLength(1);
    const hc = args(hcs[0]);
    expect(hc).toMatch(/^--interval=\d+s --timeout=\d+s --start-period=\d+s --retries=\d+\s/);
    expect(hc).toMatch(/\bCMD\b/);
    expect(hc).toContain("/ready");
    expect(hc).toContain("process.env.PORT");
  });

  test("entry point is the prediction worker", () => {
    const cmds = img.df.getCMDs();
    expect(cmds).toHaveLength(1);
    expect(jsonArgs(cmds[0])).toEqual(["node", "--import", "tsx", "packages/functions/src/prediction-worker.ts"]);
  });
});

describe("fine-tune image", () => {
  const img = images.finetune;

  test("tfjs-node-gpu 4.22.0 trains on the GPU, installed on top of the locked tree", () => {
    const tfjs = kw(img.df.getInstructions(), "RUN")
      .map(args)
      .filter((r) => r.includes("tfjs-node-gpu"));
    expect(tfjs).toHaveLength(1);
    expect(tfjs[0]).toMatch(/\bnpm install\b[^\n]*--omit=dev[^\n]*@tensorflow\/tfjs-node-gpu@4\.22\.0(\s|$)/);
    expect(img.text).not.toMatch(/tfjs-node-gpu@(?!4\.22\.0\b)/);
  });

  test("entry point is the worker", () => {
    const cmds = img.df.getCMDs();
    expect(cmds).toHaveLength(1);
    expect(jsonArgs(cmds[0])).toEqual(["node", "--import", "tsx", "packages/functions/src/worker.ts"]);
  });

  test("exposes no port (Batch jobs are not addressed over the network)", () => {
    expect(kw(img.df.getInstructions(), "EXPOSE")).toHaveLength(0);
  });
});
