// Builds the API Lambda the way SST's CLI does (sst/sst pkg/runtime/node/build.go: esbuild ESM bundle,
// platform node, target esnext, keepNames, main fields module/main, its banner, `sharp` and `pg-native`
// forced external plus `nodejs.install`), into a folder holding only what SST ships: the bundle, the
// installed externals, and `resource.enc`, the links encrypted as the CLI does (AES-256-GCM, 12 zero-byte
// nonce, tag appended, key = base64 SST_KEY).
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { PLATFORM, ROOT, type LambdaRuntime } from "../../infra/mock-harness.ts";

const FORCE_EXTERNAL = ["sharp", "pg-native"];
const BANNER = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
  "",
].join("\n");

export function encryptLinks(links: Record<string, unknown>, keyBase64: string): Buffer {
  const cipher = crypto.createCipheriv("aes-256-gcm", Buffer.from(keyBase64, "base64"), Buffer.alloc(12, 0));
  const body = Buffer.concat([cipher.update(JSON.stringify(links)), cipher.final()]);
  return Buffer.concat([body, cipher.getAuthTag()]);
}

/**
 * The package and everything it depends on, symlinked from the workspace's node_modules: what
 * `npm install` of the externals would put beside the bundle (offline, so from the local tree).
 */
function installFromWorkspace(out: string, names: string[]) {
  const seen = new Set<string>();
  // Node's lookup, by hand: exports maps may hide package.json from require.resolve.
  const locate = (name: string, from: string): string | undefined => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, "node_modules", name);
      if (fs.existsSync(path.join(candidate, "package.json"))) return fs.realpathSync(candidate);
      if (dir === path.dirname(dir)) return undefined;
    }
  };
  const visit = (name: string, from: string) => {
    if (seen.has(name)) return;
    const dir = locate(name, from);
    if (!dir) return; // an optional dependency for another platform
    seen.add(name);
    const dest = path.join(out, "node_modules", name);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    if (!fs.existsSync(dest)) fs.symlinkSync(dir, dest, "dir");
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    for (const dep of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]) visit(dep, dir);
  };
  for (const n of names) visit(n, path.join(ROOT, "packages", "core"));
}

export interface BuiltLambda {
  dir: string;
  /** The file Lambda imports (`<handler file>.mjs`) and the export it calls. */
  entry: string;
  exportName: string;
  close(): void;
}

export async function buildLambda(fn: LambdaRuntime): Promise<BuiltLambda> {
  const esbuild = createRequire(path.join(PLATFORM, "package.json"))("esbuild");
  const dot = fn.handler.lastIndexOf(".");
  const source = path.join(ROOT, `${fn.handler.slice(0, dot)}.ts`);
  const exportName = fn.handler.slice(dot + 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-lambda-"));
  const entry = path.join(dir, `${path.basename(source, ".ts").replaceAll(".", "-")}.mjs`);
  const install = Object.keys(fn.nodejs.install ?? {});
  const result = await esbuild.build({
    entryPoints: [source],
    platform: "node",
    external: [...FORCE_EXTERNAL, ...install],
    keepNames: true,
    bundle: true,
    metafile: true,
    outfile: entry,
    write: true,
    format: "esm",
    target: "esnext",
    mainFields: ["module", "main"],
    banner: { js: BANNER },
    logLevel: "silent",
  });
  // SST installs the forced externals only when the bundle imports them, and every `install` entry.
  const inputs = Object.values(result.metafile.inputs) as { imports: { path: string; external?: boolean }[] }[];
  const imported = new Set(inputs.flatMap((i) => i.imports.filter((m) => m.external).map((m) => m.path)));
  installFromWorkspace(dir, [...install, ...FORCE_EXTERNAL.filter((p) => imported.has(p))]);
  fs.writeFileSync(path.join(dir, "resource.enc"), encryptLinks(fn.links, fn.env.SST_KEY));
  return { dir, entry, exportName, close: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
