/**
 * Storage conformance: the behaviours ganserve relies on from its object store, exercised through the real
 * `@aws-sdk/client-s3` (and plain fetch for what a browser or an attacker would send). By default it runs
 * against the embedded server (packages/core/src/storage/fs-s3), started here on a temporary directory; that
 * mode always runs, in CI too.
 *
 * Against real S3 (or another S3-compatible store), set:
 *   GANSERVE_CONFORMANCE_S3_BUCKET=<bucket you own>      (required; switches the suite to real-S3 mode)
 *   GANSERVE_CONFORMANCE_S3_REGION=<region>              (default us-east-1)
 *   GANSERVE_CONFORMANCE_S3_ENDPOINT=<url>               (optional: another S3-compatible endpoint, path-style)
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE …  (the SDK's usual credential chain)
 * and run `npx vitest run --project core packages/core/test/storage-conformance.test.ts`. Everything is
 * written under `conformance/<run id>/` and deleted afterwards. The cases that break the embedded server's
 * filesystem on purpose, or look at its CORS and Host rules, run only in embedded mode.
 */
import { randomBytes, createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createPresignedPost } from "@aws-sdk/s3-presigned-post";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EMBEDDED_CREDENTIALS, playgroundOrigins, startEmbeddedS3 } from "../src/storage/embedded.ts";
import { startFsS3Server, type FsS3Server } from "../src/storage/fs-s3/server.ts";
import { ApiError } from "../src/errors.ts";
import { Storage } from "../src/storage/storage.ts";

const REAL_BUCKET = process.env.GANSERVE_CONFORMANCE_S3_BUCKET;
const embeddedMode = !REAL_BUCKET;
const REGION = process.env.GANSERVE_CONFORMANCE_S3_REGION ?? "us-east-1";
const CREDS = { accessKeyId: "CONFORMANCETESTKEY", secretAccessKey: `secret-${randomBytes(8).toString("hex")}` };
const APP_ORIGIN = "http://127.0.0.1:3000";
const quietLog = { warn: () => {}, error: () => {} };

let server: FsS3Server | undefined;
let dir = "";
let bucket = "";
let endpoint = "";
let storage: Storage;
let client: S3Client;
/** All keys of this run start with it (real S3: a fresh folder; embedded: the empty bucket). */
let P = "";

const body = (s: string | Uint8Array) => (typeof s === "string" ? new TextEncoder().encode(s) : s);
const md5 = (b: Uint8Array | string) => createHash("md5").update(b).digest("hex");
const objectUrl = (key: string) => `${endpoint}/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
const errorCode = (xml: string) => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
/** The HTTP status of an SDK error, or of the ApiError that Storage turns a 503/507 into. */
const status = (e: unknown) =>
  (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? (e instanceof ApiError ? e.status : undefined);

async function sdkError(p: Promise<unknown>): Promise<{ status?: number; name?: string }> {
  try {
    await p;
  } catch (e) {
    return { status: status(e), name: (e as { name?: string }).name };
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  if (embeddedMode) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-conformance-"));
    bucket = "conformance";
    server = await startFsS3Server({ directory: dir, credentials: CREDS, buckets: [bucket], allowedOrigins: [APP_ORIGIN], logger: quietLog });
    endpoint = server.endpoint;
    storage = new Storage({ bucket, region: REGION, endpoint, credentials: CREDS, maxAttempts: 1 });
  } else {
    bucket = REAL_BUCKET!;
    const custom = process.env.GANSERVE_CONFORMANCE_S3_ENDPOINT;
    endpoint = custom ?? `https://s3.${REGION}.amazonaws.com`;
    storage = new Storage({ bucket, region: REGION, endpoint: custom, maxAttempts: 2 });
    // Path-style URLs for the raw requests below work on AWS too.
    P = `conformance/${Date.now()}-${randomBytes(4).toString("hex")}/`;
  }
  client = storage.client;
  await storage.ensureBucket();
}, 60_000);

