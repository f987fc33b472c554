/**
 * The filesystem half of the embedded S3 server: buckets and objects in a data directory, with writes that
 * are atomic (temp file + rename), keys that cannot leave the directory, and listings in S3's order.
 *
 * Layout under `<directory>` (the underscores keep both apart from any bucket name):
 *   _buckets/<bucket>/<seg>/<seg>/<leaf>~  one file per object: its bytes, then a JSON trailer (key, etag,
 *                                           content-type, user metadata), then the trailer's length and a magic
 *   _tmp/                                  bodies being received (renamed into place when complete)
 * Each key segment is percent-encoded byte by byte except [A-Za-z0-9_-] and inner dots, so no segment is
 * `.`, `..`, hidden, or contains a separator; an object file ends in `~`, which the encoding never produces,
 * so the key `a` (file `a~`) and the keys `a/…` (directory `a`) live side by side as they do in S3. A
 * segment whose encoding would be long is stored as `~<sha256>` (a directory, with its real name in
 * `.segment`) or `~<sha256>~` (an object, whose trailer names its key), so no valid key hits ENAMETOOLONG.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { S3Error } from "./errors.ts";

const MAGIC = Buffer.from("GSO1");
const TRAILER_FIXED = 8; // uint32 length + magic
const MAX_ENCODED_SEGMENT = 200;
const MAX_KEY_BYTES = 1024;
const MAX_SEGMENT_BYTES = 255;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export interface ObjectMeta {
  key: string;
  size: number;
  /** hex MD5 of the body, unquoted */
  etag: string;
  contentType?: string;
  /** user metadata (x-amz-meta-*), names lowercased without the prefix */
  metadata: Record<string, string>;
  lastModified: Date;
}

interface Trailer {
  key: string;
  etag: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

export interface PutConditions {
  /** `If-None-Match: *`: only when no object has the key */
  ifNoneMatch?: string;
  /** `If-Match: "<etag>"`: only when the current object has this ETag */
  ifMatch?: string;
}

export interface PutInput {
  contentType?: string;
  metadata?: Record<string, string>;
  /** declared Content-Length; the body must have exactly this many bytes (unset: a POST form's file, capped by its reader) */
  contentLength?: number;
  /** fewest bytes the body may have (a POST policy's content-length-range) */
  minLength?: number;
  /** hex SHA-256 the body must have (signed x-amz-content-sha256), or undefined for UNSIGNED-PAYLOAD */
  sha256?: string;
  /** base64 Content-MD5 the body must have */
  contentMd5?: string;
}

export interface OpenedObject {
  meta: ObjectMeta;
  /** The body, or bytes start..end (inclusive) of it; closes the file when it ends. */
  stream(start?: number, end?: number): Readable;
  close(): Promise<void>;
}

export type ListEntry = { kind: "object"; key: string } | { kind: "prefix"; prefix: string };

const utf8 = (s: string) => Buffer.from(s, "utf8");
const byteCompare = (a: string, b: string) => Buffer.compare(utf8(a), utf8(b));
const unquote = (etag: string) => etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");

/** Throws a 400 S3 error unless the key is one this store can hold exactly as S3 would. */
export function validateKey(key: string): void {
  const bytes = utf8(key).length;
  if (key.length === 0) throw new S3Error(400, "InvalidArgument", "The object key must not be empty");
  if (bytes > MAX_KEY_BYTES) throw new S3Error(400, "KeyTooLongError", `Your key is too long (${bytes} bytes, at most ${MAX_KEY_BYTES})`);
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(key)) throw new S3Error(400, "InvalidArgument", "The object key is not valid UTF-8");
  if (/\p{Cc}/u.test(key)) throw new S3Error(400, "InvalidArgument", "The object key must not contain control characters");
  for (const seg of key.split("/")) {
    if (seg === "") throw new S3Error(400, "InvalidArgument", "The object key must not have empty segments (leading, trailing or double '/')");
    if (seg === "." || seg === "..") throw new S3Error(400, "InvalidArgument", "The object key must not have '.' or '..' segments");
    if (utf8(seg).length > MAX_SEGMENT_BYTES)
      throw new S3Error(400, "KeyTooLongError", `A key segment is too long (${utf8(seg).length} bytes, at most ${MAX_SEGMENT_BYTES})`);
  }
}

