/**
 * Examples are tests: every request example the docs show runs against a fresh stack with the demo models,
 * read from the documents themselves so that docs and test cannot drift apart:
 * - README.md: the fenced blocks marked `<!-- example … -->` run in bash (and every block that makes a request
 *   must carry the mark);
 * - /openapi.json (what /docs shows): every request body example, and each request example with each of its
 *   properties' own examples swapped in, sent to its route;
 * - packages/sdk/README.md: every `ts` block, in order, as one Node script through the Node entry of the SDK.
 * The only edits made to what the documents say: http://localhost:3000 becomes the test stack's URL, and the
 * dataset id placeholder of the fine-tune example becomes a real dataset's id.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { official } from "./fixtures/index.ts";
import { squaresZip, uploadDataset } from "./helpers/finetune.ts";
import { auth, repoRoot, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

const DOC_URL = "http://localhost:3000";

interface Block {
  lang: string;
  code: string;
  /** the HTML comment right above the fence, if any */
  mark?: string;
  line: number;
}

/** Fenced code blocks of a markdown file, with the `<!-- … -->` comment on the line above each. */
function fencedBlocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(repoRoot, file), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\w*)\s*$/);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    const above = lines[i - 1]?.match(/^<!--\s*(.*?)\s*-->$/)?.[1];
    blocks.push({ lang: open[1], code: lines.slice(i + 1, end).join("\n"), mark: above, line: i + 1 });
    i = end;
  }
  return blocks;
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs: number }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, NODE_NO_WARNINGS: "1", ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let stack: Stack;
/** A folder holding what the examples name: the README's .ganserve and checkpoint, the SDK README's files. */
let workDir: string;

