// Offline proof of the AWS deployment: runs the real sst.config.ts (and infra/*.ts) under Pulumi mocks and
// checks the resource graph. Needs .sst/platform (`npm run sst:install`); no AWS account, Docker or Pulumi CLI.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authKeys, modelKeys, predictionKeys, STORAGE_PREFIXES } from "@ganserve/core/storage/keys";
import { runSstConfigUnderMocks, MOCK_GPU_AMI, type MockRun } from "../infra/mock-harness.ts";

const API_KEYS = "gk_test_secret_value_1,gk_test_secret_value_2";
const SECRET_KEY = "c2VjcmV0LWtleS1mb3ItdGhlLWluZnJhLXRlc3QtMDE=";
const GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id";
/** Object grants name the storage prefixes, auth/keys/ (read-only key records) or a narrower path under one. */
const OBJECT_PREFIXES: readonly string[] = [...STORAGE_PREFIXES, authKeys.root];

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
    expect(run.outputs.predictionQueue).toBe(one("aws:sqs/queue:Queue", "PredictionQueue").state.url);
    expect(run.outputs.jobQueue).toBe(one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn);
  });
});

describe("storage", () => {
  test("exactly one bucket", () => {
    expect(ofType("aws:s3/bucket:Bucket")).toHaveLength(1);
    expect(bucketArn).toBe(`arn:aws:s3:::${bucketName}`);
  });

  test("outputs/ expires after 7 days, prediction data after a day, and incomplete uploads are aborted", () => {
    const lc = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "DataLifecycle").inputs;
    expect(lc.bucket).toBe(bucketName);
    expect(lc.rules).toEqual([
      { id: "expire-outputs", status: "Enabled", filter: { prefix: "outputs/" }, expiration: { days: 7 } },
      { id: "expire-prediction-data", status: "Enabled", filter: { prefix: predictionKeys.dataRoot }, expiration: { days: 1 } },
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
    expect(userData).toContain("cat >> /etc/ecs/ecs.config <<'EOF'\n");
    expect(userData).toContain(`\nECS_CLUSTER=${one("aws:ecs/cluster:Cluster", "GpuCluster").state.name}\n`);
    expect(userData).toContain("\nECS_ENABLE_GPU_SUPPORT=true\n");
    // Warm-pool instances must not register with the cluster while they are being prepared and stopped.
    expect(userData).toContain("\nECS_WARM_POOLS_CHECK=true\n");
    // …and they pull the task's image at that first boot, so a warm start reads it from the local cache.
    const image = one("docker-build:index:Image", "InferenceImage").state.ref;
    expect(userData).toContain(`docker pull ${image}`);
    expect(userData).toContain("\nECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n");
    expect(lt.iamInstanceProfile.arn).toBe(one("aws:iam/instanceProfile:InstanceProfile", "GpuInstanceProfile").state.arn);
  });

  test("ASG + capacity provider with managed scaling, and a warm pool of 1 stopped instance reused on scale-in", () => {
    const asg = one("aws:autoscaling/group:Group", "GpuAsg").inputs;
    expect(asg).toMatchObject({ minSize: 0, maxSize: 5, protectFromScaleIn: true });
    expect(asg.warmPool).toEqual({ poolState: "Stopped", minSize: 1, maxGroupPreparedCapacity: 1, instanceReusePolicy: { reuseOnScaleIn: true } });
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

  test("task definition: EC2, awsvpc, one GPU, the worker on 0.0.0.0 with CUDA and no launcher, secret only from SSM", () => {
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
    expect(env.HOST).toBe("0.0.0.0");
    expect(env.GANSERVE_HOST).toBe("0.0.0.0");
    expect(env.GANSERVE_LAUNCHER).toBe("none");
    expect(env.GANSERVE_ORT_PROVIDERS.split(",")[0]).toBe("cuda");
    expect(env.GANSERVE_S3_REGION).toBe("us-east-1");
    expect(JSON.parse(env.SST_RESOURCE_App)).toEqual({ name: "ganserve", stage: "test" });
    expect(JSON.parse(env.SST_RESOURCE_Storage).name).toBe(bucketName);
    expect(JSON.parse(env.SST_RESOURCE_PredictionQueue).url).toBe(one("aws:sqs/queue:Queue", "PredictionQueue").state.url);
    // ECS replaces a task whose /ready fails; nothing else probes a worker.
    expect(c.healthCheck.command.join(" ")).toContain("/ready");
    const keyParam = one("aws:ssm/parameter:Parameter", "InferenceSecretKey");
    expect(c.secrets).toEqual([{ name: "SST_RESOURCE_SecretKey", valueFrom: keyParam.state.arn }]);
    expect(keyParam.inputs.type).toBe("SecureString");
    expect(JSON.parse(unwrapSecret(keyParam.inputs.value))).toEqual({ value: SECRET_KEY, type: "sst.sst.Secret" });
    expect(td.containerDefinitions).not.toContain(SECRET_KEY);
    // The worker answers no user request, so it never holds the API keys.
    expect(td.containerDefinitions).not.toContain("gk_test_secret_value");
    expect(run.byType("aws:ssm/parameter:Parameter").map((p) => p.name)).not.toContain("InferenceApiKeys");
  });

  test("image is built from containers/inference.Dockerfile and pushed to its own ECR repo", () => {
    const img = one("docker-build:index:Image", "InferenceImage").inputs;
    expect(img.dockerfile.location.replaceAll("\\", "/")).toMatch(/\/containers\/inference\.Dockerfile$/);
    expect(img.push).toBe(true);
    expect(img.platforms).toEqual(["linux/amd64"]);
    expect(img.tags).toEqual([`${one("aws:ecr/repository:Repository", "InferenceRepo").state.repositoryUrl}:test`]);
  });

  test("the service starts at 0 tasks on the GPU capacity provider, with no load balancer", () => {
    const svc = one("aws:ecs/service:Service", "InferenceService").inputs;
    expect(svc.desiredCount).toBe(0);
    expect(svc.capacityProviderStrategies).toEqual([{ capacityProvider: ofType("aws:ecs/capacityProvider:CapacityProvider")[0].state.name, weight: 1 }]);
    expect(svc.loadBalancers ?? []).toEqual([]);
    expect(svc.launchType).toBeUndefined();
    // Nothing connects to a worker.
    expect(one("aws:ec2/securityGroup:SecurityGroup", "InferenceTaskSg").inputs.ingress ?? []).toEqual([]);
  });
});

describe("prediction queue", () => {
  test("SQS queue with a dead-letter queue, long polling, and a visibility timeout that covers a long batch", () => {
    const q = one("aws:sqs/queue:Queue", "PredictionQueue");
    const dlq = one("aws:sqs/queue:Queue", "PredictionDlq");
    expect(q.inputs.receiveWaitTimeSeconds).toBe(20);
    expect(q.inputs.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(300);
    expect(json(q.inputs.redrivePolicy)).toEqual({ deadLetterTargetArn: dlq.state.arn, maxReceiveCount: 3 });
    expect(dlq.inputs.messageRetentionSeconds).toBeGreaterThan(q.inputs.messageRetentionSeconds);
    // The worker's env tells it the queue's visibility timeout, so it extends a message before it reappears.
    const [c] = json(one("aws:ecs/taskDefinition:TaskDefinition", "InferenceTask").inputs.containerDefinitions);
    const env = Object.fromEntries(c.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(Number(env.GANSERVE_QUEUE_VISIBILITY_S)).toBe(q.inputs.visibilityTimeoutSeconds);
  });

  test("the queue is touched hourly so SQS keeps publishing its metrics while no worker polls", () => {
    const s = one("aws:scheduler/schedule:Schedule", "PredictionQueueKeepAlive").inputs;
    expect(s.scheduleExpression).toBe("rate(1 hour)");
    expect(s.target.arn).toBe("arn:aws:scheduler:::aws-sdk:sqs:getQueueAttributes");
    expect(json(s.target.input).QueueUrl).toBe(one("aws:sqs/queue:Queue", "PredictionQueue").state.url);
  });

  test("the GPU service scales on queue depth: min 0, step policies on SQS metrics that exist at 0 tasks", () => {
    const target = one("aws:appautoscaling/target:Target", "InferenceScaling").inputs;
    expect(target).toMatchObject({ minCapacity: 0, maxCapacity: 4, scalableDimension: "ecs:service:DesiredCount", serviceNamespace: "ecs" });
    const queueName = one("aws:sqs/queue:Queue", "PredictionQueue").state.name;
    const alarms = ofType("aws:cloudwatch/metricAlarm:MetricAlarm");
    expect(alarms.map((a) => a.name).sort()).toEqual(["InferenceQueueBacklog", "InferenceQueueIdleAlarm"]);
    for (const a of alarms) {
      const metrics = a.inputs.metricQueries.filter((q: { metric?: unknown }) => q.metric);
      expect(metrics.map((q: { metric: { namespace: string; metricName: string; dimensions: unknown } }) => [q.metric.namespace, q.metric.metricName, q.metric.dimensions])).toEqual([
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: queueName }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", { QueueName: queueName }],
      ]);
      const [policy] = a.inputs.alarmActions;
      const p = ofType("aws:appautoscaling/policy:Policy").find((x) => x.state.arn === policy);
      expect(p?.inputs.policyType).toBe("StepScaling");
      expect(p?.inputs.stepScalingPolicyConfiguration.adjustmentType).toBe("ExactCapacity");
    }
    expect(ofType("aws:appautoscaling/policy:Policy").some((p) => p.inputs.policyType === "TargetTrackingScaling")).toBe(false);
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
const lambdaRole = () => ofType("aws:lambda/function:Function")[0].inputs.role.replace(/^arn:.*role\//, "");
const rolePerms = (role: string) =>
  statements()
    .filter((s) => s.role === role)
    .map(({ Action, Resource, Condition }) => ({ Action, Resource, ...(Condition ? { Condition } : {}) }));

// The only Resource "*" grants allowed: actions with no resource-level permissions in IAM.
const STAR_RESOURCE_ALLOWED = new Set(["ecr:GetAuthorizationToken", "batch:DescribeJobs"]);
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
      ["FineTuneExecutionRole", "FineTuneJobRole", "InferenceExecutionRole", "InferenceTaskRole", "PredictionQueueKeepAliveRole", lambdaRole()].sort(),
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

  // Which calls each role makes, and that every one is allowed and every grant used, is the rehearsal's
  // (test/rehearsal/iam.test.ts); this file only bans the shapes no call justifies.
  test("S3 object grants only under the bucket's known prefixes, never bucket-wide", () => {
    const s3 = statements().filter((s) => s.Action.some((a) => a.startsWith("s3:")));
    expect(s3.length).toBeGreaterThan(0);
    for (const s of s3) {
      expect(s.Action.every((a) => a.startsWith("s3:")), `${s.role}: mixed services`).toBe(true);
      for (const r of s.Resource) {
        if (r === bucketArn) expect(s.Action, `${s.role}: bucket-level`).toEqual(["s3:ListBucket"]);
        // The compiled graphs' pattern ends in ".onnx": IAM's "*" spans "/", and the suffix keeps it off other keys.
        else if (r === `${bucketArn}/${modelKeys.compiledPattern}`) expect(s.Action, `${s.role}: ${r}`).toEqual(["s3:PutObject"]);
        else expect(OBJECT_PREFIXES.some((p) => r.startsWith(`${bucketArn}/${p}`) && r.endsWith("*")), `${s.role}: ${r}`).toBe(true);
      }
    }
  });

  test("SQS: the Lambda only sends, the workers only receive, hold and delete, each on the prediction queue", () => {
    const queueArn = one("aws:sqs/queue:Queue", "PredictionQueue").state.arn;
    const sqs = statements().filter((s) => s.Action.some((a) => a.startsWith("sqs:")));
    for (const s of sqs) expect(s.Resource, s.role).toEqual([queueArn]);
    const byRole = Object.fromEntries(sqs.map((s) => [s.role, s.Action]));
    expect(byRole).toEqual({
      [lambdaRole()]: ["sqs:SendMessage"],
      InferenceTaskRole: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
      PredictionQueueKeepAliveRole: ["sqs:GetQueueAttributes"],
    });
  });

  test("managed policies are limited to the documented AWS ones", () => {
    const attached = [
      ...ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn),
      ...ofType("aws:iam/role:Role").flatMap((r) => r.inputs.managedPolicyArns ?? []),
    ];
    for (const arn of attached) expect(MANAGED_ALLOWED, arn).toContain(arn);
    expect(ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.role).sort()).toEqual(["FineTuneInstanceRole", "GpuInstanceRole"]);
  });

  test("the GPU task writes predictions and compiled graphs only: weights and model records stay read-only to it", () => {
    const puts = statements()
      .filter((s) => s.role === "InferenceTaskRole" && s.Action.includes("s3:PutObject"))
      .flatMap((s) => s.Resource.map((r) => r.slice(`${bucketArn}/`.length)));
    expect(puts.sort()).toEqual([modelKeys.compiledPattern, "predictions-data/*", "predictions-state/*", "predictions/*"].sort());
  });

  test("task roles are assumable by ECS tasks only", () => {
    for (const name of ["InferenceTaskRole", "InferenceExecutionRole", "FineTuneJobRole", "FineTuneExecutionRole"]) {
      const doc = json(one("aws:iam/role:Role", name).inputs.assumeRolePolicy);
      expect(doc.Statement.map((s: { Principal: unknown }) => s.Principal)).toEqual([{ Service: "ecs-tasks.amazonaws.com" }]);
    }
  });
});

describe("API Gateway", () => {
  test("every route goes to the Lambda: no request path ends at the GPU service (which rests at 0 tasks)", () => {
    const routes = ofType("aws:apigatewayv2/route:Route");
    const integrations = new Map(ofType("aws:apigatewayv2/integration:Integration").map((i) => [`integrations/${i.name}-id`, i.inputs]));
    expect(routes.map((r) => r.inputs.routeKey)).toEqual(["$default"]);
    for (const r of routes) {
      const target = integrations.get(r.inputs.target);
      expect(target, r.inputs.routeKey).toMatchObject({ integrationType: "AWS_PROXY" });
      expect(unwrapSecret(target.integrationUri)).toBe(ofType("aws:lambda/function:Function")[0].state.arn);
    }
    // No other way in: no VPC link, no load balancer, no target group, and the ECS service registers with none.
    for (const t of ["aws:apigatewayv2/vpcLink:VpcLink", "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener"]) {
      expect(ofType(t), t).toEqual([]);
    }
    for (const svc of ofType("aws:ecs/service:Service")) expect(svc.inputs.loadBalancers ?? [], svc.name).toEqual([]);
    expect(ofType("aws:lambda/functionUrl:FunctionUrl")).toEqual([]);
  });
});

describe("links (runtime contract with packages/functions)", () => {
  test("the API Lambda is built from the Hono handler with Storage, FineTune, PredictionQueue, ApiKeys and SecretKey linked", () => {
    const build = run.rpcCalls.filter((c) => c.method === "Runtime.Build");
    expect(build).toHaveLength(1);
    expect(build[0].args.handler).toBe("packages/functions/src/lambda.handler");
    const links = build[0].args.links;
    expect(Object.keys(links).sort()).toEqual(["ApiKeys", "FineTune", "PredictionQueue", "SecretKey", "Storage"]);
    const strip = ({ type, ...rest }: Record<string, unknown>) => {
      expect(type).toMatch(/sst\.sst\.(Linkable|Secret)$/);
      return rest;
    };
    expect(strip(links.Storage)).toEqual({ name: bucketName });
    expect(strip(links.FineTune)).toEqual({
      jobQueue: one("aws:batch/jobQueue:JobQueue", "FineTuneQueue").state.arn,
      jobDefinition: one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").state.arnPrefix,
    });
    expect(strip(links.PredictionQueue)).toEqual({ url: one("aws:sqs/queue:Queue", "PredictionQueue").state.url });
    // /docs reads swagger-ui-dist from disk at request time; SST ships it only when told to install it.
    expect(Object.keys(build[0].args.properties?.install ?? {})).toContain("swagger-ui-dist");
    expect(strip(links.ApiKeys)).toEqual({ value: API_KEYS });
    expect(strip(links.SecretKey)).toEqual({ value: SECRET_KEY });
  });

  test("the Lambda runs Node 22 with SST link markers", () => {
    const fn = ofType("aws:lambda/function:Function")[0].inputs;
    expect(fn.runtime).toBe("nodejs22.x");
    expect(fn.timeout).toBe(29);
    expect(JSON.parse(fn.environment.variables.SST_RESOURCE_App)).toEqual({ name: "ganserve", stage: "test" });
    expect(fn.environment.variables.SST_KEY_FILE).toBe("resource.enc");
    // Links arrive in resource.enc, never as env: core's config reads them through SST's Resource.
    expect(Object.keys(fn.environment.variables).filter((k) => k.startsWith("SST_RESOURCE_"))).toEqual(["SST_RESOURCE_App"]);
    expect(fn.environment.variables.GANSERVE_LAUNCHER).toBe("batch");
  });

  test("sst dev runs the local stack through a DevCommand", () => {
    expect(ofType("sst:sst:DevCommand").map((r) => r.name)).toEqual(["Local"]);
  });
});