export function validBucketName(name: string): boolean {
  return BUCKET_RE.test(name) && !name.includes("..");
}

function encodeSegment(seg: string): string {
  let out = "";
  const bytes = utf8(seg);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9_-]/.test(c) || (c === "." && i > 0)) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function decodeSegment(name: string): string {
  return Buffer.from(name.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))), "latin1").toString("utf8");
}

const hashed = (seg: string) => `~${createHash("sha256").update(seg, "utf8").digest("hex")}`;
/** On-disk name of a directory segment. */
const dirName = (seg: string) => {
  const enc = encodeSegment(seg);
  return enc.length > MAX_ENCODED_SEGMENT ? hashed(seg) : enc;
};
/** On-disk name of an object's leaf segment. */
const fileName = (seg: string) => {
  const enc = encodeSegment(seg);
  return enc.length > MAX_ENCODED_SEGMENT ? `${hashed(seg)}~` : `${enc}~`;
};

/**
 * Streams a request body into a new file. When the file cannot be written (read-only folder, full disk…) the
 * rest of the body is read and dropped before the promise rejects, so the server can still answer the
 * client with a 503/507 on an intact connection instead of resetting it mid-upload.
 */
function receive(body: Readable, file: string, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const out = fs.createWriteStream(file, { flags: "wx", mode: 0o600 });
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      out.destroy();
      body.resume();
      if (body.readableEnded || body.destroyed) reject(e);
      else {
        body.once("end", () => reject(e));
        body.once("close", () => reject(e));
      }
    };
    body.on("data", (chunk: Buffer) => {
      if (failed) return;
      onChunk(chunk);
      if (!out.write(chunk)) {
        body.pause();
        out.once("drain", () => body.resume());
      }
    });
    body.once("end", () => {
      if (!failed) out.end();
    });
    body.once("error", fail);
    body.once("close", () => {
      if (!body.readableEnded) fail(Object.assign(new Error("the client closed the connection mid-body"), { code: "ECONNRESET" }));
    });
    out.once("error", fail);
    out.once("finish", () => {
      if (!failed) resolve();
    });
  });
}

export class ObjectStore {
  readonly bucketsDir: string;
  readonly tmpDir: string;
  /** Serialises conditional commits per object inside this process. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(readonly directory: string) {
    this.bucketsDir = path.join(directory, "_buckets");
    this.tmpDir = path.join(directory, "_tmp");
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.bucketsDir, { recursive: true });
    await fsp.mkdir(this.tmpDir, { recursive: true });
    // Leftovers of writes cut short by a crash. Only old ones: another process (the CLI) may share the
    // directory and be writing right now.
    const cutoff = Date.now() - 24 * 3600_000;
    for (const name of await fsp.readdir(this.tmpDir).catch(() => [] as string[])) {
      const file = path.join(this.tmpDir, name);
      const st = await fsp.stat(file).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < cutoff) await fsp.rm(file, { force: true }).catch(() => {});
    }
  }

  private bucketDir(bucket: string) {
    return path.join(this.bucketsDir, bucket);
  }

  async bucketExists(bucket: string): Promise<boolean> {
    if (!validBucketName(bucket)) return false;
    return (await fsp.stat(this.bucketDir(bucket)).catch(() => undefined))?.isDirectory() ?? false;
  }

  async createBucket(bucket: string): Promise<"created" | "exists"> {
    if (!validBucketName(bucket)) throw new S3Error(400, "InvalidBucketName", "The specified bucket is not valid");
    try {
      await fsp.mkdir(this.bucketDir(bucket));
      return "created";
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return "exists";
      throw e;
    }
  }

  async requireBucket(bucket: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) throw new S3Error(404, "NoSuchBucket", "The specified bucket does not exist");
  }

  /** Directory path of a key's parent and the object file path. */
  private locate(bucket: string, key: string): { dirs: string[]; file: string } {
    const segs = key.split("/");
    const leaf = segs.pop()!;
    const dirs: string[] = [];
    let cur = this.bucketDir(bucket);
    for (const s of segs) {
      cur = path.join(cur, dirName(s));
      dirs.push(cur);
    }
    return { dirs, file: path.join(cur, fileName(leaf)) };
  }

