// An S3 front for the embedded store (packages/core/src/storage/fs-s3) that decides every path-style request
// the way S3 authorises it, against one role, before forwarding it unchanged (the Host header too: the store
// checks SigV4 against it). What S3 would answer a denied caller is what the caller gets.
import http from "node:http";
import { DeleteObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { EMBEDDED_CREDENTIALS } from "@ganserve/core/storage/index";
import type { Request, RoleGate } from "./iam.ts";

const denied = (res: http.ServerResponse) => {
  res.writeHead(403, { "content-type": "application/xml" });
  res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
};

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const xmlUnescape = (s: string) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface S3Front {
  endpoint: string;
  close(): Promise<void>;
}

/** What S3 authorises one request as, or undefined for a request this front does not model (denied). */
function classify(method: string, bucket: string, key: string | undefined, q: URLSearchParams, headers: http.IncomingHttpHeaders): Request[] | undefined {
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const objectArn = `${bucketArn}/${key}`;
  if (key === undefined) {
    if (method === "HEAD") return [{ action: "s3:ListBucket", resource: bucketArn }];
    if (method === "GET" && [...q.keys()].every((k) => ["list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "encoding-type", "fetch-owner"].includes(k))) {
      const prefix = q.get("prefix");
      return [{ action: "s3:ListBucket", resource: bucketArn, context: prefix === null ? {} : { "s3:prefix": prefix } }];
    }
    if (method === "PUT" && [...q.keys()].length === 0) return [{ action: "s3:CreateBucket", resource: bucketArn }];
    return undefined;
  }
  if (method === "GET" || method === "HEAD") return [{ action: "s3:GetObject", resource: objectArn }];
  if (method === "PUT" || (method === "POST" && (q.has("uploads") || q.has("uploadId")))) {
    const copy = headers["x-amz-copy-source"];
    const source = typeof copy === "string" ? decodeURIComponent(copy.replace(/^\//, "")) : undefined;
    return [{ action: "s3:PutObject", resource: objectArn }, ...(source ? [{ action: "s3:GetObject", resource: `arn:aws:s3:::${source}` }] : [])];
  }
  if (method === "DELETE") return [{ action: q.has("uploadId") ? "s3:AbortMultipartUpload" : "s3:DeleteObject", resource: objectArn }];
  return undefined;
}

export async function startS3Front(opts: { upstream: string; bucket: string; gate: RoleGate; region?: string }): Promise<S3Front> {
  const up = new URL(opts.upstream);
  const direct = new S3Client({ endpoint: opts.upstream, region: opts.region ?? "us-east-1", forcePathStyle: true, credentials: EMBEDDED_CREDENTIALS });

  const forward = (req: http.IncomingMessage, payload: Buffer | undefined, onResponse: (up: http.IncomingMessage) => void) =>
    new Promise<void>((resolve, reject) => {
      const r = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        onResponse(upRes);
        upRes.on("end", resolve);
      });
      r.on("error", reject);
      if (payload) r.end(payload);
      else req.pipe(r);
    });

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://front");
      const [, bucket, ...rest] = url.pathname.split("/");
      const key = rest.length > 0 && rest.join("/") !== "" ? decodeURIComponent(rest.join("/")) : undefined;
      const method = req.method ?? "GET";
      const call = `${method} /${bucket}${key === undefined ? "" : `/${key}`}${url.search}`;
      if (bucket !== opts.bucket) return denied(res);

      if (method === "POST" && key === undefined && url.searchParams.has("delete")) {
        // DeleteObjects: authorised per key; S3 answers 200 with an <Error> for each denied one.
        const payload = await body(req);
        const keys = [...payload.toString("utf8").matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => xmlUnescape(m[1]));
        const verdicts = [];
        for (const k of keys) verdicts.push(await opts.gate.decide(`DeleteObjects ${k}`, { action: "s3:DeleteObject", resource: `arn:aws:s3:::${bucket}/${k}` }));
        if (verdicts.every(Boolean)) {
          return await forward(req, payload, (upRes) => {
            res.writeHead(upRes.statusCode ?? 500, upRes.headers);
            upRes.pipe(res);
          });
        }
        const parts: string[] = [];
        for (const [i, k] of keys.entries()) {
          if (verdicts[i]) {
            await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
            parts.push(`<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`);
          } else parts.push(`<Error><Key>${xmlEscape(k)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`);
        }
        res.writeHead(200, { "content-type": "application/xml" });
        return res.end(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${parts.join("")}</DeleteResult>`);
      }

      const requests = classify(method, bucket, key, url.searchParams, req.headers);
      if (!requests) {
        await opts.gate.decide(call, { action: "s3:UnmodeledRequest", resource: `arn:aws:s3:::${bucket}` });
        return denied(res);
      }
      if (!(await opts.gate.decide(call, ...requests))) return denied(res);
      await forward(req, undefined, async (upRes) => {
        // A missing key is 404 only to a caller that may list it (s3:ListBucket with the key as prefix);
        // anyone else gets 403, as from S3.
        if (upRes.statusCode === 404 && key !== undefined && (method === "GET" || method === "HEAD")) {
          const mayList = await opts.gate.decide(`404 for ${call}`, { action: "s3:ListBucket", resource: `arn:aws:s3:::${bucket}`, context: { "s3:prefix": key } });
          if (!mayList) {
            upRes.resume();
            return denied(res);
          }
        }
        res.writeHead(upRes.statusCode ?? 500, upRes.headers);
        upRes.pipe(res);
      });
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(e));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      direct.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}
