/**
 * A small S3-compatible HTTP server on the filesystem: what ganserve's `Storage` (and its presigned URLs)
 * use, nothing more, and everything of it checked. Path-style requests only.
 *
 * - Every request but a CORS preflight is authenticated (SigV4 header or presigned query, see auth.ts);
 *   unsigned → 403 AccessDenied, tampered → 403 SignatureDoesNotMatch, expired presign → 403.
 * - Operations: HeadBucket, CreateBucket, ListObjectsV2 (Prefix, Delimiter, MaxKeys ≤ 1000, StartAfter,
 *   opaque ContinuationToken, encoding-type=url), PutObject (If-None-Match: *, If-Match → 412), GetObject and
 *   HeadObject (single Range, If-Match / If-None-Match), DeleteObject, DeleteObjects, and PostObject (the
 *   browser form upload: policy signature, expiration and conditions checked, content-length-range enforced
 *   while the file streams to a temp file, so an oversize upload is cut off with 400 EntityTooLarge and
 *   nothing is stored). Anything else → 501.
 * - Keys validated (object-store.ts) → 400; writes atomic; filesystem failures → 503 / 507 with Retry-After,
 *   logged, and never thrown out of a request handler, so the host process cannot die of one.
 * - CORS only for the configured origins (the playground's), never `*`; on a loopback address the Host header
 *   must name the server (DNS rebinding).
 */
import { createHash, randomBytes } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Credentials, parseQuery, type Query, RequestVerifier, verifyPostPolicy } from "./auth.ts";
import { errorXml, S3Error, storageFailure, xmlEscape } from "./errors.ts";
import { type ListEntry, ObjectStore, validateKey, validBucketName } from "./object-store.ts";
import { boundaryOf, readPostForm } from "./post-form.ts";

export interface FsS3Logger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface FsS3ServerOptions {
  directory: string;
  credentials: Credentials;
  /** Buckets created at start. */
  buckets?: string[];
  host?: string;
  port?: number;
  /** Origins allowed to call the store from a browser (presigned uploads from the playground). */
  allowedOrigins?: string[] | (() => string[]);
  /** Largest object accepted by a PUT (S3's single-PUT limit by default). */
  maxObjectBytes?: number;
  logger?: FsS3Logger;
  /** Clock for signature expiry (tests). */
  now?: () => number;
}

export interface FsS3Server {
  endpoint: string;
  port: number;
  store: ObjectStore;
  close(): Promise<void>;
}

const MAX_DELETE_BODY = 2 * 1024 * 1024;
const CORS_METHODS = ["GET", "PUT", "POST", "HEAD"];
/** S3's placeholder for the uploaded file's name in a POST form's key. */
const FILENAME_VARIABLE = "$" + "{filename}";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

const consoleLogger: FsS3Logger = {
  warn: (obj, msg) => console.warn(JSON.stringify({ level: "warn", service: "embedded-s3", msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: "error", service: "embedded-s3", msg, ...obj })),
};

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
const one = (q: Query, name: string) => {
  const v = q[name];
  return Array.isArray(v) ? v[0] : v;
};
const quoted = (etag: string) => `"${etag}"`;
const unquote = (etag: string) => etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");

function decodePathPart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
  }
}

/** Reads a small body (DeleteObjects) with a cap. */
async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const xmlUnescape = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e === "amp") return "&";
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    return String.fromCodePoint(e[1] === "x" ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10));
  });

interface Token {
  after: string;
  afterIsPrefix: boolean;
}
const encodeToken = (t: Token) => Buffer.from(JSON.stringify({ v: 1, a: t.after, p: t.afterIsPrefix ? 1 : 0 })).toString("base64url");
function decodeToken(s: string): Token {
  try {
    const o = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as { v?: number; a?: unknown; p?: unknown };
    if (o.v !== 1 || typeof o.a !== "string") throw new Error("bad");
    return { after: o.a, afterIsPrefix: o.p === 1 };
  } catch {
    throw new S3Error(400, "InvalidArgument", "The continuation token provided is incorrect");
  }
}