afterAll(async () => {
  if (!embeddedMode) await storage.deletePrefix(P).catch(() => {});
  storage?.destroy();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe("authentication", () => {
  it("signed requests work: put, get, head, list, delete", async () => {
    await storage.put(`${P}auth/ok.txt`, "hello", { contentType: "text/plain", metadata: { owner: "t1" } });
    expect(await storage.getText(`${P}auth/ok.txt`)).toBe("hello");
    const head = await storage.head(`${P}auth/ok.txt`);
    expect(head).toMatchObject({ size: 5, etag: `"${md5("hello")}"` });
    expect((await storage.list(`${P}auth/`)).map((o) => o.key)).toEqual([`${P}auth/ok.txt`]);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${P}auth/ok.txt` }));
    expect(got.ContentType).toBe("text/plain");
    expect(got.Metadata).toEqual({ owner: "t1" });
    await got.Body?.transformToByteArray();
    await storage.delete(`${P}auth/ok.txt`);
    expect(await storage.get(`${P}auth/ok.txt`)).toBeUndefined();
  });

  it("unsigned GET, PUT, LIST and DELETE are refused with 403 and change nothing", async () => {
    await storage.put(`${P}auth/secret.json`, '{"webhook":{"secret":"s"}}');
    const get = await fetch(objectUrl(`${P}auth/secret.json`));
    expect(get.status).toBe(403);
    expect(errorCode(await get.text())).toBe("AccessDenied");

    // Minting an API key the way the report did: an unsigned PUT under auth/keys/.
    const mint = await fetch(objectUrl(`${P}auth/keys/key_AttackerMinted01.json`), {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "key_AttackerMinted01", tenant: "alice" }),
    });
    expect(mint.status).toBe(403);
    expect(await storage.exists(`${P}auth/keys/key_AttackerMinted01.json`)).toBe(false);

    const list = await fetch(`${endpoint}/${bucket}?list-type=2&prefix=${encodeURIComponent(P)}`);
    expect(list.status).toBe(403);
    await list.arrayBuffer();

    const del = await fetch(objectUrl(`${P}auth/secret.json`), { method: "DELETE" });
    expect(del.status).toBe(403);
    await del.arrayBuffer();
    expect(await storage.exists(`${P}auth/secret.json`)).toBe(true);
  });

  it("a wrong secret key → 403 SignatureDoesNotMatch; an unknown access key → 403", async () => {
    const wrong = new Storage({
      bucket,
      region: REGION,
      endpoint: embeddedMode ? endpoint : process.env.GANSERVE_CONFORMANCE_S3_ENDPOINT,
      credentials: { accessKeyId: embeddedMode ? CREDS.accessKeyId : "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "not-the-secret" },
      maxAttempts: 1,
    });
    try {
      const e = await sdkError(wrong.put(`${P}auth/forged.txt`, "x"));
      expect(e.status).toBe(403);
      if (embeddedMode) expect(e.name).toBe("SignatureDoesNotMatch");
      if (embeddedMode) {
        const other = new Storage({ bucket, region: REGION, endpoint, credentials: { accessKeyId: "SOMEONEELSE", secretAccessKey: CREDS.secretAccessKey }, maxAttempts: 1 });
        expect(await sdkError(other.get(`${P}auth/secret.json`))).toMatchObject({ status: 403, name: "InvalidAccessKeyId" });
        other.destroy();
      }
    } finally {
      wrong.destroy();
    }
    expect(await storage.exists(`${P}auth/forged.txt`)).toBe(false);
  });

  it("a request changed after signing (header, path, or body) is refused", async () => {
    // Tamper after the SDK signed: add a header the signature covers (x-amz-meta-*), or point at another key.
    const tamper = (mutate: (req: { headers: Record<string, string>; path: string }) => void) => {
      const c = new S3Client({
        region: REGION,
        endpoint: embeddedMode ? endpoint : process.env.GANSERVE_CONFORMANCE_S3_ENDPOINT,
        forcePathStyle: true,
        credentials: embeddedMode ? CREDS : undefined,
        maxAttempts: 1,
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
      });
      const mw = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        mutate((args as { request: { headers: Record<string, string>; path: string } }).request);
        return next(args);
      };
      c.middlewareStack.addRelativeTo(
        mw as unknown as Parameters<typeof c.middlewareStack.addRelativeTo>[0],
        { relation: "after", toMiddleware: "httpSigningMiddleware", name: "tamper", override: true },
      );
      return c;
    };
    const changedMeta = tamper((r) => {
      r.headers["x-amz-meta-owner"] = "attacker";
    });
    const e1 = await sdkError(changedMeta.send(new PutObjectCommand({ Bucket: bucket, Key: `${P}auth/t1.txt`, Body: "x", Metadata: { owner: "me" } })));
    expect(e1).toMatchObject({ status: 403, name: "SignatureDoesNotMatch" });
    const changedPath = tamper((r) => {
      r.path = r.path.replace("t2-signed.txt", "t2-other.txt");
    });
    const e2 = await sdkError(changedPath.send(new PutObjectCommand({ Bucket: bucket, Key: `${P}auth/t2-signed.txt`, Body: "x" })));
    expect(e2).toMatchObject({ status: 403, name: "SignatureDoesNotMatch" });
    const changedBody = tamper((r) => {
      (r as unknown as { body: unknown }).body = body("y");
    });
    const e3 = await sdkError(changedBody.send(new PutObjectCommand({ Bucket: bucket, Key: `${P}auth/t3.txt`, Body: "x" })));
    // The signed x-amz-content-sha256 no longer matches the body.
    expect(e3.status).toBe(400);
    expect(e3.name).toBe("XAmzContentSHA256Mismatch");
    for (const c of [changedMeta, changedPath, changedBody]) c.destroy();
    for (const k of ["t1.txt", "t2-signed.txt", "t2-other.txt", "t3.txt"]) expect(await storage.exists(`${P}auth/${k}`)).toBe(false);
  });

  it("presigned PUT (a browser upload) and presigned GET work with plain fetch", async () => {
    const zip = randomBytes(70_000);
    const url = await storage.presignPut(`${P}datasets/ds_1/upload.zip`, 600, "application/zip");
    const put = await fetch(url, { method: "PUT", headers: { "Content-Type": "application/zip" }, body: zip });
    expect(put.status).toBe(200);
    expect(put.headers.get("etag")).toBe(`"${md5(zip)}"`);
    expect(Buffer.from((await storage.get(`${P}datasets/ds_1/upload.zip`))!)).toEqual(zip);
    const get = await fetch(await storage.presignGet(`${P}datasets/ds_1/upload.zip`, 600));
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(zip);
  });

  it("an expired presigned URL → 403; a presigned URL edited to another key or method → 403", async () => {
    await storage.put(`${P}auth/p.txt`, "p");
    const old = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: `${P}auth/p.txt` }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 3600_000),
    });
    const expired = await fetch(old);
    expect(expired.status).toBe(403);
    expect(errorCode(await expired.text())).toBe("AccessDenied");

    const url = await storage.presignGet(`${P}auth/p.txt`, 600);
    const otherKey = await fetch(url.replace("/p.txt?", "/secret.json?"));
    expect(otherKey.status).toBe(403);
    expect(errorCode(await otherKey.text())).toBe("SignatureDoesNotMatch");
    const asPut = await fetch(url, { method: "PUT", body: "overwritten" });
    expect(asPut.status).toBe(403);
    await asPut.arrayBuffer();
    const longer = await fetch(url.replace(/X-Amz-Expires=\d+/, "X-Amz-Expires=604800"));
    expect(longer.status).toBe(403);
    await longer.arrayBuffer();
    expect(await storage.getText(`${P}auth/p.txt`)).toBe("p");
  });
});

/** POSTs S3's browser upload form: the fields, then the file part last (as a browser's FormData would). */
async function postForm(url: string, fields: Record<string, string>, file: Uint8Array, headers: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("file", new Blob([file.slice()]), "upload.zip");
  const res = await fetch(url, { method: "POST", body: form, headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe("browser POST upload (presigned POST policy)", () => {
  const form = (key: string, maxBytes = 100_000, expiresInSeconds = 600) =>
    storage.presignPost(key, { maxBytes, minBytes: 1, expiresInSeconds, contentType: "application/zip" });

  it("a valid form stores the file under the policy's key, with its Content-Type", async () => {
    const zip = randomBytes(70_000);
    const { url, fields } = await form(`${P}post/ok/upload.zip`);
    const res = await postForm(url, fields, zip);
    expect(res.status).toBe(204);
    expect(res.headers.get("etag")).toBe(`"${md5(zip)}"`);
    expect(Buffer.from((await storage.get(`${P}post/ok/upload.zip`))!)).toEqual(zip);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${P}post/ok/upload.zip` }));
    expect(got.ContentType).toBe("application/zip");
    await got.Body?.transformToByteArray();
    // success_action_status=201 is S3's XML answer (it must be in the policy like any other field).
    const withStatus = await storage.client.config.region().then(() =>
      createPresignedPost(client, { Bucket: bucket, Key: `${P}post/ok/201.zip`, Expires: 600, Fields: { success_action_status: "201" }, Conditions: [["content-length-range", 0, 1000]] }),
    );
    const created = await postForm(withStatus.url, withStatus.fields, body("x"));
    expect(created.status).toBe(201);
    expect(created.text).toContain("<Key>");
  });

  it("a file over content-length-range → 400 EntityTooLarge and nothing stored (nor one under the minimum)", async () => {
    const { url, fields } = await form(`${P}post/big/upload.zip`, 10_000);
    const res = await postForm(url, fields, randomBytes(300_000));
    expect(res.status).toBe(400);
    expect(errorCode(res.text)).toBe("EntityTooLarge");
    expect(await storage.exists(`${P}post/big/upload.zip`)).toBe(false);
    const empty = await postForm(url, fields, new Uint8Array(0));
    expect(empty.status).toBe(400);
    expect(errorCode(empty.text)).toBe("EntityTooSmall");
    expect(await storage.exists(`${P}post/big/upload.zip`)).toBe(false);
    // Exactly the maximum is allowed.
    expect((await postForm(url, fields, randomBytes(10_000))).status).toBe(204);
  });

  it("an expired policy → 403 AccessDenied", async () => {
    const past = new S3Client({
      region: REGION,
      endpoint: embeddedMode ? endpoint : process.env.GANSERVE_CONFORMANCE_S3_ENDPOINT,
      forcePathStyle: true,
      credentials: embeddedMode ? CREDS : undefined,
      systemClockOffset: -3600_000,
    });
    const { url, fields } = await createPresignedPost(past, { Bucket: bucket, Key: `${P}post/expired.zip`, Expires: 60, Conditions: [["content-length-range", 0, 1000]] });
    past.destroy();
    const res = await postForm(url, fields, body("late"));
    expect(res.status).toBe(403);
    expect(errorCode(res.text)).toBe("AccessDenied");
    expect(await storage.exists(`${P}post/expired.zip`)).toBe(false);
  });

  it("a tampered policy or signature → 403; another key, Content-Type or an extra field → 403", async () => {
    const key = `${P}post/fixed/upload.zip`;
    const { url, fields } = await form(key, 1000);
    const policy = JSON.parse(Buffer.from(fields.Policy, "base64").toString("utf8"));
    for (const c of policy.conditions) if (Array.isArray(c) && c[0] === "content-length-range") c[2] = 10_000_000;
    const bigger = await postForm(url, { ...fields, Policy: Buffer.from(JSON.stringify(policy)).toString("base64") }, randomBytes(5000));
    expect(bigger.status).toBe(403);
    expect(errorCode(bigger.text)).toBe("SignatureDoesNotMatch");
    const sig = fields["X-Amz-Signature"];
    const badSig = await postForm(url, { ...fields, "X-Amz-Signature": `${sig[0] === "0" ? "1" : "0"}${sig.slice(1)}` }, body("x"));
    expect(badSig.status).toBe(403);
    expect(errorCode(badSig.text)).toBe("SignatureDoesNotMatch");
    const otherKey = await postForm(url, { ...fields, key: `${P}auth/keys/minted.json` }, body("{}"));
    expect(otherKey.status).toBe(403);
    expect(errorCode(otherKey.text)).toBe("AccessDenied");
    const otherType = await postForm(url, { ...fields, "Content-Type": "text/html" }, body("<script>"));
    expect(otherType.status).toBe(403);
    const extra = await postForm(url, { ...fields, "x-amz-meta-owner": "someone-else" }, body("x"));
    expect(extra.status).toBe(403);
    const unsigned = await postForm(url, { key, "Content-Type": "application/zip" }, body("x"));
    expect(unsigned.status).toBe(403);
    for (const k of [key, `${P}auth/keys/minted.json`]) expect(await storage.exists(k)).toBe(false);
  });
});

