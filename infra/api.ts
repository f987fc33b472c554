// Control plane + public entry point: one HTTP API whose every route goes to the Hono app on Lambda. The
// data plane is a queue, not a route: POST /v1/predictions (and /v1/generate, /v1/translate, which create a
// prediction and wait) enqueue for the GPU workers and answer from the prediction record. So no request path
// ends at the GPU service, and a fleet at 0 tasks makes a prediction wait (`starting`), never a 503.

import { API_LAMBDA_ENV } from "./config";

interface Args {
  region: string;
  storage: sst.Linkable<Record<string, unknown>>;
  fineTune: sst.Linkable<Record<string, unknown>>;
  predictionQueue: sst.Linkable<Record<string, unknown>>;
  apiKeys: sst.Secret;
  secretKey: sst.Secret;
}

export function api({ region, storage, fineTune, predictionQueue, apiKeys, secretKey }: Args) {
  const api = new sst.aws.ApiGatewayV2("Api", { accessLog: { retention: "1 month" } });

  api.route("$default", {
    handler: "packages/functions/src/lambda.handler",
    runtime: "nodejs22.x",
    architecture: "x86_64",
    memory: "1024 MB",
    // API Gateway HTTP APIs give up on an integration after 30 s; `Prefer: wait` is clamped below that.
    timeout: "29 seconds",
    link: [storage, fineTune, predictionQueue, apiKeys, secretKey],
    // /docs serves swagger-ui-dist's files from disk; SST bundles code, so the package must ship beside it.
    nodejs: { install: ["swagger-ui-dist"] },
    environment: { ...API_LAMBDA_ENV, GANSERVE_S3_REGION: region },
  });

  return { api, url: api.url };
}
