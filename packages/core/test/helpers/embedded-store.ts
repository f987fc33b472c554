/**
 * A fresh temp dir with the embedded S3 store (the real one local runs start) serving one bucket in it, and a
 * Storage on that bucket: the setup the store-backed tests in packages/core/test and test/ share. One home for
 * the teardown order too: the client is destroyed before its server closes, and the dir goes last. A test that
 * only hands the endpoint to other processes leaves `storage` unused: the client connects on its first request.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { EMBEDDED_CREDENTIALS, startEmbeddedS3, type EmbeddedS3, type EmbeddedS3Options } from "../../src/storage/embedded.ts";
import { Storage } from "../../src/storage/storage.ts";

export interface EmbeddedStoreOptions {
  /** The temp dir's name is `ganserve-<name>-XXXXXX`. */
  name: string;
  bucket: string;
  /**
   * The folder below the temp dir the store keeps its files in; left out, the temp dir itself. A test that
   * also puts a CLI's or a process's data dir in the temp dir names one, so the store's folder holds objects only.
   */
  subdir?: string;
  /** Where the store listens; left out, 127.0.0.1. */
  host?: EmbeddedS3Options["host"];
  logger?: EmbeddedS3Options["logger"];
  /** The Storage client's region; left out, us-east-1. */
  region?: string;
  /** The Storage client's attempts per request; left out, its own default (with retries). */
  maxAttempts?: number;
}

export interface EmbeddedStore {
  /** The temp dir; removed by close(). */
  dir: string;
  endpoint: string;
  bucket: string;
  s3: EmbeddedS3;
  storage: Storage;
  /** Destroys the client, stops the store, removes the temp dir. */
  close(): Promise<void>;
}

/** Starts it all; when the store fails to start, the temp dir is removed before the error is thrown. */
export async function startEmbeddedStore(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ganserve-${opts.name}-`));
  let s3: EmbeddedS3;
  try {
    s3 = await startEmbeddedS3({ directory: opts.subdir ? path.join(dir, opts.subdir) : dir, bucket: opts.bucket, host: opts.host, logger: opts.logger });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const storage = new Storage({
    bucket: opts.bucket,
    region: opts.region ?? "us-east-1",
    endpoint: s3.endpoint,
    credentials: EMBEDDED_CREDENTIALS,
    maxAttempts: opts.maxAttempts,
  });
  return {
    dir,
    endpoint: s3.endpoint,
    bucket: opts.bucket,
    s3,
    storage,
    async close() {
      storage.destroy();
      try {
        await s3.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