describe("files (streamed both ways: compiled graphs of hundreds of MB)", () => {
  it("putFile stores a file's bytes; getFile writes them to a path; a missing key writes nothing", async () => {
    const local = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-conformance-files-"));
    try {
      const bytes = randomBytes(5 * 1024 * 1024 + 17);
      fs.writeFileSync(path.join(local, "up.bin"), bytes);
      await storage.putFile(`${P}files/big.bin`, path.join(local, "up.bin"), { contentType: "application/octet-stream" });
      expect((await storage.head(`${P}files/big.bin`))?.etag).toBe(`"${md5(bytes)}"`);
      expect(await storage.getFile(`${P}files/big.bin`, path.join(local, "down.bin"))).toBe(true);
      expect(fs.readFileSync(path.join(local, "down.bin")).equals(bytes)).toBe(true);
      expect(await storage.getFile(`${P}files/missing.bin`, path.join(local, "none.bin"))).toBe(false);
      expect(fs.existsSync(path.join(local, "none.bin"))).toBe(false);
    } finally {
      fs.rmSync(local, { recursive: true, force: true });
    }
  });
});

describe("listing", () => {
  const N = 1205;
  const many = () => `${P}many/`;

  beforeAll(async () => {
    // 1000 under a/, 205 under a-b/ (sorts before a/ in byte order), like the report's 1200-image dataset.
    const keys = Array.from({ length: N }, (_, i) => (i < 1000 ? `${many()}a/${String(i).padStart(4, "0")}.png` : `${many()}a-b/${String(i).padStart(4, "0")}.png`));
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => storage.put(k, k)));
  }, 300_000);

  it(`lists ${N} objects completely, in S3 order, across pages of 1000`, async () => {
    const first = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: many() }));
    expect(first.KeyCount).toBe(1000);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextContinuationToken).toBeTruthy();
    const second = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: many(), ContinuationToken: first.NextContinuationToken }));
    expect(second.KeyCount).toBe(N - 1000);
    expect(second.IsTruncated).toBe(false);
    const all = await storage.list(many());
    expect(all).toHaveLength(N);
    const keys = all.map((o) => o.key);
    expect(new Set(keys).size).toBe(N);
    expect(keys).toEqual([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    expect(keys[0]).toBe(`${many()}a-b/1000.png`);
    expect(all[5]).toMatchObject({ size: Buffer.byteLength(keys[5]), etag: `"${md5(keys[5])}"` });
  });

  it("lists with a delimiter: common prefixes and objects, paginated without gaps or repeats", async () => {
    await storage.put(`${many()}top.json`, "{}");
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: many(), Delimiter: "/", MaxKeys: 1, ContinuationToken: token }));
      for (const p of res.CommonPrefixes ?? []) seen.push(p.Prefix!);
      for (const o of res.Contents ?? []) seen.push(o.Key!);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      pages++;
    } while (token);
    expect(seen).toEqual([`${many()}a-b/`, `${many()}a/`, `${many()}top.json`]);
    expect(pages).toBe(3);
    const inner = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${many()}a/`, Delimiter: "/" }));
    expect(inner.KeyCount).toBe(1000);
    expect(inner.IsTruncated).toBe(false);
  });

  it("more than 1000 common prefixes page correctly with a delimiter", async () => {
    const base = `${P}models/`;
    const names = Array.from({ length: 1010 }, (_, i) => `m${String(i).padStart(4, "0")}`);
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => storage.put(`${base}${n}/v1/model.json`, "{}")));
    const found: string[] = [];
    let token: string | undefined;
    do {
      const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, Delimiter: "/", ContinuationToken: token }));
      found.push(...(res.CommonPrefixes ?? []).map((p) => p.Prefix!));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    expect(found).toEqual(names.map((n) => `${base}${n}/`));
    expect(await storage.listPrefixes(base)).toEqual(names);
    expect(await storage.deletePrefix(base)).toBe(1010);
    expect(await storage.list(base)).toEqual([]);
  }, 300_000);

  it("a made-up continuation token → 400", async () => {
    const e = await sdkError(client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: many(), ContinuationToken: "not-a-token" })));
    expect(e.status).toBe(400);
  });

  it("deletePrefix removes more than 1000 objects (DeleteObjects in chunks)", async () => {
    expect(await storage.deletePrefix(many())).toBe(N + 1);
    expect(await storage.list(many())).toEqual([]);
  }, 300_000);

  it("deletePrefix fails when DeleteObjects answers 200 with per-key Errors (a denied delete is not silent)", async () => {
    const key = `${P}undeletable/a.bin`;
    await storage.put(key, Buffer.from("x"));
    // S3 reports a key it would not delete (e.g. AccessDenied to a role without s3:DeleteObject) only in the
    // 200 response's Errors: answer that, once, for the real request.
    const s3 = (storage as unknown as { client: S3Client }).client;
    const send = s3.send.bind(s3);
    const spy = vi.spyOn(s3, "send").mockImplementation(((cmd: { constructor: { name: string } }) =>
      cmd.constructor.name === "DeleteObjectsCommand"
        ? Promise.resolve({ Deleted: [], Errors: [{ Key: key, Code: "AccessDenied", Message: "Access Denied" }] })
        : send(cmd as never)) as never);
    try {
      await expect(storage.deletePrefix(`${P}undeletable/`)).rejects.toThrow(/could not delete 1 of 1 objects .*AccessDenied/);
    } finally {
      spy.mockRestore();
    }
    expect(await storage.deletePrefix(`${P}undeletable/`)).toBe(1);
  });
});

describe("conditional writes and ETags", () => {
  const put = (key: string, data: string, cond: { IfNoneMatch?: string; IfMatch?: string }) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ...cond }));

  it("ETag is the MD5 of the body", async () => {
    const res = await put(`${P}cond/etag.bin`, "abc", {});
    expect(res.ETag).toBe(`"${md5("abc")}"`);
  });

  it("If-None-Match: * creates once, then 412 PreconditionFailed", async () => {
    await put(`${P}cond/owner.json`, '{"tenant":"alice"}', { IfNoneMatch: "*" });
    expect(await sdkError(put(`${P}cond/owner.json`, '{"tenant":"bob"}', { IfNoneMatch: "*" }))).toMatchObject({ status: 412 });
    expect(await storage.getText(`${P}cond/owner.json`)).toBe('{"tenant":"alice"}');
  });

  it("of concurrent If-None-Match: * creates exactly one wins", async () => {
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => put(`${P}cond/race.json`, `{"n":${i}}`, { IfNoneMatch: "*" })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect([409, 412]).toContain(status(r.reason));
  });

  it("If-Match: the current ETag writes, a stale one → 412, a missing object → 404", async () => {
    const v1 = await put(`${P}cond/cas.json`, "v1", {});
    const v2 = await put(`${P}cond/cas.json`, "v2", { IfMatch: v1.ETag });
    expect(v2.ETag).toBe(`"${md5("v2")}"`);
    expect(await sdkError(put(`${P}cond/cas.json`, "v3", { IfMatch: v1.ETag }))).toMatchObject({ status: 412 });
    expect(await storage.getText(`${P}cond/cas.json`)).toBe("v2");
    expect((await sdkError(put(`${P}cond/absent.json`, "x", { IfMatch: v1.ETag }))).status).toBe(404);
  });
});

describe("keys", () => {
  it("round-trips keys with spaces, +, %, ~, unicode and inner dots", async () => {
    const keys = ["sp ace/a+b=c.json", "pct/100%.txt", "tilde/~x~", "uni/äöü/画像.png", "dots/.hidden/..a/a..b"].map((k) => `${P}keys/${k}`);
    for (const k of keys) await storage.put(k, k);
    for (const k of keys) expect(await storage.getText(k)).toBe(k);
    expect((await storage.list(`${P}keys/`)).map((o) => o.key).sort()).toEqual([...keys].sort());
  });

  it("a 255-byte segment (multi-byte) is stored and listed; 256 bytes → 400", async () => {
    const seg = `${"é".repeat(127)}a`; // 255 bytes
    await storage.put(`${P}long/${seg}/${seg}`, "ok");
    expect(await storage.getText(`${P}long/${seg}/${seg}`)).toBe("ok");
    expect((await storage.list(`${P}long/`)).map((o) => o.key)).toEqual([`${P}long/${seg}/${seg}`]);
    expect(await storage.listPrefixes(`${P}long/`)).toEqual([seg]);
    if (embeddedMode) expect((await sdkError(storage.put(`${P}long/${seg}a`, "x"))).status).toBe(400);
  });

  it.runIf(embeddedMode)("refuses '..', '.', empty segments, over-long keys and control characters with 400", async () => {
    const bad = ["../escape", "a/../../escape", "a/./b", "a//b", "/lead", "trail/", `${"k".repeat(1025)}`, `x/${"a".repeat(300)}.png`, "ctl/\u0001"];
    for (const k of bad) {
      const e = await sdkError(storage.put(k, "x"));
      expect(e.status, k).toBe(400);
    }
    // Nothing was written outside the bucket's folder.
    const outside = fs.readdirSync(dir).sort();
    expect(outside).toEqual(["_buckets", "_tmp"]);
    // Path traversal through the raw URL, signed or not, is refused too.
    const raw = await fetch(`${endpoint}/${bucket}/..%2F..%2Fescape-probe`, { method: "PUT", body: "x" });
    expect(raw.status).toBe(403);
    await raw.arrayBuffer();
    expect(fs.existsSync(path.join(dir, "escape-probe"))).toBe(false);
  });

  it("the report's 300-character file name is refused with 400 and the server keeps answering", async () => {
    const e = await sdkError(storage.put(`${P}datasets/ds_x/files/images/${"a".repeat(300)}.png`, "png"));
    expect(e.status).toBe(400);
    await storage.put(`${P}alive.txt`, "yes");
    expect(await storage.getText(`${P}alive.txt`)).toBe("yes");
  });
});

describe("atomic writes", () => {
  it("readers never see a torn object while it is rewritten", async () => {
    const key = `${P}jobs/ft_1/job.json`;
    const version = (n: number) => JSON.stringify({ n, events: Array.from({ length: 4000 }, (_, i) => ({ i, step: n })) });
    await storage.put(key, version(0));
    let writing = true;
    const writer = (async () => {
      for (let n = 1; n <= 40; n++) await storage.put(key, version(n), { contentType: "application/json" });
      writing = false;
    })();
    let reads = 0;
    const reader = async () => {
      while (writing) {
        const text = await storage.getText(key);
        const parsed = JSON.parse(text!) as { n: number; events: unknown[] };
        expect(parsed.events).toHaveLength(4000);
        reads++;
      }
    };
    await Promise.all([writer, reader(), reader(), reader()]);
    expect(reads).toBeGreaterThan(10);
    expect((JSON.parse((await storage.getText(key))!) as { n: number }).n).toBe(40);
  }, 120_000);

  it("Range GET returns the requested bytes (206)", async () => {
    await storage.put(`${P}range.bin`, "0123456789");
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${P}range.bin`, Range: "bytes=2-5" }));
    expect(res.$metadata.httpStatusCode).toBe(206);
    expect(res.ContentRange).toBe("bytes 2-5/10");
    expect(await res.Body!.transformToString()).toBe("2345");
  });
});

