/**
 * The only way ganserve touches objects: S3 through `@aws-sdk/client-s3` v3. The same code talks to AWS S3
 * in the cloud and to the embedded S3-compatible server locally and in tests (path-style addressing).
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  CreateBucketCommand,
} from "@aws-sdk/client-s3";
import fs from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { ApiError } from "../errors.ts";
import { modelKeys } from "./keys.ts";

export interface StorageOptions {
  bucket: string;
  region: string;
  /** Unset in AWS; set for the embedded server or another S3-compatible store. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** SDK retry attempts; storage hiccups are retried with the SDK's exponential backoff. */
  maxAttempts?: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
  etag?: string;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
}

const isMissing = (e: unknown) =>
  e instanceof NoSuchKey ||
  e instanceof NotFound ||
  (e as { name?: string })?.name === "NoSuchKey" ||
  (e as { name?: string })?.name === "NotFound" ||
  (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404;

/** Network-level failures (server down, connection refused) and a store that answers 503/507 become a 503 the client can retry. */
function unavailable(e: unknown): never {
  const err = e as { name?: string; code?: string; message?: string };
  throw new ApiError("storage_unavailable", `storage is unavailable: ${err.code ?? err.name ?? "error"}`, undefined, 2);
}

const isNetworkError = (e: unknown) => {
  const code = (e as { code?: string })?.code ?? "";
  const name = (e as { name?: string })?.name ?? "";
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"].includes(code) || name === "TimeoutError") return true;
  // The store answered but cannot serve now (503 SlowDown/ServiceUnavailable, 507 disk full) after the SDK's
  // retries: the client should retry later, so 503 too, not a 500 that reads as our bug.
  const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode ?? 0;
  return status === 503 || status === 507;
};

export class Storage {
  readonly client: S3Client;
  readonly bucket: string;

  /** One attempt per call, for streamed uploads (putFile): a retry would send the drained stream again. */
  private singleAttempt: S3Client | undefined;

  constructor(readonly options: StorageOptions) {
    this.bucket = options.bucket;
    this.client = Storage.makeClient(options, options.maxAttempts ?? 4);
  }

  private static makeClient(options: StorageOptions, maxAttempts: number): S3Client {
    return new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.endpoint !== undefined,
      credentials: options.credentials,
      maxAttempts,
      // Without these a call to a store that stopped answering can hang forever and hold a request with it.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
      // Checksums on every request are an SDK default since 3.729; with them the SDK streams bodies as
      // aws-chunked with trailing checksums, which the embedded store (fs-s3) does not implement.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isNetworkError(e)) unavailable(e);
      throw e;
    }
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (isNetworkError(e)) unavailable(e);
      if (!isMissing(e)) throw e;
      await this.call(() => this.client.send(new CreateBucketCommand({ Bucket: this.bucket })));
    }
  }

  /**
   * Cheap reachability probe for /ready: answers within `timeoutMs` even when the store hangs. A one-key
   * listing of models/, not HeadBucket: every deployed role may list models/, while HeadBucket is authorised
   * as s3:ListBucket with no s3:prefix, which the roles' prefix-scoped grants never allow.
   */
  async ping(timeoutMs = 2000): Promise<boolean> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: modelKeys.root, MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      return true;
    } catch {
      return false;
    }
  }

  private async putObject(key: string, body: Uint8Array | string, opts: PutOptions, condition: { IfNoneMatch?: "*" } = {}) {
    await this.call(() =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: opts.contentType, Metadata: opts.metadata, ...condition })),
    );
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<void> {
    await this.putObject(key, body, opts);
  }

  async putJson(key: string, value: unknown): Promise<void> {
    await this.put(key, JSON.stringify(value), { contentType: "application/json" });
  }

  /**
   * Writes only when no object has the key (`If-None-Match: *`, atomic in S3 and in the embedded store).
   * Returns false when the key exists (412), or when another conditional write to it was in progress (S3's
   * 409 ConditionalRequestConflict): either way someone else's write won, and the caller reads what it says.
   */
  async putIfAbsent(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<boolean> {
    try {
      await this.putObject(key, body, opts, { IfNoneMatch: "*" });
      return true;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return false;
      throw e;
    }
  }

  /**
   * Streams a local file into an object, never holding it in memory: for files of hundreds of MB (an optimised
   * model, inference/engines/ort-cache.ts) that a serving process writes beside its passes. A stream cannot be
   * sent twice, so this goes through a client that makes one attempt: the caller decides what a failed copy means.
   */
  async putFile(key: string, file: string, opts: PutOptions = {}): Promise<void> {
    const { size } = await fs.promises.stat(file);
    this.singleAttempt ??= Storage.makeClient(this.options, 1);
    const client = this.singleAttempt;
    const body = fs.createReadStream(file);
    try {
      await this.call(() =>
        client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: size, ContentType: opts.contentType, Metadata: opts.metadata })),
      );
    } finally {
      // A request refused before its body was read leaves the file open otherwise.
      body.destroy();
    }
  }

  /** Streams an object into a local file (created or replaced); false, and no file written, when it does not exist. */
  async getFile(key: string, file: string): Promise<boolean> {
    let body: Readable;
    try {
      const res = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
      body = res.Body as Readable;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
    try {
      await pipeline(body, fs.createWriteStream(file));
    } catch (e) {
      await fs.promises.rm(file, { force: true });
      if (isNetworkError(e)) unavailable(e);
      throw e;
    }
    return true;
  }

  /** Returns undefined when the object does not exist. */
  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const res = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
      return res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async getText(key: string): Promise<string | undefined> {
    const bytes = await this.get(key);
    return bytes && new TextDecoder().decode(bytes);
  }

  async getJson<T = unknown>(key: string): Promise<T | undefined> {
    const text = await this.getText(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.call(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified, etag: res.ETag };
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  /** All objects under a prefix (follows continuation tokens). */
  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.call(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const o of res.Contents ?? [])
        if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified, etag: o.ETag });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** One page of the objects under a prefix in key order, after `startAfter` (S3's own cursor). */
  async listPage(prefix: string, opts: { startAfter?: string; maxKeys: number }): Promise<{ objects: ObjectInfo[]; more: boolean }> {
    const res = await this.call(() =>
      this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, StartAfter: opts.startAfter, MaxKeys: opts.maxKeys })),
    );
    const objects = (res.Contents ?? []).flatMap((o) => (o.Key ? [{ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified, etag: o.ETag }] : []));
    return { objects, more: res.IsTruncated === true };
  }

  /**
   * Immediate "sub-folders" of a prefix, e.g. model names under models/: S3's CommonPrefixes with the "/"
   * delimiter, so a model with many versions or a dataset with many files costs one entry, not all its objects.
   */
  async listPrefixes(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const res = await this.call(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: "/", ContinuationToken: token })),
      );
      for (const p of res.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(prefix.length, -1);
        if (name) names.add(name);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return [...names].sort();
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (let i = 0; i < objects.length; i += 1000) {
      const chunk = objects.slice(i, i + 1000);
      const out = await this.call(() =>
        this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: chunk.map((o) => ({ Key: o.key })) } }),
        ),
      );
      // DeleteObjects answers 200 even when it deleted nothing: a key it could not delete (AccessDenied, ...) is
      // only in `Errors`. Ignoring them left files behind silently (cloud review, defect 17).
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(`could not delete ${failed.length} of ${chunk.length} objects under ${prefix}: ${first?.Key}: ${first?.Code} ${first?.Message ?? ""}`.trim());
      }
    }
    return objects.length;
  }

  /** A URL a client can PUT the object to with plain fetch, without credentials. */
  async presignPut(key: string, expiresInSeconds = 3600, contentType?: string): Promise<string> {
    return getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }), {
      expiresIn: expiresInSeconds,
    });
  }

  /**
   * S3's browser upload form for one key: POST multipart/form-data to `url` with `fields` (in any order)
   * and then the body as the `file` part, last. The signed policy fixes the key and the Content-Type and
   * bounds the body to `maxBytes` (content-length-range): S3 refuses a larger one with 400 EntityTooLarge
   * and stores nothing, which a presigned PUT cannot do.
   */
  async presignPost(
    key: string,
    opts: { maxBytes: number; minBytes?: number; expiresInSeconds: number; contentType?: string },
  ): Promise<{ url: string; fields: Record<string, string> }> {
    return createPresignedPost(this.client, {
      Bucket: this.bucket,
      Key: key,
      Expires: opts.expiresInSeconds,
      Fields: opts.contentType ? { "Content-Type": opts.contentType } : {},
      Conditions: [["content-length-range", opts.minBytes ?? 0, opts.maxBytes]],
    });
  }

  async presignGet(key: string, expiresInSeconds = 3600): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: expiresInSeconds,
    });
  }

  destroy(): void {
    this.client.destroy();
    this.singleAttempt?.destroy();
  }
}
