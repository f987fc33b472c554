// Offline proof of the AWS deployment: runs the real sst.config.ts (and infra/*.ts) under Pulumi mocks and
// checks the resource graph. Needs .sst/platform (`npm run sst:install`); no AWS account, Docker or Pulumi CLI.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { STORAGE_PREFIXES } from "@ganserve/core/storage/keys";
import { runSstConfigUnderMocks, MOCK_ACCOUNT, MOCK_GPU_AMI, type MockRun } from "../infra/mock-harness.ts";

const API_KEYS = "gk_test_secret_value_1,gk_test_secret_value_2";
const SECRET_KEY = "c2VjcmV0LWtleS1mb3ItdGhlLWluZnJhLXRlc3QtMDE=";
const GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id";
const PREFIXES: readonly string[] = STORAGE_PREFIXES;

let run: MockRun;
let bucketArn: string;
let bucketName: string;

beforeAll(async () => {
  run = await runSstConfigUnderMocks({ env: { SST_SECRET_ApiKeys: API_KEYS, SST_SECRET_SecretKey: SECRET_KEY } });
  const bucket = run.one("aws:s3/bucket:Bucket", "DataBucket");
  bucketArn = bucket.state.arn;
  bucketName = bucket.state.bucket;
}, 180_000);
afterAll(async () => run?.close());

const json = (s: unknown) => (typeof s === "string" ? JSON.parse(s) : s);
const ofType = (t: string) => run.byType(t);
const one = (t: string, name: string) => run.one(t, name);
const unwrapSecret = (v: unknown): string => String(v && typeof v === "object" && "value" in v ? v.value : v);

describe("app", () => {
  test("production stages retain and protect data; other stages are removable", () => {
    for (const stage of ["production", "prod"]) {
      const app = run.config.app({ stage });
      expect(app).toMatchObject({ name: "ganserve", home: "aws", removal: "retain", protect: true });
    }
    expect(run.config.app({ stage: "pr-42" })).toMatchObject({ name: "ganserve", home: "aws", removal: "remove", protect: false });
  });

  test("stack outputs", () => {
    expect(run.outputs.api).toBe("https://apiapi.execute-api.us-east-1.amazonaws.com");
    expect(run.outputs.bucket).toBe(bucketName);
    expect(run.outputs.generatorUrl).toBe(`http://${one("aws:lb/loadBalancer:LoadBalancer", "InferenceAlb").state.dnsName}`);
    expect(run.outputs.jobQueue).toBe(one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn);
  });
});

describe("storage", () => {
  test("exactly one bucket", () => {
    expect(ofType("aws:s3/bucket:Bucket")).toHaveLength(1);
    expect(bucketArn).toBe(`arn:aws:s3:::${bucketName}`);
  });

  test("outputs/ expires after 7 days and incomplete uploads are aborted", () => {
    const lc = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "DataLifecycle").inputs;
    expect(lc.bucket).toBe(bucketName);
    expect(lc.rules).toEqual([
      { id: "expire-outputs", status: "Enabled", filter: { prefix: "outputs/" }, expiration: { days: 7 } },
      { id: "abort-incomplete-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 2 } },
    ]);
  });

  test("CORS allows presigned browser POST uploads and GET, and exposes ETag", () => {
    const cors = one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration", "DataCors").inputs;
    expect(cors.corsRules).toEqual([
      { allowedHeaders: ["*"], allowedMethods: ["GET", "HEAD", "POST"], allowedOrigins: ["*"], exposeHeaders: ["ETag"], maxAgeSeconds: 3600 },
    ]);
  });

  test("public access stays blocked", () => {
    const pab = one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "DataPublicAccessBlock").inputs;
    expect(pab).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
  });
});

