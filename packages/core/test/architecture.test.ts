/**
 * Imports go one way. `functions` (entry points) → `core` (domain) → libraries; inside core, from the
 * use-case folders down to networks, storage and images, and the leaf utilities under them. Every import
 * of every core module (type-only and dynamic ones included) is checked against the layer table below;
 * a new folder fails until it is given a layer. Also: every `exports` target of every workspace package
 * exists.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const SRC = path.join(ROOT, "packages/core/src");

/**
 * Top to bottom. A module may import its own folder and any folder of a LOWER layer; never one of its own
 * layer or above. Top-level files (errors.ts, …) are folders of their own, named without the extension.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["demo", "eval", "parity"], // tools over the whole domain: demo models, evaluation, parity with upstream
  ["predictions"], // queued generate/translate/video/projection jobs over inference, with webhooks as jobs send them
  ["jobs"], // fine-tune jobs: trainers on datasets, published to the registry
  ["inference", "training", "datasets", "auth"], // the use cases
  ["api"], // the HTTP contract's schemas and the projection of model records onto them
  ["models"], // the model registry and record schema
  ["networks", "latents"], // networks: each layer once, eager and graph; latents: the w codec, .npy/.npz, SeFa
  ["onnx"], // the graph builder, protobuf writer and graph passes that networks/ export through
  ["checkpoints"],
  ["storage", "images", "engine", "random", "limits"],
  ["config", "log", "errors", "families"], // leaves: import nothing of core
];

const SOURCE = /\.(ts|tsx|mts|mjs|js)$/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : SOURCE.test(e.name) ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, static, type-only or dynamic (comments ignored). */
function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** core folder of a path under packages/core/src: its first segment, or a top-level file's name. */
function folderOf(file: string): string {
  const [first, ...rest] = path.relative(SRC, file).split(path.sep);
  return rest.length > 0 ? first : first.replace(SOURCE, "");
}

interface Edge {
  from: string;
  to: string;
  file: string;
  specifier: string;
}

/** Edges between core folders, and imports that leave core for another workspace package. */
function coreImports(files: readonly { file: string; text: string }[]) {
  const edges: Edge[] = [];
  const outward: Edge[] = [];
  for (const { file, text } of files) {
    const from = folderOf(file);
    for (const specifier of importsOf(text)) {
      let target: string | undefined;
      if (specifier.startsWith(".")) target = path.resolve(path.dirname(file), specifier);
      else if (specifier.startsWith("@ganserve/core/")) target = path.join(SRC, specifier.slice("@ganserve/core/".length));
      else if (specifier.startsWith("@ganserve/")) {
        outward.push({ from, to: specifier, file, specifier });
        continue;
      } else continue; // a library or node: built-in
      if (path.relative(SRC, target).startsWith("..")) {
        outward.push({ from, to: path.relative(ROOT, target), file, specifier });
        continue;
      }
      const to = folderOf(target);
      if (to !== from) edges.push({ from, to, file: path.relative(ROOT, file), specifier });
    }
  }
  return { edges, outward };
}

/** Breaches of the layer table: an import of the same layer or one above. */
function layerViolations(edges: readonly Edge[], layers = LAYERS): string[] {
  const rank = new Map(layers.flatMap((folders, i) => folders.map((f) => [f, i] as const)));
  return edges
    .filter((e) => (rank.get(e.to) ?? -1) <= (rank.get(e.from) ?? -1))
    .map((e) => `${e.file}: ${e.from}/ (layer ${rank.get(e.from)}) imports ${e.specifier} in ${e.to}/ (layer ${rank.get(e.to)})`);
}

/** Folder cycles (each as a path a → … → a), found by depth-first search over the folder graph. */
function folderCycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) next.set(e.from, (next.get(e.from) ?? new Set()).add(e.to));
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      if (state.get(to) === "open") cycles.push([...stack.slice(stack.indexOf(to)), to]);
      else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...next.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

