// Control plane + public entry point. One HTTP API serves everything under one domain:
// /v1/generate* and /v1/translate go through a VPC link to the internal inference ALB (GPU), every other
// path goes to the Hono app on Lambda.

/** Data-plane routes; the GPU container serves exactly these, the Lambda serves the rest. */
export const DATA_PLANE_ROUTES = ["ANY /v1/generate", "ANY /v1/generate/{proxy+}", "ANY /v1/translate"] as const;

interface Args {
  region: string;
  vpc: sst.aws.Vpc;
  storage: sst.Linkable<Record<string, unknown>>;
  fineTune: sst.Linkable<Record<string, unknown>>;
  apiKeys: sst.Secret;
  secretKey: sst.Secret;
  inference: { listener: aws.lb.Listener; internalUrl: $util.Output<string>; vpcLinkSg: aws.ec2.SecurityGroup };
}

export function api({ region, vpc, storage, fineTune, apiKeys, secretKey, inference }: Args) {
  const api = new sst.aws.ApiGatewayV2("Api", {
    // The VPC link lives in the private subnets next to the internal ALB; its security group is the only
    // source the ALB accepts.
    vpc: { securityGroups: [inference.vpcLinkSg.id], subnets: vpc.privateSubnets },
    accessLog: { retention: "1 month" },
  });

  // HTTP API private integrations must target the ALB *listener* ARN, not the load balancer's.
  for (const route of DATA_PLANE_ROUTES) api.routePrivate(route, inference.listener.arn);

  // Lambda is outside the VPC, so it reaches the data plane through the public API URL; internalUrl is for
  // callers inside the VPC.
  const generator = new sst.Linkable("Generator", {
    properties: { url: api.url, internalUrl: inference.internalUrl },
  });

  api.route("$default", {
    handler: "packages/functions/src/lambda.handler",
    runtime: "nodejs22.x",
    architecture: "x86_64",
    memory: "1024 MB",
    // API Gateway HTTP APIs give up on an integration after 30 s.
    timeout: "29 seconds",
    link: [storage, fineTune, generator, apiKeys, secretKey],
    environment: { NODE_ENV: "production", GANSERVE_S3_REGION: region, GANSERVE_DATA_DIR: "/tmp/ganserve" },
  });

  return { api, generator, url: api.url };
}
