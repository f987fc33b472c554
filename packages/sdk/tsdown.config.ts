/**
 * The published package: ESM + CJS + declarations for `.` and `./node`, self-contained. src/types.ts infers
 * the API types from @ganserve/core's zod schemas; the build swaps it for the flat copy that
 * scripts/flat-types.ts prints (same types, as the checker resolves them, no imports), so dist/ needs
 * neither core nor zod.
 *
 * Versions: tsdown 0.21.10 with rolldown-plugin-dts 0.23.2, pinned; later tsdown releases want Node 22 or
 * break `npm ci` on Node 20, which this repo supports.
 */
import fs from "node:fs";
import path from "node:path";
import { defineConfig, type TsdownPlugin } from "tsdown";
import { writeFlatTypes } from "./scripts/flat-types.ts";

const typesFile = path.resolve(import.meta.dirname, "src/types.ts");
const flatDir = path.resolve(import.meta.dirname, ".flat");
let flat: { ts: string; dts: string } | undefined;
let flatOf = 0;

const flatTypes: TsdownPlugin = {
  name: "ganserve:flat-types",
  // Once per run (tsdown makes three builds: ESM, CJS, CJS declarations); again in watch mode after a change.
  buildStart() {
    const mtime = fs.statSync(typesFile).mtimeMs;
    if (flat && flatOf === mtime) return;
    flat = writeFlatTypes(typesFile, flatDir);
    flatOf = mtime;
  },
  // JavaScript: the source files' `import … from "./types.ts"` gets the flat file (it holds one constant).
  resolveId(source, importer) {
    if (!flat || !importer || /\.d\.[cm]?ts$/.test(importer) || path.resolve(path.dirname(importer), source) !== typesFile) return null;
    return flat.ts;
  },
  // Declarations: the dts plugin resolves "./types.ts" on its own, to the declaration tsc emitted for
  // src/types.ts (which imports core); that module's text becomes the flat declarations instead.
  load: {
    order: "pre",
    handler(id) {
      if (!flat || id !== typesFile.replace(/\.ts$/, ".d.ts")) return null;
      return fs.readFileSync(flat.dts, "utf8");
    },
  },
};

export default defineConfig({
  entry: { index: "src/index.ts", node: "src/node.ts" },
  format: ["esm", "cjs"],
  // The main entry runs in browsers, Deno, Bun and workers too; the Node entry's built-ins stay imports.
  platform: "neutral",
  deps: { neverBundle: [/^node:/] },
  target: "es2022",
  dts: true,
  clean: true,
  outputOptions: { exports: "named" },
  // Through inputOptions rather than `plugins`: tsdown leaves user plugins out of the build that writes the
  // CJS declarations, which needs this one as much as the others.
  inputOptions(options) {
    options.plugins = [flatTypes, options.plugins];
    options.checks = { ...options.checks, pluginTimings: false };
  },
});
