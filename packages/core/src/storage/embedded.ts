/**
 * A real S3-compatible server (s3rver) inside the process, on a data directory that survives restarts.
 * Used only for local runs and tests: s3rver is unmaintained, so nothing outside this file knows about it,
 * and production talks to S3 through the same `Storage` class.
 */
import fs from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
// @ts-expect-error s3rver ships no types
import S3rver from "s3rver";

/** s3rver accepts this fixed key pair. */
export const EMBEDDED_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

// Browsers upload dataset zips straight to presigned URLs, which live on the embedded server's origin.
const CORS = `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>`;

export interface EmbeddedS3 {
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

export async function startEmbeddedS3(opts: { directory: string; bucket: string; port?: number; host?: string }): Promise<EmbeddedS3> {
  const directory = path.resolve(opts.directory);
  fs.mkdirSync(directory, { recursive: true });
  const host = opts.host ?? "127.0.0.1";
  const server = new S3rver({
    directory,
    port: opts.port ?? 0,
    address: host,
    silent: true,
    configureBuckets: [{ name: opts.bucket, configs: [CORS] }],
  });
  const address: AddressInfo = await server.run();
  return {
    endpoint: `http://${host}:${address.port}`,
    port: address.port,
    // close() alone waits for every open connection (keep-alive sockets of SDK clients, requests in flight)
    // and can hang indefinitely; a stopped store should be stopped, so cut them.
    close: async () => {
      const closing = server.close();
      (server as { httpServer?: Server }).httpServer?.closeAllConnections();
      await closing;
    },
  };
}
