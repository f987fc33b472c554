/**
 * A directory of ONNX Runtime-optimised models, so that a second start of the same model skips both the ONNX
 * export (seconds: StyleGAN2 config-f at 256² spends ~10 s building its graph in JavaScript) and ORT's graph
 * optimisation. The first start exports the graph as always and asks ORT to write the model it optimised
 * (`optimizedModelFilePath`); later starts create the session from that file with optimisation off.
 *
 * The key is a hash of everything the optimised graph depends on: the weights (their sha256), the graph's name
 * and the model config, the code that builds graphs (a hash of this package's sources, so any change to an
 * exporter or network invalidates every entry), the ONNX Runtime version, the execution providers, and the CPU
 * (at level "all" ORT writes NCHWc ops laid out for the CPU it runs on, see its warning when saving). Where the
 * sources cannot be read (a bundled build) there is no code fingerprint, and the cache is off rather than
 * trusting a key that would survive a code change.
 *
 * Entries are written to a temporary name and renamed into place once the session that wrote them opened, so a
 * crash or a concurrent start never leaves a half-written model under a key.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cpuInfo } from "./cpu.ts";

let fingerprint: string | null | undefined;

/** sha256 over this package's TypeScript sources (src/), read once; null when they are not on disk. */
export function codeFingerprint(): string | null {
  if (fingerprint !== undefined) return fingerprint;
  const src = fileURLToPath(new URL("../../", import.meta.url));
  try {
    const h = createHash("sha256");
    const files = (fs.readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts") || f.endsWith(".mjs")).sort();
    if (!files.some((f) => f.startsWith(`onnx${path.sep}`))) throw new Error("no exporter sources");
    for (const f of files) h.update(f).update("\0").update(fs.readFileSync(path.join(src, f))).update("\0");
    fingerprint = h.digest("hex");
  } catch {
    fingerprint = null;
  }
  return fingerprint;
}

/** The installed onnxruntime-node's version, without loading its native binding on this thread. */
export const ortVersion = (): string => (createRequire(import.meta.url)("onnxruntime-node/package.json") as { version: string }).version;

export interface GraphIdentity {
  /** sha256 of the weights file the graph was built from */
  weightsSha256: string;
  /** which graph of the model ("synthesis-const", "AtoB", ...) */
  graph: string;
  config: unknown;
}

export class OrtModelCache {
  constructor(readonly dir: string) {}

  /** The file a graph's optimised model lives in, or null when no trustworthy key can be made. */
  fileFor(id: GraphIdentity): string | null {
    const code = codeFingerprint();
    if (!code) return null;
    const cpu = cpuInfo();
    const key = createHash("sha256")
      .update(
        JSON.stringify({
          ...id,
          code,
          ort: ortVersion(),
          // the same variable the ORT thread reads (ort-worker.mjs): another provider list optimises differently
          providers: process.env.GANSERVE_ORT_PROVIDERS || "cpu",
          level: "all",
          cpu: [cpu.vendor, cpu.family, cpu.model, cpu.features],
        }),
      )
      .digest("hex");
    return path.join(this.dir, `${key}.onnx`);
  }

  /** A unique name beside `file` for ORT to write to; `commit` moves it into place. */
  pending(file: string): string {
    fs.mkdirSync(this.dir, { recursive: true });
    return `${file}.${process.pid}.${randomUUID()}.tmp`;
  }

  commit(tmp: string, file: string): void {
    fs.renameSync(tmp, file);
  }

  discard(tmp: string): void {
    fs.rmSync(tmp, { force: true });
  }
}
