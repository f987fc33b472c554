import { authKeys, datasetKeys, jobKeys, modelKeys, outputKeys, predictionKeys, STORAGE_PREFIXES } from "../packages/core/src/storage/keys";
import type { InfraConfig } from "./config";

/** Key prefixes in the data bucket (core's storage/keys.ts); IAM policies are scoped to these, never to the whole bucket. */
export const PREFIXES = STORAGE_PREFIXES;

export function storage(cfg: InfraConfig) {
  const bucket = new sst.aws.Bucket("Data", {
    // Browsers POST dataset archives straight to S3 with presigned upload forms (a signed policy bounds
    // their size) and read generated images back. No PUT: no presigned PUT URL is handed out.
    cors: {
      allowOrigins: cfg.storage.corsOrigins,
      allowMethods: ["GET", "HEAD", "POST"],
      allowHeaders: ["*"],
      exposeHeaders: ["ETag"],
      maxAge: "1 hour",
    },
    lifecycle: [
      { id: "expire-outputs", prefix: outputKeys.root, expiresIn: `${cfg.storage.outputsTtlDays} days` },
      // Prediction inputs, results and images; the records (predictions/) stay. S3 expires whole days, so
      // this is the backstop behind the service's own retention (GANSERVE_PREDICTION_RETENTION_S, 1 hour).
      { id: "expire-prediction-data", prefix: predictionKeys.dataRoot, expiresIn: "1 day" },
    ],
    transform: {
      lifecycle: (args) => {
        // Aborted browser uploads would otherwise leave billable multipart parts behind forever.
        args.rules = $output(args.rules).apply((rules) => [
          ...(rules ?? []),
          { id: "abort-incomplete-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 2 } },
        ]);
      },
    },
  });

  const objects = (...prefixes: string[]) => prefixes.map((p) => $interpolate`${bucket.arn}/${p}*`);

  // Linking the Bucket itself would grant s3:* on it; the control plane gets exactly what its routes need.
  // auth/keys/ is read-only for the API: keys made by `ganserve keys create` (run with the deployer's
  // credentials) are accepted, and no request can mint one.
  const readable = [...PREFIXES, authKeys.root];
  const link = new sst.Linkable("Storage", {
    properties: { name: bucket.name },
    include: [
      sst.aws.permission({ actions: ["s3:GetObject"], resources: objects(...readable) }),
      // datasets/: presigned browser uploads; jobs/: job records and cancel flags; models/: imported checkpoints;
      // predictions: the record, the full input and the idempotency claim of each prediction it creates.
      sst.aws.permission({
        actions: ["s3:PutObject"],
        resources: objects(datasetKeys.root, jobKeys.root, modelKeys.root, predictionKeys.root, predictionKeys.dataRoot, predictionKeys.stateRoot),
      }),
      // A finalized dataset's upload.zip, and the files of a re-finalized one.
      sst.aws.permission({ actions: ["s3:DeleteObject"], resources: objects(datasetKeys.root) }),
      sst.aws.permission({
        actions: ["s3:ListBucket"],
        resources: [bucket.arn],
        conditions: [{ test: "StringLike", variable: "s3:prefix", values: readable.map((p) => `${p}*`) }],
      }),
    ],
  });

  return { bucket, link, objects };
}
