/**
 * The SDK as a user gets it: built and packed from the sources, installed from the tarball into an empty app
 * outside the repo (no registry: it must need nothing else), then used from plain Node ESM, plain Node CJS
 * and one TypeScript file type-checked under `moduleResolution` node16 and bundler (with the package's own
 * declarations checked too: skipLibCheck off), each against a running local stack with the demo models.
 *
 * The build goes to its own folder, never to packages/sdk/dist, which other tests may be reading meanwhile.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot, startStack, type Stack } from "../../../test/helpers/stack.ts";

const sdkDir = path.resolve(import.meta.dirname, "..");
const MB = 1024 * 1024;

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NODE_NO_WARNINGS: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(cmd: string, args: string[], cwd: string, env?: Record<string, string>) {
  const r = await run(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Bytes of every file under `dir`, links not followed. */
function du(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += du(p);
    else total += fs.lstatSync(p).size;
  }
  return total;
}

/**
 * What every consumer runs: list models, generate, translate a file path, one server error and one network
 * error. Valid as JavaScript and as TypeScript; `SDK` is the entry each consumer imports.
 */
const body = `
const ganserve = new Ganserve(); // GANSERVE_BASE_URL and GANSERVE_API_KEY from the environment
const { models } = await ganserve.models.list();
const generated = await ganserve.generate({ model: "fashion-stylegan2", seeds: [0, 1], format: "png" });
const translated = await ganserve.translate({ model: "emoji-cyclegan", image: "./emoji.png" });
const serverError = await ganserve.generate({ model: "no-such-model", seeds: [0] }).then(() => undefined, (e) => e);
const offline = new Ganserve({ baseUrl: "http://127.0.0.1:9", apiKey: "k", maxRetries: 0 });
const networkError = await offline.models.list().then(() => undefined, (e) => e);
const magic = (image: ImageResult) => Array.from(imageBytes(image).slice(0, 4));
console.log(JSON.stringify({
  models: models.map((m) => m.name).sort(),
  generated: generated.images.map((i) => ({ seed: i.seed, width: i.width, magic: magic(i) })),
  translated: { width: translated.image.width, magic: magic(translated.image) },
  serverError: serverError instanceof GanserveError && {
    name: serverError.name, code: serverError.code, status: serverError.status, requestId: serverError.requestId, message: serverError.message,
  },
  networkError: networkError instanceof GanserveConnectionError && { name: networkError.name, code: networkError.code },
}));
`;
const names = "Ganserve, GanserveConnectionError, GanserveError, imageBytes";
const jsBody = body.replace("(image: ImageResult)", "(image)");

/** Compile-time only: the declarations are precise (a wrong value is an error, not `any`). */
const typeChecks = `
export function neverCalled(client: Ganserve, req: GenerateRequest): Promise<GenerateResponse> {
  // @ts-expect-error noise_mode is one of "const" | "random" | "none"
  client.generate({ model: "m", seeds: [0], noise_mode: "loud" });
  // @ts-expect-error a fine-tune needs a base model, a dataset and a name
  client.fineTunes.create({ dataset: "d" });
  const code: GanserveError["code"] = "model_not_found";
  void code;
  return client.generate(req);
}
`;

const sources: Record<string, string> = {
  "esm.mjs": `import { ${names} } from "@ganserve/sdk";\n${jsBody}`,
  "cjs.cjs": `const { ${names} } = require("@ganserve/sdk");\n(async () => {\n${jsBody}\n})().catch((e) => { console.error(e); process.exit(1); });\n`,
  // One file, both resolutions; "SDK" becomes the entry (bundler resolution has no "node" condition, so it
  // names the Node entry, which takes file paths, explicitly).
  "app.mts": `import { ${names}, type GenerateRequest, type GenerateResponse, type ImageResult } from "SDK";\n${typeChecks}${body}`,
};

const tsconfig = (moduleResolution: "node16" | "bundler") => ({
  compilerOptions: {
    module: moduleResolution === "node16" ? "node16" : "esnext",
    moduleResolution,
    target: "es2022",
    // No @types/node in the app: what the SDK's declarations need must come from the standard libraries.
    lib: ["es2022", "dom", "dom.iterable"],
    types: [],
    strict: true,
    skipLibCheck: false,
    outDir: `out-${moduleResolution}`,
  },
  files: [`app-${moduleResolution}.mts`],
});

