import type { Settings } from "../config.ts";
import { EMBEDDED_CREDENTIALS, playgroundOrigins, startEmbeddedS3, type EmbeddedS3 } from "./embedded.ts";
import { Storage } from "./storage.ts";

export { Storage, type ObjectInfo, type PutOptions, type StorageOptions } from "./storage.ts";
export { startEmbeddedS3, playgroundOrigins, EMBEDDED_CREDENTIALS, type EmbeddedS3 } from "./embedded.ts";

export interface OpenedStorage {
  storage: Storage;
  /** Present when this process started the embedded server. */
  embedded?: EmbeddedS3;
  close(): Promise<void>;
}

/** Connects to the configured store, starting the embedded server first when none is configured. */
export async function openStorage(settings: Settings): Promise<OpenedStorage> {
  const useEmbedded = settings.GANSERVE_EMBEDDED_S3 ?? settings.GANSERVE_S3_ENDPOINT === undefined;
  let embedded: EmbeddedS3 | undefined;
  let endpoint = settings.GANSERVE_S3_ENDPOINT;
  if (useEmbedded) {
    embedded = await startEmbeddedS3({
      directory: `${settings.dataDir}/s3`,
      bucket: settings.GANSERVE_S3_BUCKET,
      port: settings.GANSERVE_EMBEDDED_S3_PORT,
      // The playground POSTs dataset zips with presigned upload forms to the store's own origin.
      allowedOrigins: playgroundOrigins(settings.HOST, settings.PORT),
    });
    endpoint = embedded.endpoint;
  }
  const storage = new Storage({
    bucket: settings.GANSERVE_S3_BUCKET,
    region: settings.GANSERVE_S3_REGION,
    endpoint,
    credentials: useEmbedded ? EMBEDDED_CREDENTIALS : undefined,
  });
  // A deployed bucket (real S3: no endpoint configured) is created by the infrastructure, and its roles may not
  // HeadBucket it (s3:ListBucket without a prefix); only a store this process or a developer runs is created here.
  if (useEmbedded || settings.GANSERVE_S3_ENDPOINT !== undefined) await storage.ensureBucket();
  return {
    storage,
    embedded,
    async close() {
      storage.destroy();
      await embedded?.close();
    },
  };
}
