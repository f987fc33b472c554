/**
 * ONNX Runtime-optimised models, kept so that a later start of the same model skips both the ONNX export
 * (seconds: StyleGAN2 config-f at 256² spends ~5 s building its graph in JavaScript) and ORT's graph
 * optimisation. The first start exports the graph as always and asks ORT to write the model it optimised
 * (`optimizedModelFilePath`); later starts create the session from that file with optimisation off.
 *
 * Two tiers. A local directory serves restarts of the same machine. The model store (an object per graph under
 * the model version, storage/keys.ts `modelKeys.compiled`) serves every other container: a serving task scaled
 * from zero starts on an empty disk, so without it each new task would pay the build again. A start that finds
 * no local entry copies the store's into the directory; a start that built one copies it to the store in the
 * background (a streamed copy: the first image never waits for it, and a failed copy costs the next container
 * its speed, never this one its answer).
 *
 * The key is a hash of everything the optimised graph depends on: the weights (their sha256), the graph's name
 * and the model config, the code that builds graphs (a hash of this package's sources, so any change to an
 * exporter or network invalidates every entry), the ONNX Runtime version, the execution providers, and the CPU
 * (at level "all" ORT writes NCHWc ops laid out for the CPU it runs on, see its warning when saving). Where the
 * sources cannot be read (a bundled build) there is no code fingerprint, and the cache is off rather than
 * trusting a key that would survive a code change.
 *
 * Entries are written to a temporary name and renamed into place once complete, so a crash or a concurrent
 * start never leaves a half-written model under a key.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { modelKeys } from "../../storage/keys.ts";
import type { Storage } from "../../storage/storage.ts";
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

/** One graph's place in both tiers. */
export interface CacheEntry {
  key: string;
  /** the local file */
  file: string;
  /** the model version whose folder in the model store holds the shared copy (none: local tier only) */
  model?: { name: string; version: string };
}

/** The model store as the cache's second tier, and where its failures are reported (they never fail a load). */
export interface SharedTier {
  store: Storage;
  onError?: (err: unknown, what: string) => void;
}

export class OrtModelCache {
  /** copies to the model store still running (flush() waits for them) */
  private readonly uploads = new Set<Promise<void>>();

  /** `shared`: the model store that shares entries between containers; without one, the directory alone. */
  constructor(
    readonly dir: string,
    private readonly shared?: SharedTier,
  ) {}

  /** Where a graph's optimised model lives, or null when no trustworthy key can be made. */
  entry(id: GraphIdentity, model?: { name: string; version: string }): CacheEntry | null {
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
    return { key, file: path.join(this.dir, `${key}.onnx`), model };
  }

  /**
   * True when the entry's file is here: already on this disk, or copied now from the model store. A store that
   * cannot be read counts as a miss (the caller builds the graph), as does a copy cut short.
   */
  async fetch(e: CacheEntry): Promise<boolean> {
    if (fs.existsSync(e.file)) return true;
    if (!this.shared || !e.model) return false;
    let tmp: string;
    try {
      tmp = this.pending(e.file);
    } catch {
      return false;
    }
    try {
      if (!(await this.shared.store.getFile(modelKeys.compiled(e.model.name, e.model.version, e.key), tmp))) return false;
      this.commit(tmp, e.file);
      return true;
    } catch (err) {
      this.discard(tmp);
      this.shared.onError?.(err, `reading the compiled graph ${e.key} of ${e.model.name}/${e.model.version} (building it instead)`);
      return false;
    }
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

  /** Copies a freshly built entry to the model store, in the background. */
  share(e: CacheEntry): void {
    if (!this.shared || !e.model) return;
    const { name, version } = e.model;
    const { store, onError } = this.shared;
    const upload = store
      .putFile(modelKeys.compiled(name, version, e.key), e.file, { contentType: "application/octet-stream" })
      .catch((err) => onError?.(err, `copying the compiled graph ${e.key} of ${name}/${version} to the model store`))
      .finally(() => this.uploads.delete(upload));
    this.uploads.add(upload);
  }

  /** Waits for the copies to the model store in flight (a process about to exit, a test). */
  async flush(): Promise<void> {
    while (this.uploads.size) await Promise.all(this.uploads);
  }
}