let work: string;
let app: string;
let tarball: string;
let stack: Stack;
const env = () => ({ GANSERVE_BASE_URL: stack.url, GANSERVE_API_KEY: stack.apiKey });

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-sdk-pack-"));
  const stackDir = path.join(work, "stack");
  const stackStarted = startStack({ dataDir: fs.mkdtempSync(`${stackDir}-`), env: { GANSERVE_DEMO_MODELS: "true" } });
  try {
    // Build and pack: the package's own files, its own files list, its scripts off (the build is done).
    const pkg = path.join(work, "pkg");
    fs.mkdirSync(pkg);
    await ok(path.join(repoRoot, "node_modules/.bin/tsdown"), ["--out-dir", path.join(pkg, "dist"), "--logLevel", "error"], sdkDir);
    for (const f of ["package.json", "README.md", "CHANGELOG.md", "LICENSE"]) fs.copyFileSync(path.join(sdkDir, f), path.join(pkg, f));
    const packed = JSON.parse(await ok("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], pkg));
    tarball = path.join(work, packed[0].filename);

    app = path.join(work, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    await ok("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], app);
  } finally {
    stack = await stackStarted;
  }
  // The translate example of /openapi.json is an emoji-sized PNG.
  const doc = await (await fetch(`${stack.url}/openapi.json`)).json();
  fs.writeFileSync(path.join(app, "emoji.png"), Buffer.from(doc.components.schemas.TranslateRequest.example.image, "base64"));
  for (const [file, text] of Object.entries(sources)) fs.writeFileSync(path.join(app, file), text);
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe("the packed SDK", () => {
  it("ships dist/, README, CHANGELOG and LICENSE only, with no dependencies", async () => {
    const [info] = JSON.parse(await ok("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], path.join(work, "pkg")));
    const files: string[] = info.files.map((f: { path: string }) => f.path);
    expect(files.filter((f) => !f.startsWith("dist/")).sort()).toEqual(["CHANGELOG.md", "LICENSE", "README.md", "package.json"]);
    for (const f of ["index.js", "index.cjs", "index.d.ts", "index.d.cts", "node.js", "node.cjs", "node.d.ts", "node.d.cts"]) expect(files).toContain(`dist/${f}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(app, "node_modules/@ganserve/sdk/package.json"), "utf8"));
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependencies ?? {}).toEqual({});
    // Nothing from the monorepo leaks into the shipped code or types.
    for (const f of files.filter((f) => f.startsWith("dist/"))) {
      const text = fs.readFileSync(path.join(app, "node_modules/@ganserve/sdk", f), "utf8");
      expect(text, f).not.toMatch(/(from|require\()\s*["'](zod|@ganserve\/core)/);
    }
    console.log(`packed ${info.size} B, unpacked ${info.unpackedSize} B, ${info.entryCount} files`);
  });

  it("installs into an empty app with nothing else: node_modules under 1 MB", () => {
    const nodeModules = path.join(app, "node_modules");
    const sdk = du(path.join(nodeModules, "@ganserve/sdk"));
    const rest = du(nodeModules) - sdk;
    expect(fs.readdirSync(nodeModules).filter((e) => !e.startsWith("."))).toEqual(["@ganserve"]);
    expect(fs.readdirSync(path.join(nodeModules, "@ganserve"))).toEqual(["sdk"]);
    expect(rest).toBeLessThan(1 * MB);
    expect(sdk + rest).toBeLessThan(1 * MB);
    console.log(`installed: SDK ${sdk} B, everything else in node_modules ${rest} B`);
  });

  const expectRun = (stdout: string) => {
    const out = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
    expect(out.models).toEqual(expect.arrayContaining(["emoji-cyclegan", "fashion-stylegan2", "scenes-spade"]));
    const png = [0x89, 0x50, 0x4e, 0x47];
    expect(out.generated).toEqual([expect.objectContaining({ seed: 0, magic: png }), expect.objectContaining({ seed: 1, magic: png })]);
    expect(out.translated.magic).toEqual(png);
    expect(out.serverError).toMatchObject({ name: "GanserveError", code: "model_not_found", status: 404 });
    expect(out.serverError.requestId).toMatch(/\S/);
    expect(out.serverError.message).toMatch(/no-such-model/);
    expect(out.networkError).toEqual({ name: "GanserveConnectionError", code: "connection_error" });
  };

  it("runs the README's install examples from the installed package", async () => {
    // The README the tarball ships: its blocks marked <!-- pack-test --> (CommonJS) run as written.
    const lines = fs.readFileSync(path.join(app, "node_modules/@ganserve/sdk/README.md"), "utf8").split("\n");
    const blocks = lines.flatMap((l, i) => {
      if (l.trim() !== "<!-- pack-test -->" || !lines[i + 1]?.startsWith("```")) return [];
      const end = lines.findIndex((m, j) => j > i + 1 && m.startsWith("```"));
      return [{ line: i + 2, lang: lines[i + 1].slice(3).trim(), code: lines.slice(i + 2, end).join("\n") }];
    });
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    for (const b of blocks) {
      expect(b.lang, `README.md:${b.line}`).toBe("js");
      const file = path.join(app, `readme-${b.line}.cjs`);
      fs.writeFileSync(file, b.code);
      const out = await ok(process.execPath, [file], app, env());
      expect(out, `README.md:${b.line}`).toMatch(/fashion-stylegan2/);
    }
  });

  it("runs from plain Node ESM", async () => {
    expectRun(await ok(process.execPath, ["esm.mjs"], app, env()));
  });

  it("runs from plain Node CJS", async () => {
    expectRun(await ok(process.execPath, ["cjs.cjs"], app, env()));
  });

  it.each(["node16", "bundler"] as const)("type-checks and runs from TypeScript, moduleResolution %s", async (resolution) => {
    const entry = resolution === "node16" ? "@ganserve/sdk" : "@ganserve/sdk/node";
    fs.writeFileSync(path.join(app, `app-${resolution}.mts`), sources["app.mts"].replace('"SDK"', JSON.stringify(entry)));
    fs.writeFileSync(path.join(app, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution), null, 2));
    await ok(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", `tsconfig.${resolution}.json`], app);
    expectRun(await ok(process.execPath, [path.join(`out-${resolution}`, `app-${resolution}.mjs`)], app, env()));
  });
});