const api = async (method: string, route: string, body?: unknown) => {
  const res = await fetch(`${stack.url}${route}`, {
    method,
    headers: { ...auth(stack), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

/** Waits until a fine-tune is finished, so that the concurrency limit is free for the next example. */
async function settled(id: string, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api("GET", `/v1/fine-tunes/${id}`);
    if (["succeeded", "failed", "canceled"].includes(body.status)) return body;
    if (Date.now() > deadline) throw new Error(`fine-tune ${id} still ${body.status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
  workDir = tempDataDir();
  fs.symlinkSync(stack.dataDir, path.join(workDir, ".ganserve"));
  fs.copyFileSync(path.join(official("stylegan2/z32_w32_res32_skip"), "network-snapshot.pkl"), path.join(workDir, "network-snapshot.pkl"));
  // Class 7 (Sneaker) of the class-conditional demo, as the README's fine-tune walkthrough says.
  fs.writeFileSync(path.join(workDir, "sneakers.zip"), await squaresZip(8, 32, "images/7"));
  // The translate example of /openapi.json carries an emoji-sized PNG; the SDK README's CycleGAN example reads one.
  const doc = await (await fetch(`${stack.url}/openapi.json`)).json();
  fs.writeFileSync(path.join(workDir, "emoji.png"), Buffer.from(doc.components.schemas.TranslateRequest.example.image, "base64"));
});

afterAll(async () => {
  await stack?.stop();
});

describe("README.md", () => {
  const blocks = fencedBlocks("README.md");
  const examples = blocks.filter((b) => b.mark?.startsWith("example"));

  it("marks every block that makes a request or runs the CLI as an example", () => {
    expect(examples.length).toBeGreaterThan(0);
    for (const b of blocks)
      if (/\bcurl\b|\/v1\/|npx ganserve|ganserve\.[a-z]/.test(b.code)) expect(b.mark, `README.md:${b.line} makes a request but is not marked as an example`).toMatch(/^example/);
  });

  it.each(examples.map((b) => [`README.md:${b.line}`, b] as const))("%s runs and every request in it succeeds", async (_where, b) => {
    expect(b.lang).toBe("sh");
    expect(b.code).toContain(DOC_URL);
    // `npx ganserve` is the workspace's bin (never a download); curl fails the script on any non-2xx.
    const prelude = [
      "set -euo pipefail",
      `npx() { if [ "$1" = ganserve ]; then shift; node ${JSON.stringify(path.join(repoRoot, "packages/functions/bin/ganserve.mjs"))} "$@"; else echo "npx $1: not expected in an example" >&2; return 127; fi; }`,
      'curl() { command curl --fail-with-body "$@"; echo; }',
    ].join("\n");
    const r = await run("bash", ["-c", `${prelude}\n${b.code.replaceAll(DOC_URL, stack.url)}`], { cwd: workDir, timeoutMs: 240_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const answers = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(answers.length).toBe((b.code.match(/\bcurl\b/g) ?? []).length);
    for (const a of answers) {
      expect(a).not.toHaveProperty("error");
      if (a.images) expect(a.images.length).toBeGreaterThan(0);
    }
  });
});

describe("/openapi.json", () => {
  // biome-ignore lint/suspicious/noExplicitAny: walks arbitrary OpenAPI JSON; each value is checked by the request it builds.
  type Json = Record<string, any>;
  let doc: Json;
  let datasetId: string;
  const deref = (s: Json | undefined): Json | undefined => (s?.$ref ? doc.components.schemas[s.$ref.split("/").pop()] : s);
  const examplesOf = (x: Json | undefined): unknown[] =>
    x ? [x.example, ...(Array.isArray(x.examples) ? x.examples : Object.values(x.examples ?? {}).map((e) => (e as Json).value))].filter((e) => e !== undefined) : [];

  beforeAll(async () => {
    doc = await (await fetch(`${stack.url}/openapi.json`)).json();
    const up = await uploadDataset(stack, await squaresZip(8), "stylegan2");
    expect(up.status).toBe(200);
    datasetId = up.id;
  });

  /** Every JSON request body of the document: its examples, and the first one with each property's examples in turn. */
  const requests = () => {
    const out: { method: string; route: string; body: Json; from: string }[] = [];
    for (const [route, ops] of Object.entries(doc.paths as Json))
      for (const [method, op] of Object.entries(ops as Json)) {
        const media = op.requestBody?.content?.["application/json"];
        if (!media) continue;
        const schema = deref(media.schema)!;
        const bodies = [...examplesOf(media), ...examplesOf(schema)] as Json[];
        expect(bodies.length, `${method.toUpperCase()} ${route} has a JSON body but no example`).toBeGreaterThan(0);
        for (const [i, body] of bodies.entries()) out.push({ method, route, body, from: `example ${i}` });
        for (const [prop, p] of Object.entries((schema.properties ?? {}) as Json))
          for (const ex of examplesOf(deref(p))) out.push({ method, route, body: { ...bodies[0], [prop]: ex }, from: `${prop} example ${JSON.stringify(ex)}` });
      }
    return out;
  };

  it("has request examples for every route that takes a JSON body", () => {
    const routes = new Set(requests().map((r) => `${r.method.toUpperCase()} ${r.route}`));
    for (const r of ["POST /v1/generate", "POST /v1/generate/interpolate", "POST /v1/translate", "POST /v1/datasets", "POST /v1/fine-tunes"]) expect(routes).toContain(r);
  });

  it("every request example succeeds", async () => {
    const placeholder = doc.components.schemas.CreateFineTuneRequest.example.dataset;
    const seen = new Set<string>();
    let checked = 0;
    for (const { method, route, body, from } of requests()) {
      const sent = body.dataset === placeholder ? { ...body, dataset: datasetId } : body;
      const key = `${method} ${route} ${JSON.stringify(sent)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const res = await api(method.toUpperCase(), route, sent);
      expect(res.status, `${method.toUpperCase()} ${route} (${from}): ${JSON.stringify(res.body).slice(0, 500)}`).toBeLessThan(300);
      checked++;
      if (route === "/v1/generate" || route === "/v1/generate/interpolate") expect(res.body.images.length).toBeGreaterThan(0);
      if (route === "/v1/translate") expect(res.body.image.data.length).toBeGreaterThan(0);
      if (route === "/v1/fine-tunes") {
        // Created is what the example shows; it is not left to train on the test's CPUs.
        expect((await api("POST", `/v1/fine-tunes/${res.body.id}/cancel`)).status).toBe(200);
        await settled(res.body.id);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });
});

describe("packages/sdk/README.md", () => {
  /** The ts blocks as one module: imports merged at the top (one per module), then the code, block by block. */
  function script(blocks: Block[]) {
    const imports = new Map<string, { default?: string; named: Set<string> }>();
    const body: string[] = [];
    for (const b of blocks) {
      const code: string[] = [];
      for (const line of b.code.split("\n")) {
        const m = line.match(/^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*"([^"]+)";?\s*$/);
        if (!m) {
          code.push(line);
          continue;
        }
        const entry = imports.get(m[3]) ?? { named: new Set<string>() };
        if (m[1]) entry.default = m[1];
        for (const n of (m[2] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) entry.named.add(n);
        imports.set(m[3], entry);
      }
      body.push(`// packages/sdk/README.md:${b.line}`, ...code);
    }
    const head = [...imports].map(([mod, e]) => `import ${[e.default, e.named.size ? `{ ${[...e.named].join(", ")} }` : undefined].filter(Boolean).join(", ")} from "${mod}";`);
    // Stand-ins for the browser objects two lines use (an <input type="file"> and an <img>).
    const browser = [
      'import { readFileSync as readFileForStandIns } from "node:fs";',
      'const input = { files: [new File([readFileForStandIns("./emoji.png")], "emoji.png", { type: "image/png" })] };',
      'const img = { src: "" };',
    ];
    return [...head, ...browser, ...body].join("\n").replaceAll(DOC_URL, stack.url);
  }

  it("every ts block runs, in order, against the stack", async () => {
    const blocks = fencedBlocks("packages/sdk/README.md").filter((b) => b.lang === "ts");
    expect(blocks.length).toBeGreaterThanOrEqual(9);
    expect(blocks[0].code).toContain(DOC_URL);
    // Under the repo's node_modules so that @ganserve/sdk and sharp resolve as they do for a user's app.
    const dir = path.join(repoRoot, "node_modules/.cache/ganserve-examples");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `sdk-readme-${process.pid}.mts`);
    fs.writeFileSync(file, script(blocks));
    try {
      const tsx = pathToFileURL(path.join(repoRoot, "node_modules/tsx/dist/loader.mjs")).href;
      const r = await run(process.execPath, ["--import", tsx, file], { cwd: workDir, env: { GANSERVE_API_KEY: stack.apiKey }, timeoutMs: 600_000 });
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    } finally {
      fs.rmSync(file, { force: true });
    }
    // What the snippets wrote, and what they did on the server.
    for (const f of ["grid.png", "emoji-twitter.png"]) expect(fs.statSync(path.join(workDir, f)).size).toBeGreaterThan(0);
    const { body } = await api("GET", "/v1/fine-tunes");
    const byName = (name: string) => body.fine_tunes.filter((f: { name: string }) => f.name === name);
    // (the /openapi.json examples created, and canceled, jobs of the same name before)
    expect(byName("my-sneakers").filter((f: { status: string }) => f.status === "succeeded")).toHaveLength(1);
    expect((await api("GET", "/v1/models/my-sneakers")).status).toBe(200);
    expect(byName("my-sneakers-long")).toHaveLength(1);
    expect((await settled(byName("my-sneakers-long")[0].id)).status).toBe("canceled");
  }, 660_000);
});
