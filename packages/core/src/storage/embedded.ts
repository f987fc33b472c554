/**
 * The embedded S3-compatible server (fs-s3/) inside the process, on a data directory that survives restarts.
 * Used only for local runs and tests; production talks to S3 through the same `Storage` class, and nothing
 * outside this file knows which server runs here.
 *
 * It checks every request's SigV4 signature (header or presigned URL) against EMBEDDED_CREDENTIALS, allows
 * browsers only from `allowedOrigins` (the playground, for presigned dataset uploads), and keeps its objects
 * under `<directory>/_buckets/`. A directory written by the s3rver this replaced (`<directory>/<bucket>/…
 * ._S3rver_object`) is imported once at start and then renamed to `<bucket>.s3rver-imported`.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { createLogger } from "../log.ts";
import { type ObjectStore, validateKey } from "./fs-s3/object-store.ts";
import { type FsS3Logger, startFsS3Server } from "./fs-s3/server.ts";

/**
 * The key pair the embedded server accepts. It is fixed so that a stack, its workers and its tests agree
 * without configuration; it keeps out anything that does not sign (browsers, curl, other tools), while a
 * process that can read this source could also read the data directory itself.
 */
export const EMBEDDED_CREDENTIALS = { accessKeyId: "GANSERVEEMBEDDED", secretAccessKey: "ganserve-embedded-store-local-only" };

export interface EmbeddedS3 {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

export interface EmbeddedS3Options {
  directory: string;
  bucket: string;
  port?: number;
  host?: string;
  /** Browser origins allowed to use presigned URLs (CORS); none by default. */
  allowedOrigins?: string[] | (() => string[]);
  logger?: FsS3Logger;
}

export async function startEmbeddedS3(opts: EmbeddedS3Options): Promise<EmbeddedS3> {
  const directory = path.resolve(opts.directory);
  fs.mkdirSync(directory, { recursive: true });
  const logger = opts.logger ?? createLogger();
  const server = await startFsS3Server({
    directory,
    credentials: EMBEDDED_CREDENTIALS,
    buckets: [opts.bucket],
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    allowedOrigins: opts.allowedOrigins,
    logger,
  });
  try {
    await importS3rverBucket(directory, opts.bucket, server.store, logger);
  } catch (e) {
    logger.warn({ err: String(e) }, "embedded S3: could not import the old s3rver data; it stays where it is");
  }
  return { endpoint: server.endpoint, port: server.port, close: server.close };
}

/**
 * Browser origins of the app served on host:port (the playground), plus the Vite dev server's default port.
 * With port 0 the app's port is not known yet, and only the dev server is allowed.
 */
export function playgroundOrigins(host: string, port: number): string[] {
  const hosts = ["127.0.0.1", "localhost", "0.0.0.0", "::1", "::"].includes(host) ? ["127.0.0.1", "localhost", "[::1]"] : [host.includes(":") ? `[${host}]` : host];
  const ports = port > 0 ? [port, 5173] : [5173];
  return ports.flatMap((p) => hosts.map((h) => `http://${h}:${p}`));
}

const S3RVER_OBJECT = "._S3rver_object";

/** Copies the objects of an s3rver bucket folder into the store, then renames the folder out of the way. */
async function importS3rverBucket(directory: string, bucket: string, store: ObjectStore, logger: FsS3Logger): Promise<void> {
  const old = path.join(directory, bucket);
  if (!(await fsp.stat(old).catch(() => undefined))?.isDirectory()) return;
  let imported = 0;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const ent of await fsp.readdir(dir, { withFileTypes: true })) {
      if (ent.isDirectory()) await walk(path.join(dir, ent.name), `${prefix}${ent.name}/`);
      else if (ent.isFile() && ent.name.endsWith(S3RVER_OBJECT)) {
        const key = `${prefix}${ent.name.slice(0, -S3RVER_OBJECT.length)}`;
        const file = path.join(dir, ent.name);
        const meta = JSON.parse(
          await fsp.readFile(path.join(dir, `${ent.name.slice(0, -S3RVER_OBJECT.length)}._S3rver_metadata.json`), "utf8").catch(() => "{}"),
        ) as Record<string, string>;
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(meta)) if (k.startsWith("x-amz-meta-")) metadata[k.slice(11)] = v;
        try {
          validateKey(key);
          const size = (await fsp.stat(file)).size;
          await store.put(bucket, key, fs.createReadStream(file), { contentLength: size, contentType: meta["content-type"], metadata });
          imported++;
        } catch (e) {
          logger.warn({ key, err: String(e) }, "embedded S3: an s3rver object was not imported");
        }
      }
    }
  };
  await walk(old, "");
  await fsp.rename(old, path.join(directory, `${bucket}.s3rver-imported`));
  logger.warn({ imported, from: old }, "embedded S3: imported the s3rver data folder");
}