const files = sourceFiles(SRC).map((file) => ({ file, text: fs.readFileSync(file, "utf8") }));
const { edges, outward } = coreImports(files);

describe("core's imports", () => {
  it("sees the imports it checks (type-only, re-exports and dynamic ones too)", () => {
    expect(importsOf('import type { A } from "./a.ts";\nexport { b } from "../b.ts";\n// import { c } from "./c.ts";\nawait import("./d.ts");')).toEqual([
      "./a.ts",
      "../b.ts",
      "./d.ts",
    ]);
    expect(edges.length).toBeGreaterThan(50);
  });

  it("gives every folder of packages/core/src a layer", () => {
    const placed = new Set(LAYERS.flat());
    const folders = new Set(files.map((f) => folderOf(f.file)));
    expect([...folders].filter((f) => !placed.has(f)).sort()).toEqual([]);
    expect([...placed].filter((f) => !folders.has(f)).sort(), "layer table names a folder that no longer exists").toEqual([]);
  });

  it("imports only folders of lower layers", () => {
    expect(layerViolations(edges)).toEqual([]);
  });

  it("has no cycles between folders", () => {
    expect(folderCycles(edges)).toEqual([]);
  });

  it("never imports functions, sdk or web (or anything else outside core's src)", () => {
    expect(outward.map((e) => `${path.relative(ROOT, e.file)}: ${e.specifier}`)).toEqual([]);
  });

  it("reports a breach: an upward import and the cycle it closes", () => {
    const bad = coreImports([
      ...files,
      { file: path.join(SRC, "storage/bad.ts"), text: 'import type { JobRecord } from "../jobs/store.ts";' },
    ]);
    const layerOf = (folder: string) => LAYERS.findIndex((row) => row.includes(folder));
    expect(layerViolations(bad.edges)).toEqual([
      expect.stringContaining(`storage/ (layer ${layerOf("storage")}) imports ../jobs/store.ts in jobs/ (layer ${layerOf("jobs")})`),
    ]);
    const cycles = folderCycles(bad.edges);
    expect(cycles.length).toBeGreaterThan(0);
    expect(cycles.every((c) => c.includes("storage") && c[0] === c[c.length - 1])).toBe(true);
    const out = coreImports([{ file: path.join(SRC, "jobs/bad.ts"), text: 'import { app } from "@ganserve/functions/api/app";\nimport "../../../functions/src/server.ts";' }]);
    expect(out.outward).toHaveLength(2);
  });
});

describe("package exports", () => {
  type Target = string | null | { [condition: string]: Target } | Target[];
  const targets = (t: Target): string[] =>
    t === null ? [] : typeof t === "string" ? [t] : Array.isArray(t) ? t.flatMap(targets) : Object.values(t).flatMap(targets);
  const packages = fs
    .readdirSync(path.join(ROOT, "packages"))
    .map((name) => path.join(ROOT, "packages", name))
    .filter((dir) => fs.existsSync(path.join(dir, "package.json")));

  it.each(packages.map((dir) => [path.basename(dir), dir]))("%s: every exports target exists", (_name, dir) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { exports?: Target };
    const missing: string[] = [];
    for (const target of pkg.exports === undefined ? [] : targets(pkg.exports)) {
      const file = path.join(dir, target);
      if (!target.includes("*")) {
        if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) missing.push(target);
        continue;
      }
      // A pattern ("./src/*.ts"): its folder exists and at least one file matches it.
      const [before, after] = target.split("*");
      const folder = path.join(dir, path.dirname(`${before}x`));
      const prefix = path.basename(`${before}x`).slice(0, -1);
      const matches = fs.existsSync(folder) ? fs.readdirSync(folder).filter((f) => f.startsWith(prefix) && f.endsWith(after.replace(/^.*\//, ""))) : [];
      if (matches.length === 0) missing.push(target);
    }
    expect(missing).toEqual([]);
  });
});