describe.runIf(embeddedMode)("embedded server: failures, CORS, Host", () => {
  it("a write the filesystem refuses (temp folder unusable) → 503 with Retry-After, and the server keeps answering", async () => {
    await storage.put(`${P}fail/before.txt`, "before");
    const tmp = path.join(dir, "_tmp");
    fs.rmSync(tmp, { recursive: true });
    fs.writeFileSync(tmp, "not a folder"); // root ignores chmod; a file where a folder should be fails for anyone
    try {
      const url = await storage.presignPut(`${P}fail/upload.zip`, 60);
      const res = await fetch(url, { method: "PUT", body: randomBytes(200_000) });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBeTruthy();
      expect(errorCode(await res.text())).toBe("ServiceUnavailable");
      // Storage turns the store's 503 (after the SDK's retries) into the API's retryable storage_unavailable.
      const e = await sdkError(storage.put(`${P}fail/after.txt`, "x"));
      expect(e).toMatchObject({ status: 503, name: "ApiError" });
      expect(await storage.getText(`${P}fail/before.txt`)).toBe("before");
    } finally {
      fs.rmSync(tmp);
      fs.mkdirSync(tmp);
    }
    await storage.put(`${P}fail/after.txt`, "after");
    expect(await storage.getText(`${P}fail/after.txt`)).toBe("after");
  });

  it("a folder that cannot be created (a file in its place) → 503, not a crash", async () => {
    const blocked = path.join(dir, "_buckets", bucket, "blocked");
    fs.writeFileSync(blocked, "x");
    try {
      const e = await sdkError(storage.put(`${P}blocked/deeper/x.json`, "{}"));
      expect(e.status).toBe(503);
      expect(await storage.getText(`${P}fail/after.txt`)).toBe("after");
    } finally {
      fs.rmSync(blocked);
    }
  });

  it("CORS: the app's origin may preflight a presigned PUT; other origins get no CORS headers, never *", async () => {
    const url = await storage.presignPut(`${P}cors/upload.zip`, 60, "application/zip");
    const ok = await fetch(url, { method: "OPTIONS", headers: { Origin: APP_ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(ok.headers.get("access-control-allow-methods")).toContain("PUT");
    // The dataset upload form is a POST to the bucket.
    const post = await fetch(`${endpoint}/${bucket}`, { method: "OPTIONS", headers: { Origin: APP_ORIGIN, "Access-Control-Request-Method": "POST" } });
    expect(post.status).toBe(200);
    expect(post.headers.get("access-control-allow-methods")).toContain("POST");
    const evil = await fetch(url, { method: "OPTIONS", headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "PUT" } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    await evil.arrayBuffer();
    const put = await fetch(url, { method: "PUT", headers: { Origin: APP_ORIGIN, "Content-Type": "application/zip" }, body: "zip" });
    expect(put.status).toBe(200);
    expect(put.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    const evilGet = await fetch(await storage.presignGet(`${P}cors/upload.zip`), { headers: { Origin: "http://evil.example" } });
    expect(evilGet.headers.get("access-control-allow-origin")).toBeNull();
    await evilGet.arrayBuffer();
  });

  it("a request whose Host is not this server (DNS rebinding) → 403", async () => {
    const http = await import("node:http");
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${endpoint}/${bucket}/x`, { headers: { Host: "evil.example:80" } }, (r) => {
        let b = "";
        r.on("data", (c) => (b += c));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body: b }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe("AccessDenied");
  });

  it("a second server on the same folder (the CLI beside a running stack) sees the same objects, and its start leaves uploads in flight alone", async () => {
    const inflight = path.join(dir, "_tmp", ".put-inflight");
    fs.writeFileSync(inflight, "partial body");
    const second = await startFsS3Server({ directory: dir, credentials: CREDS, buckets: [bucket], logger: quietLog });
    const other = new Storage({ bucket, region: REGION, endpoint: second.endpoint, credentials: CREDS, maxAttempts: 1 });
    try {
      expect(fs.existsSync(inflight)).toBe(true);
      expect(await other.getText(`${P}fail/after.txt`)).toBe("after");
      await other.put(`${P}cli/model.json`, '{"from":"cli"}');
      expect(await storage.getText(`${P}cli/model.json`)).toBe('{"from":"cli"}');
    } finally {
      other.destroy();
      await second.close();
      fs.rmSync(inflight, { force: true });
    }
  });

  it("survives garbage: malformed auth header, bad percent-encoding, huge Content-Length", async () => {
    const a = await fetch(objectUrl("x"), { headers: { Authorization: "AWS4-HMAC-SHA256 nonsense" } });
    expect(a.status).toBe(400);
    await a.arrayBuffer();
    const b = await fetch(`${endpoint}/${bucket}/%E0%A4%A`);
    expect(b.status).toBe(400);
    await b.arrayBuffer();
    expect(await storage.getText(`${P}fail/after.txt`)).toBe("after");
  });
});

describe.runIf(embeddedMode)("embedded.ts (what local runs and tests start)", () => {
  it("imports an old s3rver data folder once, signs with EMBEDDED_CREDENTIALS, allows the playground's origin", async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-embedded-"));
    try {
      // The layout s3rver 3.7 wrote: <dir>/<bucket>/<key>._S3rver_object + ._S3rver_metadata.json
      const old = path.join(d, "ganserve", "models", "m1", "v1");
      fs.mkdirSync(old, { recursive: true });
      fs.writeFileSync(path.join(old, "model.json._S3rver_object"), '{"name":"m1"}');
      fs.writeFileSync(path.join(old, "model.json._S3rver_metadata.json"), JSON.stringify({ "content-type": "application/json", "x-amz-meta-a": "b" }));
      fs.writeFileSync(path.join(old, "model.json._S3rver_object.md5"), "x");
      const s3 = await startEmbeddedS3({ directory: d, bucket: "ganserve", logger: quietLog });
      const st = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: s3.endpoint, credentials: EMBEDDED_CREDENTIALS, maxAttempts: 1 });
      try {
        await st.ensureBucket();
        expect(await st.getText("models/m1/v1/model.json")).toBe('{"name":"m1"}');
        expect((await st.list("")).map((o) => o.key)).toEqual(["models/m1/v1/model.json"]);
        expect(fs.existsSync(path.join(d, "ganserve"))).toBe(false);
        expect(fs.existsSync(path.join(d, "ganserve.s3rver-imported"))).toBe(true);
        const unsigned = await fetch(`${s3.endpoint}/ganserve/models/m1/v1/model.json`);
        expect(unsigned.status).toBe(403);
        await unsigned.arrayBuffer();
      } finally {
        st.destroy();
        await s3.close();
      }
      expect(playgroundOrigins("127.0.0.1", 3000)).toContain("http://localhost:3000");
      expect(playgroundOrigins("127.0.0.1", 3000)).not.toContain("*");
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