export async function startFsS3Server(opts: FsS3ServerOptions): Promise<FsS3Server> {
  const store = new ObjectStore(opts.directory);
  await store.init();
  for (const b of opts.buckets ?? []) await store.createBucket(b);
  const verifier = new RequestVerifier(opts.credentials, opts.now);
  const log = opts.logger ?? consoleLogger;
  const maxObjectBytes = opts.maxObjectBytes ?? 5 * 1024 ** 3;
  const host = opts.host ?? "127.0.0.1";
  let allowedHosts: Set<string> | undefined;
  const origins = () => (typeof opts.allowedOrigins === "function" ? opts.allowedOrigins() : (opts.allowedOrigins ?? []));

  function send(res: ServerResponse, status: number, body?: string, headers: Record<string, string> = {}) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { ...(body !== undefined ? { "Content-Type": "application/xml", "Content-Length": String(Buffer.byteLength(body)) } : {}), ...headers });
    res.end(body);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, err: S3Error, resource: string) {
    const requestId = randomBytes(8).toString("hex").toUpperCase();
    const headers: Record<string, string> = { "x-amz-request-id": requestId, ...err.headers };
    // A refused upload may still be arriving: close the connection rather than read the rest of it.
    if (!req.complete) headers.Connection = "close";
    if (req.method === "HEAD") send(res, err.status, undefined, headers);
    else send(res, err.status, errorXml(err, resource, requestId), headers);
  }

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = header(req, "origin");
    if (!origin || !origins().includes(origin)) return {};
    return { "Access-Control-Allow-Origin": origin, Vary: "Origin", "Access-Control-Expose-Headers": "ETag, x-amz-request-id" };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const qAt = url.indexOf("?");
    const rawPath = qAt < 0 ? url : url.slice(0, qAt);
    const rawQuery = qAt < 0 ? "" : url.slice(qAt + 1);
    const method = req.method ?? "GET";

    if (allowedHosts && !allowedHosts.has((header(req, "host") ?? "").toLowerCase()))
      throw new S3Error(403, "AccessDenied", "The Host header does not name this server");
    if (!rawPath.startsWith("/")) throw new S3Error(400, "InvalidURI", "Couldn't parse the specified URI.");

    const cors = corsHeaders(req);
    if (method === "OPTIONS") {
      const origin = header(req, "origin");
      const wanted = header(req, "access-control-request-method");
      if (!origin || !wanted) throw new S3Error(400, "BadRequest", "Insufficient information. Origin request header needed.");
      if (!cors["Access-Control-Allow-Origin"] || !CORS_METHODS.includes(wanted))
        throw new S3Error(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.");
      send(res, 200, undefined, {
        ...cors,
        "Access-Control-Allow-Methods": CORS_METHODS.join(", "),
        ...(header(req, "access-control-request-headers") ? { "Access-Control-Allow-Headers": header(req, "access-control-request-headers")! } : {}),
        "Access-Control-Max-Age": "3000",
        "Content-Length": "0",
      });
      return;
    }
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);

    const slash = rawPath.indexOf("/", 1);
    const bucket = decodePathPart(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
    const key = slash < 0 ? "" : decodePathPart(rawPath.slice(slash + 1));
    const query = parseQuery(rawQuery);

    // A browser POST upload carries its credentials in the form, not in the request line or headers.
    if (method === "POST" && key === "" && /^multipart\/form-data\b/i.test(header(req, "content-type") ?? "") && header(req, "authorization") === undefined && Object.keys(query).length === 0)
      return postObject(req, res, bucket);

    const verified = await verifier.verify({ method, path: rawPath, query, headers: req.headers });

    if (bucket === "") throw new S3Error(501, "NotImplemented", "ListBuckets is not supported by the embedded store");
    if (!validBucketName(bucket)) throw new S3Error(400, "InvalidBucketName", "The specified bucket is not valid.");

    if (key === "") {
      if (method === "HEAD") {
        await store.requireBucket(bucket);
        return send(res, 200, undefined, { "Content-Length": "0" });
      }
      if (method === "PUT") {
        await store.createBucket(bucket);
        return send(res, 200, undefined, { Location: `/${bucket}`, "Content-Length": "0" });
      }
      if (method === "GET" && one(query, "list-type") === "2") return listV2(res, bucket, query);
      if (method === "POST" && "delete" in query) return deleteObjects(req, res, bucket, verified.payloadSha256);
      throw new S3Error(501, "NotImplemented", "This bucket operation is not supported by the embedded store");
    }

    validateKey(key);
    await store.requireBucket(bucket);
    if (method === "PUT") {
      if (header(req, "x-amz-copy-source") !== undefined) throw new S3Error(501, "NotImplemented", "CopyObject is not supported by the embedded store");
      if (Object.keys(query).some((k) => ["partNumber", "uploadId", "acl", "tagging"].includes(k)))
        throw new S3Error(501, "NotImplemented", "This object operation is not supported by the embedded store");
      return putObject(req, res, bucket, key, verified.payloadSha256);
    }
    if (method === "GET" || method === "HEAD") return getObject(req, res, bucket, key, method === "HEAD");
    if (method === "DELETE") {
      await store.delete(bucket, key);
      return send(res, 204);
    }
    throw new S3Error(method === "POST" ? 501 : 405, method === "POST" ? "NotImplemented" : "MethodNotAllowed", "The specified method is not allowed against this resource.");
  }

  async function putObject(req: IncomingMessage, res: ServerResponse, bucket: string, key: string, sha256: string | undefined) {
    const lengthHeader = header(req, "content-length");
    if (lengthHeader === undefined) throw new S3Error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    const contentLength = Number(lengthHeader);
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) throw new S3Error(400, "InvalidArgument", "Content-Length is not valid");
    if (contentLength > maxObjectBytes)
      throw new S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.", { MaxSizeAllowed: String(maxObjectBytes) });
    const ifNoneMatch = header(req, "if-none-match");
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== "*") throw new S3Error(501, "NotImplemented", "If-None-Match on PUT supports only '*'");
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers))
      if (name.startsWith("x-amz-meta-") && value !== undefined) metadata[name.slice(11)] = Array.isArray(value) ? value.join(",") : value;
    const meta = await store.put(
      bucket,
      key,
      req,
      { contentLength, contentType: header(req, "content-type"), metadata, sha256, contentMd5: header(req, "content-md5") },
      { ifNoneMatch, ifMatch: header(req, "if-match") },
    );
    send(res, 200, undefined, { ETag: quoted(meta.etag), "Content-Length": "0" });
  }

  async function postObject(req: IncomingMessage, res: ServerResponse, bucket: string) {
    if (!validBucketName(bucket)) throw new S3Error(400, "InvalidBucketName", "The specified bucket is not valid.");
    const form = await readPostForm(req, boundaryOf(header(req, "content-type")));
    const allowed = await verifyPostPolicy(opts.credentials, bucket, form.fields, (opts.now ?? Date.now)());
    const key = form.fields.get("key");
    if (key === undefined) throw new S3Error(400, "InvalidArgument", "Bucket POST must contain a field named 'key'.", { ArgumentName: "key" });
    if (key.includes(FILENAME_VARIABLE)) throw new S3Error(501, "NotImplemented", `${FILENAME_VARIABLE} in a POST key is not supported by the embedded store`);
    validateKey(key);
    await store.requireBucket(bucket);
    const max = Math.min(allowed.maxBytes ?? maxObjectBytes, maxObjectBytes);
    const metadata: Record<string, string> = {};
    for (const [name, value] of form.fields) if (name.startsWith("x-amz-meta-")) metadata[name.slice(11)] = value;
    const meta = await store.put(bucket, key, form.file(max), {
      contentType: form.fields.get("content-type") ?? form.fileContentType,
      metadata,
      minLength: allowed.minBytes,
    });
    const location = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
    const headers = { ETag: quoted(meta.etag), Location: location };
    // Anything after the file part is ignored, as S3 ignores it; don't keep a connection with unread bytes.
    if (!req.complete) res.setHeader("Connection", "close");
    const status = form.fields.get("success_action_status");
    if (status === "201")
      return send(
        res,
        201,
        `<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Location>${xmlEscape(location)}</Location><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${quoted(meta.etag)}</ETag></PostResponse>`,
        headers,
      );
    send(res, status === "200" ? 200 : 204, undefined, { ...headers, ...(status === "200" ? { "Content-Length": "0" } : {}) });
  }

  async function getObject(req: IncomingMessage, res: ServerResponse, bucket: string, key: string, headOnly: boolean) {
    const opened = await store.open(bucket, key);
    if (!opened) throw new S3Error(404, "NoSuchKey", "The specified key does not exist.", { Key: key });
    let streaming = false;
    try {
      const { meta } = opened;
      const ifMatch = header(req, "if-match");
      if (ifMatch !== undefined && !ifMatch.split(",").map(unquote).some((e) => e === "*" || e === meta.etag))
        throw new S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-Match" });
      const ifNoneMatch = header(req, "if-none-match");
      if (ifNoneMatch?.split(",").map(unquote).some((e) => e === "*" || e === meta.etag)) {
        send(res, 304, undefined, { ETag: quoted(meta.etag) });
        return;
      }
      const headers: Record<string, string> = {
        ETag: quoted(meta.etag),
        "Last-Modified": meta.lastModified.toUTCString(),
        "Content-Type": meta.contentType ?? "binary/octet-stream",
        "Accept-Ranges": "bytes",
      };
      for (const [k, v] of Object.entries(meta.metadata)) headers[`x-amz-meta-${k}`] = v;
      let start = 0;
      let end = meta.size - 1;
      let status = 200;
      const range = header(req, "range");
      const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
      if (m && (m[1] !== "" || m[2] !== "")) {
        if (m[1] === "") {
          start = Math.max(0, meta.size - Number(m[2]));
        } else {
          start = Number(m[1]);
          end = m[2] === "" ? meta.size - 1 : Math.min(Number(m[2]), meta.size - 1);
        }
        if (start >= meta.size || start > end || (m[1] === "" && Number(m[2]) === 0))
          throw new S3Error(416, "InvalidRange", "The requested range is not satisfiable", { ActualObjectSize: String(meta.size) }, { "Content-Range": `bytes */${meta.size}` });
        status = 206;
        headers["Content-Range"] = `bytes ${start}-${end}/${meta.size}`;
      }
      headers["Content-Length"] = String(Math.max(0, end - start + 1));
      if (headOnly || end < start) {
        send(res, status, undefined, headers);
        return;
      }
      res.writeHead(status, headers);
      streaming = true;
      const body = opened.stream(start, end);
      body.on("error", (e) => {
        log.error({ err: String(e), bucket, key }, "embedded S3: reading an object failed");
        res.destroy();
      });
      res.on("close", () => body.destroy());
      body.pipe(res);
    } finally {
      if (!streaming) await opened.close();
    }
  }

  async function listV2(res: ServerResponse, bucket: string, q: Query) {
    await store.requireBucket(bucket);
    const prefix = one(q, "prefix") ?? "";
    const delimiter = one(q, "delimiter") || undefined;
    const maxRaw = one(q, "max-keys");
    if (maxRaw !== undefined && !/^\d+$/.test(maxRaw)) throw new S3Error(400, "InvalidArgument", "max-keys must be a non-negative integer");
    const maxKeys = Math.min(1000, maxRaw === undefined ? 1000 : Number(maxRaw));
    const token = one(q, "continuation-token");
    const startAfter = one(q, "start-after");
    const urlEncode = one(q, "encoding-type") === "url";
    if (one(q, "encoding-type") !== undefined && !urlEncode) throw new S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request");
    const resume = token !== undefined ? decodeToken(token) : { after: startAfter ?? "", afterIsPrefix: false };
    const enc = (s: string) => xmlEscape(urlEncode ? encodeURIComponent(s).replace(/%2F/g, "/") : s);

    const contents: string[] = [];
    const prefixes: string[] = [];
    let last: ListEntry | undefined;
    let truncated = false;
    if (maxKeys > 0) {
      const it = store.walk(bucket, { prefix, delimiter, after: resume.after, afterIsPrefix: resume.afterIsPrefix });
      for await (const entry of it) {
        if (contents.length + prefixes.length >= maxKeys) {
          truncated = true;
          break;
        }
        if (entry.kind === "prefix") prefixes.push(`<CommonPrefixes><Prefix>${enc(entry.prefix)}</Prefix></CommonPrefixes>`);
        else {
          const meta = await store.head(bucket, entry.key);
          if (!meta) continue; // deleted since the directory was read
          contents.push(
            `<Contents><Key>${enc(entry.key)}</Key><LastModified>${meta.lastModified.toISOString()}</LastModified><ETag>&quot;${meta.etag}&quot;</ETag><Size>${meta.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
          );
        }
        last = entry;
      }
    }
    const next = truncated && last ? encodeToken(last.kind === "prefix" ? { after: last.prefix, afterIsPrefix: true } : { after: last.key, afterIsPrefix: false }) : undefined;
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Name>${xmlEscape(bucket)}</Name><Prefix>${enc(prefix)}</Prefix>` +
      (delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : "") +
      `<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${contents.length + prefixes.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
      (token !== undefined ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : "") +
      (next ? `<NextContinuationToken>${next}</NextContinuationToken>` : "") +
      (startAfter !== undefined ? `<StartAfter>${enc(startAfter)}</StartAfter>` : "") +
      (urlEncode ? "<EncodingType>url</EncodingType>" : "") +
      contents.join("") +
      prefixes.join("") +
      "</ListBucketResult>";
    send(res, 200, body);
  }

  async function deleteObjects(req: IncomingMessage, res: ServerResponse, bucket: string, sha256: string | undefined) {
    await store.requireBucket(bucket);
    const raw = await readSmallBody(req, MAX_DELETE_BODY);
    if (sha256 && createHash("sha256").update(raw).digest("hex") !== sha256)
      throw new S3Error(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
    const md5 = header(req, "content-md5");
    if (md5 !== undefined && createHash("md5").update(raw).digest("base64") !== md5)
      throw new S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    const xml = raw.toString("utf8");
    if (!/<Delete[\s>]/.test(xml)) throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(xml);
    const keys = [...xml.matchAll(/<Object>[\s\S]*?<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Object>/g)].map((m) => xmlUnescape(m[1]));
    if (keys.length === 0 || keys.length > 1000)
      throw new S3Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema");
    const out: string[] = [];
    for (const key of keys) {
      try {
        validateKey(key);
        await store.delete(bucket, key);
        if (!quiet) out.push(`<Deleted><Key>${xmlEscape(key)}</Key></Deleted>`);
      } catch (e) {
        const err = e instanceof S3Error ? e : storageFailure(e);
        if (!(e instanceof S3Error)) log.error({ err: String(e), bucket, key }, "embedded S3: delete failed");
        out.push(`<Error><Key>${xmlEscape(key)}</Key><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message></Error>`);
      }
    }
    send(res, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${out.join("")}</DeleteResult>`);
  }

  const server = http.createServer((req, res) => {
    req.on("error", () => {}); // a client that hangs up mid-body: handled where the body is read
    res.on("error", () => {});
    handle(req, res).catch((e: unknown) => {
      let err: S3Error;
      if (e instanceof S3Error) err = e;
      else if ((e as NodeJS.ErrnoException)?.code === "ERR_STREAM_PREMATURE_CLOSE" || (e as NodeJS.ErrnoException)?.code === "ECONNRESET") {
        res.destroy();
        return;
      } else {
        err = storageFailure(e);
        // The path only: a presigned URL's query carries its signature.
        log.error({ err: String(e), code: (e as NodeJS.ErrnoException)?.code, method: req.method, path: (req.url ?? "/").split("?")[0] }, "embedded S3: storage error");
      }
      try {
        sendError(req, res, err, (req.url ?? "/").split("?")[0]);
      } catch {
        res.destroy();
      }
    });
  });
  server.on("clientError", (_e, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e) => log.error({ err: String(e) }, "embedded S3: server error"));
  const port = (server.address() as AddressInfo).port;
  if (LOOPBACK.has(host)) allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  const hostInUrl = host.includes(":") ? `[${host}]` : host;
  return {
    endpoint: `http://${hostInUrl}:${port}`,
    port,
    store,
    // close() alone waits for every open connection (keep-alive sockets of SDK clients, requests in flight)
    // and can hang indefinitely; a stopped store should be stopped, so cut them.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