  private async ensureDirs(bucket: string, key: string): Promise<void> {
    const segs = key.split("/").slice(0, -1);
    let cur = this.bucketDir(bucket);
    for (const s of segs) {
      const name = dirName(s);
      cur = path.join(cur, name);
      await fsp.mkdir(cur, { recursive: true });
      if (name.startsWith("~")) {
        const marker = path.join(cur, ".segment");
        if (!(await fsp.stat(marker).catch(() => undefined))) await this.writeSmallAtomic(marker, s);
      }
    }
  }

  private async writeSmallAtomic(file: string, content: string): Promise<void> {
    const tmp = path.join(this.tmpDir, `.seg-${randomBytes(8).toString("hex")}`);
    await fsp.writeFile(tmp, content);
    await fsp.rename(tmp, file);
  }

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(id, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(id) === chained) this.locks.delete(id);
    }
  }

  /** Reads an object's metadata from an open file; undefined when the file is not a valid object. */
  private async readTrailer(fh: fsp.FileHandle): Promise<(Trailer & { bodySize: number; mtime: Date }) | undefined> {
    const st = await fh.stat();
    if (st.size < TRAILER_FIXED) return undefined;
    const tail = Buffer.alloc(TRAILER_FIXED);
    await fh.read(tail, 0, TRAILER_FIXED, st.size - TRAILER_FIXED);
    if (!tail.subarray(4).equals(MAGIC)) return undefined;
    const len = tail.readUInt32BE(0);
    if (len + TRAILER_FIXED > st.size) return undefined;
    const json = Buffer.alloc(len);
    await fh.read(json, 0, len, st.size - TRAILER_FIXED - len);
    const t = JSON.parse(json.toString("utf8")) as Trailer;
    return { ...t, bodySize: st.size - TRAILER_FIXED - len, mtime: st.mtime };
  }

  private async metaOfFile(file: string): Promise<ObjectMeta | undefined> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, "r");
    } catch (e) {
      if (["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw e;
    }
    try {
      const t = await this.readTrailer(fh);
      return t && { key: t.key, size: t.bodySize, etag: t.etag, contentType: t.contentType, metadata: t.metadata ?? {}, lastModified: t.mtime };
    } finally {
      await fh.close();
    }
  }

  async head(bucket: string, key: string): Promise<ObjectMeta | undefined> {
    return this.metaOfFile(this.locate(bucket, key).file);
  }

  /**
   * Opens an object for reading. The open file keeps the version that was current at open time even if a
   * writer renames a new one into place, so a reader never sees half of one and half of another. The caller
   * takes the stream (which closes the file when done) or calls close().
   */
  async open(bucket: string, key: string): Promise<OpenedObject | undefined> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.locate(bucket, key).file, "r");
    } catch (e) {
      if (["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw e;
    }
    try {
      const t = await this.readTrailer(fh);
      if (!t) {
        await fh.close();
        return undefined;
      }
      const meta: ObjectMeta = { key: t.key, size: t.bodySize, etag: t.etag, contentType: t.contentType, metadata: t.metadata ?? {}, lastModified: t.mtime };
      return {
        meta,
        // 1 MiB reads instead of 64 KiB: a model file of hundreds of MB goes out in fewer, larger socket writes.
        stream: (start = 0, end = t.bodySize - 1) => fh.createReadStream({ start, end, autoClose: true, highWaterMark: 1 << 20 }),
        close: () => fh.close().catch(() => {}),
      };
    } catch (e) {
      await fh.close().catch(() => {});
      throw e;
    }
  }

  /**
   * Receives a body into a temp file, checks length and digests, then commits it with one rename (or a link,
   * for If-None-Match, which fails atomically when the key exists). Nothing is visible until the commit.
   */
  async put(bucket: string, key: string, body: Readable, input: PutInput, cond: PutConditions = {}): Promise<ObjectMeta> {
    const tmp = path.join(this.tmpDir, `.put-${randomBytes(12).toString("hex")}`);
    const md5 = createHash("md5");
    const sha = input.sha256 ? createHash("sha256") : undefined;
    let size = 0;
    try {
      await receive(body, tmp, (chunk) => {
        size += chunk.length;
        md5.update(chunk);
        sha?.update(chunk);
      });
      if (input.contentLength !== undefined && size !== input.contentLength)
        throw new S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header");
      if (input.minLength !== undefined && size < input.minLength)
        throw new S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size", { ProposedSize: String(size), MinSizeAllowed: String(input.minLength) });
      if (sha && sha.digest("hex") !== input.sha256)
        throw new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
      const md5Bytes = md5.digest();
      if (input.contentMd5 !== undefined && md5Bytes.toString("base64") !== input.contentMd5)
        throw new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      const etag = md5Bytes.toString("hex");
      const trailer: Trailer = { key, etag, contentType: input.contentType, metadata: input.metadata };
      const json = utf8(JSON.stringify(trailer));
      const fixed = Buffer.alloc(TRAILER_FIXED);
      fixed.writeUInt32BE(json.length, 0);
      MAGIC.copy(fixed, 4);
      // r+ rather than a: if the temp file vanished, fail instead of committing a trailer without a body.
      const fh = await fsp.open(tmp, "r+");
      try {
        await fh.write(Buffer.concat([json, fixed]), 0, json.length + fixed.length, size);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const { file } = this.locate(bucket, key);
      await this.withLock(`${bucket}/${key}`, async () => {
        if (cond.ifMatch !== undefined) {
          const current = await this.metaOfFile(file);
          if (!current) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.");
          const wanted = cond.ifMatch.split(",").map(unquote);
          if (!wanted.includes("*") && !wanted.includes(current.etag))
            throw new S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-Match" });
        }
        await this.commit(bucket, key, tmp, file, cond.ifNoneMatch !== undefined);
      });
      return { key, size, etag, contentType: input.contentType, metadata: input.metadata ?? {}, lastModified: new Date() };
    } finally {
      await fsp.rm(tmp, { force: true }).catch(() => {});
    }
  }

  private async commit(bucket: string, key: string, tmp: string, file: string, exclusive: boolean): Promise<void> {
    // A concurrent delete may remove the (then empty) parent directories between mkdir and rename: retry.
    for (let attempt = 0; ; attempt++) {
      await this.ensureDirs(bucket, key);
      try {
        if (exclusive) await fsp.link(tmp, file);
        else await fsp.rename(tmp, file);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EEXIST")
          throw new S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-None-Match" });
        if (code !== "ENOENT" || attempt >= 4) throw e;
      }
    }
  }

  /** Deletes an object (no error when absent) and the directories it leaves empty. */
  async delete(bucket: string, key: string): Promise<void> {
    const { dirs, file } = this.locate(bucket, key);
    await this.withLock(`${bucket}/${key}`, async () => {
      try {
        await fsp.unlink(file);
      } catch (e) {
        if (!["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "")) throw e;
      }
    });
    for (const dir of dirs.reverse()) {
      try {
        const names = await fsp.readdir(dir);
        if (names.length === 1 && names[0] === ".segment") await fsp.rm(path.join(dir, ".segment"), { force: true });
        else if (names.length > 0) break;
        await fsp.rmdir(dir);
      } catch {
        break; // not empty (a writer got there first), already gone, or not ours to remove
      }
    }
  }

  /** The children of a directory, each with the key string it stands for, in S3's (UTF-8 byte) order. */
  private async children(dir: string, keyPrefix: string): Promise<{ name: string; key: string; isDir: boolean; sortKey: string }[]> {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "")) return [];
      throw e;
    }
    const out: { name: string; key: string; isDir: boolean; sortKey: string }[] = [];
    for (const ent of entries) {
      const name = ent.name;
      if (name.startsWith(".")) continue;
      if (ent.isDirectory() && !name.endsWith("~")) {
        let seg: string;
        if (name.startsWith("~")) {
          const real = await fsp.readFile(path.join(dir, name, ".segment"), "utf8").catch(() => undefined);
          if (real === undefined) continue;
          seg = real;
        } else seg = decodeSegment(name);
        out.push({ name, key: `${keyPrefix}${seg}/`, isDir: true, sortKey: `${keyPrefix}${seg}/` });
      } else if (ent.isFile() && name.endsWith("~")) {
        let seg: string;
        if (name.startsWith("~")) {
          const meta = await this.metaOfFile(path.join(dir, name)).catch(() => undefined);
          if (!meta) continue;
          seg = meta.key.slice(keyPrefix.length);
        } else seg = decodeSegment(name.slice(0, -1));
        out.push({ name, key: `${keyPrefix}${seg}`, isDir: false, sortKey: `${keyPrefix}${seg}` });
      }
    }
    return out.sort((a, b) => byteCompare(a.sortKey, b.sortKey));
  }

  /** True when the directory holds at least one object, at any depth. */
  private async hasObjects(dir: string): Promise<boolean> {
    for (const c of await this.children(dir, "")) {
      if (!c.isDir) return true;
      if (await this.hasObjects(path.join(dir, c.name))) return true;
    }
    return false;
  }

  /**
   * Keys (and, with a delimiter, common prefixes) under `prefix` that sort after `after`, in order. With
   * `afterIsPrefix`, everything starting with `after` is skipped too (resuming after a common prefix).
   */
  async *walk(
    bucket: string,
    opts: { prefix: string; delimiter?: string; after?: string; afterIsPrefix?: boolean },
  ): AsyncGenerator<ListEntry> {
    const { prefix, delimiter } = opts;
    const after = opts.after ?? "";
    const skip = (k: string) => {
      if (after === "") return false;
      if (opts.afterIsPrefix && k.startsWith(after)) return true;
      return byteCompare(k, after) <= 0;
    };
    // Everything under a directory `p` (keys starting with p) precedes `after` when after > p and does not
    // start with p; with afterIsPrefix, also when p starts with after.
    const skipDir = (p: string) => {
      if (after === "") return false;
      if (opts.afterIsPrefix && p.startsWith(after)) return true;
      return !after.startsWith(p) && byteCompare(p, after) < 0;
    };
    // Descend straight to the directory of the prefix's complete segments.
    const full = prefix.lastIndexOf("/");
    const dirSegs = full >= 0 ? prefix.slice(0, full).split("/") : [];
    if (dirSegs.some((s) => s === "" || s === "." || s === "..")) return;
    let start = this.bucketDir(bucket);
    for (const s of dirSegs) start = path.join(start, dirName(s));
    const startPrefix = full >= 0 ? prefix.slice(0, full + 1) : "";
    let lastCommon: string | undefined;
    const self = this;

    async function* visit(dir: string, keyPrefix: string): AsyncGenerator<ListEntry> {
      for (const c of await self.children(dir, keyPrefix)) {
        // Prune what cannot match the prefix.
        if (!(c.key.startsWith(prefix) || (c.isDir && prefix.startsWith(c.key)))) continue;
        if (c.isDir) {
          if (skipDir(c.key)) continue;
          const childDir = path.join(dir, c.name);
          if (delimiter === "/" && c.key.length > prefix.length && c.key.indexOf("/", prefix.length) === c.key.length - 1) {
            // Every key below rolls up into this one common prefix: no need to walk it, only to know it is not empty.
            if (c.key === lastCommon || skip(c.key) || !(await self.hasObjects(childDir))) continue;
            lastCommon = c.key;
            yield { kind: "prefix", prefix: c.key };
            continue;
          }
          yield* visit(childDir, c.key);
        } else {
          if (skip(c.key)) continue;
          if (delimiter) {
            const at = c.key.indexOf(delimiter, prefix.length);
            if (at >= 0) {
              const common = c.key.slice(0, at + delimiter.length);
              if (common === lastCommon || (opts.afterIsPrefix && common === after)) continue;
              lastCommon = common;
              yield { kind: "prefix", prefix: common };
              continue;
            }
          }
          yield { kind: "object", key: c.key };
        }
      }
    }
    yield* visit(start, startPrefix);
  }

}