describe("GPU inference (ECS on EC2)", () => {
  test("launch template: g5.xlarge with the AL2023 GPU AMI from SSM, joined to the cluster", () => {
    const getParam = run.calls.filter((c) => c.token === "aws:ssm/getParameter:getParameter");
    expect(getParam.map((c) => c.inputs.name)).toEqual([GPU_AMI_PARAMETER]);
    const lt = one("aws:ec2/launchTemplate:LaunchTemplate", "GpuLaunchTemplate").inputs;
    expect(lt.instanceType).toMatch(/^g[56]\./);
    expect(lt.instanceType).toBe("g5.xlarge");
    expect(lt.imageId).toBe(MOCK_GPU_AMI);
    expect(lt.metadataOptions.httpTokens).toBe("required");
    const userData = Buffer.from(lt.userData, "base64").toString("utf8");
    expect(userData).toContain(`echo ECS_CLUSTER=${one("aws:ecs/cluster:Cluster", "GpuCluster").state.name} >> /etc/ecs/ecs.config\n`);
    expect(userData).toContain("ECS_ENABLE_GPU_SUPPORT=true");
    expect(lt.iamInstanceProfile.arn).toBe(one("aws:iam/instanceProfile:InstanceProfile", "GpuInstanceProfile").state.arn);
  });

  test("ASG + capacity provider with managed scaling", () => {
    const asg = one("aws:autoscaling/group:Group", "GpuAsg").inputs;
    expect(asg).toMatchObject({ minSize: 0, maxSize: 5, protectFromScaleIn: true });
    expect(asg.launchTemplate).toEqual({ id: "GpuLaunchTemplate-id", version: "$Latest" });
    expect(asg.vpcZoneIdentifiers).toEqual(["VpcPrivateSubnet1-id", "VpcPrivateSubnet2-id"]);
    expect(asg.tags).toContainEqual({ key: "AmazonECSManaged", value: "true", propagateAtLaunch: true });
    const cps = ofType("aws:ecs/capacityProvider:CapacityProvider");
    expect(cps).toHaveLength(1);
    expect(cps[0].inputs.autoScalingGroupProvider).toMatchObject({
      autoScalingGroupArn: one("aws:autoscaling/group:Group", "GpuAsg").state.arn,
      managedTerminationProtection: "ENABLED",
      managedScaling: { status: "ENABLED", targetCapacity: 100 },
    });
    const ccp = one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "GpuClusterCapacity").inputs;
    expect(ccp.capacityProviders).toEqual([cps[0].state.name]);
  });

  test("task definition: EC2, awsvpc, one GPU, port 8080, digest-pinned image, keys only as an SSM secret", () => {
    const td = one("aws:ecs/taskDefinition:TaskDefinition", "InferenceTask").inputs;
    expect(td.requiresCompatibilities).toEqual(["EC2"]);
    expect(td.networkMode).toBe("awsvpc");
    expect(td.taskRoleArn).toBe(one("aws:iam/role:Role", "InferenceTaskRole").state.arn);
    expect(td.executionRoleArn).toBe(one("aws:iam/role:Role", "InferenceExecutionRole").state.arn);
    const defs = json(td.containerDefinitions);
    expect(defs).toHaveLength(1);
    const [c] = defs;
    expect(c.resourceRequirements).toEqual([{ type: "GPU", value: "1" }]);
    expect(c.portMappings).toEqual([{ containerPort: 8080, protocol: "tcp" }]);
    expect(c.image).toBe(one("docker-build:index:Image", "InferenceImage").state.ref);
    expect(c.image).toMatch(/^\d+\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/[a-z0-9-]+@sha256:[0-9a-f]{64}$/);
    const env = Object.fromEntries(c.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env.PORT).toBe("8080");
    expect(env.GANSERVE_S3_REGION).toBe("us-east-1");
    expect(Number(env.GANSERVE_REQUEST_TIMEOUT_MS)).toBeLessThan(30_000);
    expect(JSON.parse(env.SST_RESOURCE_App)).toEqual({ name: "ganserve", stage: "test" });
    expect(JSON.parse(env.SST_RESOURCE_Storage).name).toBe(bucketName);
    const param = one("aws:ssm/parameter:Parameter", "InferenceApiKeys");
    const keyParam = one("aws:ssm/parameter:Parameter", "InferenceSecretKey");
    expect(c.secrets).toEqual([
      { name: "SST_RESOURCE_ApiKeys", valueFrom: param.state.arn },
      { name: "SST_RESOURCE_SecretKey", valueFrom: keyParam.state.arn },
    ]);
    expect(keyParam.inputs.type).toBe("SecureString");
    expect(JSON.parse(unwrapSecret(keyParam.inputs.value))).toEqual({ value: SECRET_KEY, type: "sst.sst.Secret" });
    expect(td.containerDefinitions).not.toContain(SECRET_KEY);
    expect(param.inputs.type).toBe("SecureString");
    expect(JSON.parse(unwrapSecret(param.inputs.value))).toEqual({ value: API_KEYS, type: "sst.sst.Secret" });
    expect(td.containerDefinitions).not.toContain("gk_test_secret_value");
  });

  test("image is built from containers/inference.Dockerfile and pushed to its own ECR repo", () => {
    const img = one("docker-build:index:Image", "InferenceImage").inputs;
    expect(img.dockerfile.location.replaceAll("\\", "/")).toMatch(/\/containers\/inference\.Dockerfile$/);
    expect(img.push).toBe(true);
    expect(img.platforms).toEqual(["linux/amd64"]);
    expect(img.tags).toEqual([`${one("aws:ecr/repository:Repository", "InferenceRepo").state.repositoryUrl}:test`]);
  });

  test("internal ALB with /ready health checks on the task port", () => {
    const alb = one("aws:lb/loadBalancer:LoadBalancer", "InferenceAlb").inputs;
    expect(alb).toMatchObject({ internal: true, loadBalancerType: "application" });
    const tg = one("aws:lb/targetGroup:TargetGroup", "InferenceTargets").inputs;
    expect(tg).toMatchObject({ port: 8080, protocol: "HTTP", targetType: "ip" });
    expect(tg.healthCheck.path).toBe("/ready");
    expect(tg.healthCheck.matcher).toBe("200");
    const listener = one("aws:lb/listener:Listener", "InferenceListener").inputs;
    expect(listener.defaultActions).toEqual([{ type: "forward", targetGroupArn: one("aws:lb/targetGroup:TargetGroup", "InferenceTargets").state.arn }]);
  });

  test("service runs on the GPU capacity provider behind the target group", () => {
    const svc = one("aws:ecs/service:Service", "InferenceService").inputs;
    expect(svc.desiredCount).toBe(1);
    expect(svc.capacityProviderStrategies).toEqual([{ capacityProvider: ofType("aws:ecs/capacityProvider:CapacityProvider")[0].state.name, weight: 1 }]);
    expect(svc.loadBalancers).toEqual([
      { targetGroupArn: one("aws:lb/targetGroup:TargetGroup", "InferenceTargets").state.arn, containerName: "inference", containerPort: 8080 },
    ]);
    expect(svc.launchType).toBeUndefined();
  });

  test("target tracking on ALBRequestCountPerTarget, min 1 / max 4 by default", () => {
    const target = one("aws:appautoscaling/target:Target", "InferenceScaling").inputs;
    expect(target).toMatchObject({ minCapacity: 1, maxCapacity: 4, scalableDimension: "ecs:service:DesiredCount", serviceNamespace: "ecs" });
    const policies = ofType("aws:appautoscaling/policy:Policy");
    expect(policies.map((p) => p.name)).toEqual(["InferenceRequestsPerTarget"]);
    const p = policies[0].inputs;
    expect(p.policyType).toBe("TargetTrackingScaling");
    expect(p.targetTrackingScalingPolicyConfiguration).toMatchObject({
      targetValue: 120,
      predefinedMetricSpecification: {
        predefinedMetricType: "ALBRequestCountPerTarget",
        resourceLabel: `${one("aws:lb/loadBalancer:LoadBalancer", "InferenceAlb").state.arnSuffix}/${one("aws:lb/targetGroup:TargetGroup", "InferenceTargets").state.arnSuffix}`,
      },
    });
    expect(ofType("aws:cloudwatch/metricAlarm:MetricAlarm")).toHaveLength(0);
  });
});

