/// <reference path="./.sst/platform/config.d.ts" />

// ganserve on AWS. The layout and the reasons behind it are in docs/deploy.md; the offline proof is
// test/infra.test.ts (the whole program under Pulumi mocks).

export default $config({
  app(input) {
    const production = input?.stage === "production" || input?.stage === "prod";
    return {
      name: "ganserve",
      home: "aws",
      // A production teardown must not delete user datasets and trained models.
      removal: production ? "retain" : "remove",
      protect: production,
      providers: { aws: { region: process.env.GANSERVE_AWS_REGION || "us-east-1" } },
    };
  },
  async run() {
    const { loadConfig } = await import("./infra/config");
    const cfg = loadConfig(process.env);

    const apiKeys = new sst.Secret("ApiKeys");
    // GANSERVE_SECRET_KEY: seals webhook secrets at rest (base64 of 32 bytes: `openssl rand -base64 32`).
    const secretKey = new sst.Secret("SecretKey");
    const { bucket, link: storage, objects } = (await import("./infra/storage")).storage(cfg);

    const vpc = new sst.aws.Vpc("Vpc", { az: 2, nat: cfg.network.nat });
    // S3 traffic (datasets, checkpoints, and the ECR image layers) bypasses the NAT: free and faster.
    new aws.ec2.VpcEndpoint("S3Endpoint", {
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${cfg.region}.s3`,
      vpcEndpointType: "Gateway",
      routeTableIds: vpc.nodes.privateRouteTables.apply((tables) => tables.map((t) => t.id)),
    });

    const queue = (await import("./infra/queue")).predictionQueue(cfg);
    await (await import("./infra/inference")).inference({ cfg, vpc, bucket, objects, storage, queue, secretKey });
    const ft = await (await import("./infra/finetune")).fineTune({ cfg, vpc, bucket, objects, storage, secretKey });
    const { url } = (await import("./infra/api")).api({
      region: cfg.region,
      storage,
      fineTune: ft.link,
      predictionQueue: queue.link,
      apiKeys,
      secretKey,
    });

    // `sst dev`: the API, the prediction worker and fine-tunes run locally (CPU/wasm backend, in-process queue
    // and local launcher) against the deployed bucket. The FineTune and PredictionQueue links stay out, so a
    // dev session never submits billed Batch jobs or feeds the deployed GPU fleet.
    new sst.x.DevCommand("Local", {
      link: [storage, apiKeys, secretKey],
      environment: { GANSERVE_LAUNCHER: "local" },
      dev: { command: "npm start", title: "ganserve (local API + workers)", autostart: true },
    });

    return {
      api: url,
      bucket: bucket.name,
      predictionQueue: queue.queue.url,
      jobQueue: ft.queue.arn,
    };
  },
});
