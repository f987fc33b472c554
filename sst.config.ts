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
    const cfg = loadConfig(process.env, { dev: $dev });

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

    const inference = await (await import("./infra/inference")).inference({ cfg, vpc, bucket, objects, storage, apiKeys, secretKey });
    const ft = await (await import("./infra/finetune")).fineTune({ cfg, vpc, bucket, objects, storage, secretKey });
    const { url, generator } = (await import("./infra/api")).api({ region: cfg.region, vpc, storage, fineTune: ft.link, apiKeys, secretKey, inference });

    // `sst dev`: the API and worker run locally (CPU/wasm backend) with the deployed resources linked in.
    new sst.x.DevCommand("Local", {
      link: [storage, ft.link, generator, apiKeys, secretKey],
      dev: { command: "npm start", title: "ganserve (local data plane + worker)", autostart: true },
    });

    return {
      api: url,
      bucket: bucket.name,
      generatorUrl: inference.internalUrl,
      jobQueue: ft.queue.arn,
    };
  },
});