describe("fine-tune (AWS Batch)", () => {
  test("compute environment: g5 only, ECS_AL2023_NVIDIA, scales to zero", () => {
    const ces = ofType("aws:batch/computeEnvironment:ComputeEnvironment");
    expect(ces).toHaveLength(1);
    const cr = ces[0].inputs.computeResources;
    expect(cr.instanceTypes.length).toBeGreaterThan(0);
    for (const t of cr.instanceTypes) expect(t).toMatch(/^g[56]\./);
    expect(cr.instanceTypes).toEqual(["g5.xlarge", "g5.2xlarge"]);
    expect(cr.ec2Configurations).toEqual([{ imageType: "ECS_AL2023_NVIDIA" }]);
    expect(cr.minVcpus).toBe(0);
    expect(cr.maxVcpus).toBe(16);
    expect(cr.type).toBe("EC2");
    expect(cr.instanceRole).toBe(one("aws:iam/instanceProfile:InstanceProfile", "FineTuneInstanceProfile").state.arn);
    expect(cr.subnets).toEqual(["VpcPrivateSubnet1-id", "VpcPrivateSubnet2-id"]);
    expect(ces[0].inputs.type).toBe("MANAGED");
  });

  test("queue feeds the compute environment", () => {
    const q = one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").inputs;
    expect(q).toMatchObject({ state: "ENABLED", priority: 1 });
    expect(q.computeEnvironmentOrders).toEqual([{ order: 1, computeEnvironment: ofType("aws:batch/computeEnvironment:ComputeEnvironment")[0].state.arn }]);
  });

  test("job definition: one GPU, fine-tune image, scoped job role", () => {
    const jd = one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").inputs;
    expect(jd.type).toBe("container");
    expect(jd.platformCapabilities).toEqual(["EC2"]);
    const props = json(jd.containerProperties);
    const gpu = props.resourceRequirements.find((r: { type: string }) => r.type === "GPU");
    expect(Number(gpu.value)).toBeGreaterThanOrEqual(1);
    expect(props.resourceRequirements).toEqual([
      { type: "GPU", value: "1" },
      { type: "VCPU", value: "4" },
      { type: "MEMORY", value: "14336" },
    ]);
    expect(props.image).toBe(one("docker-build:index:Image", "FineTuneImage").state.ref);
    expect(one("docker-build:index:Image", "FineTuneImage").inputs.dockerfile.location.replaceAll("\\", "/")).toMatch(/\/containers\/finetune\.Dockerfile$/);
    expect(props.jobRoleArn).toBe(one("aws:iam/role:Role", "FineTuneJobRole").state.arn);
    const env = Object.fromEntries(props.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(JSON.parse(env.SST_RESOURCE_Storage).name).toBe(bucketName);
    expect(env.GANSERVE_S3_REGION).toBe("us-east-1");
    // The worker opens sealed webhook secrets: the key comes from SSM at start, never in the definition.
    const keyParam = one("aws:ssm/parameter:Parameter", "FineTuneSecretKey");
    expect(keyParam.inputs.type).toBe("SecureString");
    expect(JSON.parse(unwrapSecret(keyParam.inputs.value))).toEqual({ value: SECRET_KEY, type: "sst.sst.Secret" });
    expect(props.secrets).toEqual([{ name: "SST_RESOURCE_SecretKey", valueFrom: keyParam.state.arn }]);
    expect(props.executionRoleArn).toBe(one("aws:iam/role:Role", "FineTuneExecutionRole").state.arn);
    expect(rolePerms("FineTuneExecutionRole")).toContainEqual({ Action: ["ssm:GetParameters"], Resource: [keyParam.state.arn] });
    expect(jd.containerProperties).not.toContain(SECRET_KEY);
  });
});

// ---- IAM -------------------------------------------------------------------------------------------------
interface Stmt {
  role: string;
  Effect: string;
  Action: string[];
  Resource: string[];
  Condition?: { StringLike?: Record<string, string | string[]> };
}
const arr = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function statements(): Stmt[] {
  const out: Stmt[] = [];
  const add = (role: string, doc: unknown) => {
    for (const s of json(doc).Statement) out.push({ role, Effect: s.Effect, Action: arr(s.Action), Resource: arr(s.Resource), Condition: s.Condition });
  };
  for (const rp of ofType("aws:iam/rolePolicy:RolePolicy")) add(String(rp.inputs.role).replace(/-id$/, ""), rp.inputs.policy);
  for (const r of ofType("aws:iam/role:Role")) for (const ip of r.inputs.inlinePolicies ?? []) add(r.name, ip.policy);
  return out;
}
const rolePerms = (role: string) =>
  statements()
    .filter((s) => s.role === role)
    .map(({ Action, Resource, Condition }) => ({ Action, Resource, ...(Condition ? { Condition } : {}) }));

// The only Resource "*" grants allowed: actions with no resource-level permissions in IAM.
const STAR_RESOURCE_ALLOWED = new Set(["ecr:GetAuthorizationToken"]);
// AWS-managed policies attached on purpose (the ECS agent on GPU hosts; SST's Lambda logging; SSM on the NAT instance).
const MANAGED_ALLOWED = new Set([
  "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
  "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
  "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
]);

describe("IAM least privilege", () => {
  test("policies were collected from every role that has inline permissions", () => {
    const roles = new Set(statements().map((s) => s.role));
    expect([...roles].sort()).toEqual(
      ["FineTuneExecutionRole", "FineTuneJobRole", "InferenceExecutionRole", "InferenceTaskRole", ofType("aws:lambda/function:Function")[0].inputs.role.replace(/^arn:.*role\//, "")].sort(),
    );
  });

  test("no wildcard actions, no s3:*, no Resource '*' except where AWS requires it", () => {
    for (const s of statements()) {
      expect(s.Effect).toBe("Allow");
      for (const a of s.Action) {
        expect(a, `${s.role}: ${a}`).not.toBe("*");
        expect(a, `${s.role}: ${a}`).not.toMatch(/\*$/);
      }
      if (s.Resource.includes("*")) {
        expect(s.Action.every((a) => STAR_RESOURCE_ALLOWED.has(a)), `${s.role}: ${s.Action} on *`).toBe(true);
        expect(s.Resource).toEqual(["*"]);
      }
    }
  });

  test("S3 actions only on the bucket's known prefixes (ListBucket only with a prefix condition)", () => {
    const s3 = statements().filter((s) => s.Action.some((a) => a.startsWith("s3:")));
    expect(s3.length).toBeGreaterThan(0);
    for (const s of s3) {
      if (s.Action.includes("s3:ListBucket")) {
        expect(s.Action).toEqual(["s3:ListBucket"]);
        expect(s.Resource).toEqual([bucketArn]);
        const prefixes = arr(s.Condition?.StringLike?.["s3:prefix"]);
        expect(prefixes.length).toBeGreaterThan(0);
        for (const p of prefixes) expect(PREFIXES.map((x) => `${x}*`)).toContain(p);
      } else {
        for (const r of s.Resource) expect(PREFIXES.map((p) => `${bucketArn}/${p}*`), `${s.role}: ${r}`).toContain(r);
      }
    }
  });

  test("batch:SubmitJob only on the fine-tune queue and job definition", () => {
    const submit = statements().filter((s) => s.Action.some((a) => a.startsWith("batch:")));
    expect(submit).toHaveLength(1);
    expect(submit[0].Action).toEqual(["batch:SubmitJob"]);
    expect(submit[0].Resource).toEqual([
      one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn,
      one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").state.arn,
    ]);
    expect(submit[0].Resource[1]).toMatch(new RegExp(`^arn:aws:batch:us-east-1:${MOCK_ACCOUNT}:job-definition/ganserve-test-finetune:1$`));
  });

  test("fine-tune job role: read datasets/ models/ jobs/, write jobs/ models/", () => {
    const o = (p: string) => `${bucketArn}/${p}*`;
    expect(rolePerms("FineTuneJobRole")).toEqual([
      { Action: ["s3:GetObject"], Resource: [o("datasets/"), o("models/"), o("jobs/")] },
      { Action: ["s3:PutObject"], Resource: [o("jobs/"), o("models/")] },
      { Action: ["s3:ListBucket"], Resource: [bucketArn], Condition: { StringLike: { "s3:prefix": ["datasets/*", "models/*", "jobs/*"] } } },
    ]);
  });

  test("inference task role: read models/, read+write outputs/", () => {
    const o = (p: string) => `${bucketArn}/${p}*`;
    expect(rolePerms("InferenceTaskRole")).toEqual([
      { Action: ["s3:GetObject"], Resource: [o("models/"), o("outputs/")] },
      { Action: ["s3:PutObject"], Resource: [o("outputs/")] },
      { Action: ["s3:ListBucket"], Resource: [bucketArn], Condition: { StringLike: { "s3:prefix": ["models/*"] } } },
    ]);
  });

  test("API Lambda role: exactly the Storage and FineTune link permissions (never the bucket's s3:*)", () => {
    const fnRole = ofType("aws:lambda/function:Function")[0].inputs.role.replace(/^arn:.*role\//, "");
    const o = (p: string) => `${bucketArn}/${p}*`;
    expect(rolePerms(fnRole)).toEqual([
      { Action: ["s3:GetObject"], Resource: PREFIXES.map(o) },
      { Action: ["s3:PutObject"], Resource: [o("datasets/"), o("jobs/"), o("models/")] },
      { Action: ["s3:ListBucket"], Resource: [bucketArn], Condition: { StringLike: { "s3:prefix": PREFIXES.map((p) => `${p}*`) } } },
      {
        Action: ["batch:SubmitJob"],
        Resource: [one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn, one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").state.arn],
      },
    ]);
  });

  test("managed policies are limited to the documented AWS ones", () => {
    const attached = [
      ...ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn),
      ...ofType("aws:iam/role:Role").flatMap((r) => r.inputs.managedPolicyArns ?? []),
    ];
    for (const arn of attached) expect(MANAGED_ALLOWED, arn).toContain(arn);
    expect(ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.role).sort()).toEqual(["FineTuneInstanceRole", "GpuInstanceRole"]);
  });

  test("task roles are assumable by ECS tasks only", () => {
    for (const name of ["InferenceTaskRole", "InferenceExecutionRole", "FineTuneJobRole", "FineTuneExecutionRole"]) {
      const doc = json(one("aws:iam/role:Role", name).inputs.assumeRolePolicy);
      expect(doc.Statement.map((s: { Principal: unknown }) => s.Principal)).toEqual([{ Service: "ecs-tasks.amazonaws.com" }]);
    }
  });
});

describe("API Gateway", () => {
  test("VPC link in the private subnets", () => {
    const links = ofType("aws:apigatewayv2/vpcLink:VpcLink");
    expect(links).toHaveLength(1);
    expect(links[0].inputs.subnetIds).toEqual(["VpcPrivateSubnet1-id", "VpcPrivateSubnet2-id"]);
    expect(links[0].inputs.securityGroupIds).toEqual(["ApiVpcLinkSg-id"]);
    // The ALB accepts traffic from the VPC link's security group only.
    const albSg = one("aws:ec2/securityGroup:SecurityGroup", "InferenceAlbSg").inputs;
    expect(albSg.ingress).toEqual([{ protocol: "tcp", fromPort: 80, toPort: 80, securityGroups: ["ApiVpcLinkSg-id"] }]);
  });

  test("/v1/generate* and /v1/translate go to the ALB listener through the VPC link; the rest to Lambda", () => {
    const routes = ofType("aws:apigatewayv2/route:Route");
    const integrations = new Map(ofType("aws:apigatewayv2/integration:Integration").map((i) => [`integrations/${i.name}-id`, i.inputs]));
    const byKey = Object.fromEntries(routes.map((r) => [r.inputs.routeKey, integrations.get(r.inputs.target)]));
    expect(Object.keys(byKey).sort()).toEqual(["$default", "ANY /v1/generate", "ANY /v1/generate/{proxy+}", "ANY /v1/translate"]);
    const listenerArn = one("aws:lb/listener:Listener", "InferenceListener").state.arn;
    for (const key of ["ANY /v1/generate", "ANY /v1/generate/{proxy+}", "ANY /v1/translate"]) {
      expect(byKey[key], key).toMatchObject({
        connectionType: "VPC_LINK",
        connectionId: "ApiVpcLink-id",
        integrationType: "HTTP_PROXY",
        integrationUri: listenerArn,
      });
    }
    expect(byKey.$default).toMatchObject({ integrationType: "AWS_PROXY" });
    expect(unwrapSecret(byKey.$default.integrationUri)).toBe(ofType("aws:lambda/function:Function")[0].state.arn);
  });
});

describe("links (runtime contract with packages/functions)", () => {
  test("the API Lambda is built from the Hono handler with Storage, FineTune, Generator, ApiKeys and SecretKey linked", () => {
    const build = run.rpcCalls.filter((c) => c.method === "Runtime.Build");
    expect(build).toHaveLength(1);
    expect(build[0].args.handler).toBe("packages/functions/src/lambda.handler");
    const links = build[0].args.links;
    expect(Object.keys(links).sort()).toEqual(["ApiKeys", "FineTune", "Generator", "SecretKey", "Storage"]);
    const strip = ({ type, ...rest }: Record<string, unknown>) => {
      expect(type).toMatch(/sst\.sst\.(Linkable|Secret)$/);
      return rest;
    };
    expect(strip(links.Storage)).toEqual({ name: bucketName });
    expect(strip(links.FineTune)).toEqual({
      jobQueue: one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn,
      jobDefinition: one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").state.arn,
    });
    expect(strip(links.Generator)).toEqual({
      url: run.outputs.api,
      internalUrl: `http://${one("aws:lb/loadBalancer:LoadBalancer", "InferenceAlb").state.dnsName}`,
    });
    expect(strip(links.ApiKeys)).toEqual({ value: API_KEYS });
    expect(strip(links.SecretKey)).toEqual({ value: SECRET_KEY });
  });

  test("the Lambda runs Node 22 with SST link markers", () => {
    const fn = ofType("aws:lambda/function:Function")[0].inputs;
    expect(fn.runtime).toBe("nodejs22.x");
    expect(fn.timeout).toBe(29);
    expect(JSON.parse(fn.environment.variables.SST_RESOURCE_App)).toEqual({ name: "ganserve", stage: "test" });
    expect(fn.environment.variables.SST_KEY_FILE).toBe("resource.enc");
  });

  test("sst dev runs the local stack through a DevCommand", () => {
    expect(ofType("sst:sst:DevCommand").map((r) => r.name)).toEqual(["Local"]);
  });
});
