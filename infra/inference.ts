import { modelKeys, predictionKeys } from "../packages/core/src/storage/keys";
import { ECS_GPU_AMI_PARAMETER, GPU_WORKER_ENV, INFERENCE_PORT, type InfraConfig } from "./config";
import { containerImage } from "./images";
import { ecsInstanceProfile, executionRole, secretParameter, serviceRole } from "./iam";
import { queueScaling } from "./scaling";

// GPU data plane: prediction workers on ECS with EC2 GPU capacity. They receive no traffic from users: they
// pull predictions from the SQS queue (infra/queue.ts), batch them and write the results to the bucket; the
// API Lambda answers clients from those records. The service scales on the queue's depth from 0 tasks, and
// the capacity provider starts and stops GPU instances to match. sst.aws.Service/Cluster only schedule on
// Fargate, which has no GPUs, so this is raw Pulumi.

interface Args {
  cfg: InfraConfig;
  vpc: sst.aws.Vpc;
  bucket: sst.aws.Bucket;
  objects: (...prefixes: string[]) => $util.Output<string>[];
  storage: sst.Linkable<Record<string, unknown>>;
  queue: { queue: aws.sqs.Queue; link: sst.Linkable<Record<string, unknown>> };
  secretKey: sst.Secret;
}

export async function inference({ cfg, vpc, bucket, objects, storage, queue, secretKey }: Args) {
  const c = cfg.inference;
  const prefix = `${$app.name}-${$app.stage}`;

  // --- capacity: an ASG of GPU instances managed by an ECS capacity provider -----------------------------
  const cluster = new aws.ecs.Cluster("GpuCluster", {});
  const ami = aws.ssm.getParameterOutput({ name: ECS_GPU_AMI_PARAMETER });
  const instanceSg = new aws.ec2.SecurityGroup("GpuInstanceSg", {
    vpcId: vpc.id,
    description: "ganserve GPU container instances (no inbound; tasks use their own ENIs)",
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const profile = ecsInstanceProfile("GpuInstance");
  const { repo, ref } = await containerImage("Inference", "containers/inference.Dockerfile");
  const launchTemplate = new aws.ec2.LaunchTemplate("GpuLaunchTemplate", {
    imageId: ami.value,
    instanceType: c.instanceType,
    iamInstanceProfile: { arn: profile.arn },
    vpcSecurityGroupIds: [instanceSg.id],
    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
    // The CUDA + libtensorflow image is several GB; the AMI's default root volume fills up after a few deploys.
    blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { volumeSize: 100, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } }],
    userData: $resolve([cluster.name, ref]).apply(([name, image]) => Buffer.from(gpuUserData(name, image, cfg.region)).toString("base64")),
  });
  const asg = new aws.autoscaling.Group(
    "GpuAsg",
    {
      minSize: 0,
      // One GPU task per instance, plus one spare so a rolling deploy can start a new task before stopping one.
      maxSize: c.maxTasks + 1,
      vpcZoneIdentifiers: vpc.privateSubnets,
      launchTemplate: { id: launchTemplate.id, version: "$Latest" },
      protectFromScaleIn: true,
      tags: [{ key: "AmazonECSManaged", value: "true", propagateAtLaunch: true }],
      // Stopped instances that have booted, joined nothing yet and pulled the image (user data): a scale-out
      // starts one of them instead of a fresh instance, and a scale-in stops it back into the pool. Stopped
      // instances bill only their EBS volume.
      ...(c.warmPoolSize > 0
        ? {
            warmPool: {
              poolState: "Stopped",
              minSize: c.warmPoolSize,
              // Without a cap the ASG would keep (maxSize - desired) instances prepared, each with its volume.
              maxGroupPreparedCapacity: c.warmPoolSize,
              instanceReusePolicy: { reuseOnScaleIn: true },
            },
          }
        : {}),
    },
    // ECS managed scaling owns the desired capacity.
    { ignoreChanges: ["desiredCapacity"] },
  );
  const capacityProvider = new aws.ecs.CapacityProvider("GpuCapacityProvider", {
    autoScalingGroupProvider: {
      autoScalingGroupArn: asg.arn,
      managedTerminationProtection: "ENABLED",
      managedDraining: "ENABLED",
      managedScaling: { status: "ENABLED", targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: 2 },
    },
  });
  const clusterCapacity = new aws.ecs.ClusterCapacityProviders("GpuClusterCapacity", {
    clusterName: cluster.name,
    capacityProviders: [capacityProvider.name],
    defaultCapacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1 }],
  });

  // --- task -------------------------------------------------------------------------------------------------
  const logGroup = new aws.cloudwatch.LogGroup("InferenceLogs", { name: `/${$app.name}/${$app.stage}/inference`, retentionInDays: 30 });
  // Production refuses to start without GANSERVE_SECRET_KEY (it seals webhook secrets at rest; the worker
  // opens them to send prediction webhooks). The worker serves no user requests, so it gets no API keys.
  const secretKeyParam = secretParameter("InferenceSecretKey", "inference/secret-key", secretKey);
  const execution = executionRole("InferenceExecutionRole", repo, logGroup, [secretKeyParam]);
  // Predictions: the worker reads a prediction's input and record, writes its record, result and images,
  // claims completion once (predictions-state/), and removes the images of an attempt cut short.
  const predictionRoots = [predictionKeys.root, predictionKeys.dataRoot, predictionKeys.stateRoot];
  const taskRole = serviceRole("InferenceTaskRole", "ecs-tasks.amazonaws.com", [
    { Action: ["s3:GetObject"], Resource: objects(modelKeys.root, ...predictionRoots) },
    // ...and copies the graphs ONNX Runtime optimised to the version's folder, so the next task scaled from zero
    // starts from them instead of building them again (ort-cache.ts); weights and records stay read-only.
    { Action: ["s3:PutObject"], Resource: [...objects(...predictionRoots), $interpolate`${bucket.arn}/${modelKeys.compiledPattern}`] },
    { Action: ["s3:DeleteObject"], Resource: objects(predictionKeys.dataRoot) },
    // Listing models/ is also /ready's probe; a missing key reads as 404 (not 403) only where listing is allowed.
    { Action: ["s3:ListBucket"], Resource: [bucket.arn], Condition: { StringLike: { "s3:prefix": [modelKeys.root, ...predictionRoots].map((p) => `${p}*`) } } },
    // Pull, hold (extend while a long batch runs) and delete predictions; sending is the API's.
    { Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], Resource: [queue.queue.arn] },
  ]);
  const linkEnv = sst.Linkable.env([storage, queue.link]);
  const taskDefinition = new aws.ecs.TaskDefinition("InferenceTask", {
    family: `${prefix}-inference`,
    requiresCompatibilities: ["EC2"],
    networkMode: "awsvpc",
    executionRoleArn: execution.arn,
    taskRoleArn: taskRole.arn,
    containerDefinitions: $jsonStringify([
      {
        name: "inference",
        image: ref,
        essential: true,
        cpu: c.cpu,
        memory: c.memoryMiB,
        portMappings: [{ containerPort: INFERENCE_PORT, protocol: "tcp" }],
        resourceRequirements: [{ type: "GPU", value: "1" }],
        // No load balancer probes the worker: ECS runs this check inside the container and replaces a task
        // whose /ready fails (e.g. it asked for a GPU and ONNX Runtime found no CUDA provider).
        healthCheck: {
          command: ["CMD", "node", "-e", `fetch("http://127.0.0.1:${INFERENCE_PORT}/ready").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
          interval: 30,
          timeout: 5,
          retries: 3,
          // Instance start + image pull are outside the task; this covers model download and ONNX warm-up.
          startPeriod: 300,
        },
        environment: linkEnv.apply((env) =>
          [
            ...Object.entries(env).map(([name, value]) => ({ name, value })),
            ...Object.entries(GPU_WORKER_ENV).map(([name, value]) => ({ name, value })),
            { name: "AWS_REGION", value: cfg.region },
            { name: "GANSERVE_S3_REGION", value: cfg.region },
            // The worker extends a held message before this runs out, and a dead worker's message reappears after it.
            { name: "GANSERVE_QUEUE_VISIBILITY_S", value: String(c.queueVisibilitySeconds) },
          ].sort((a, b) => a.name.localeCompare(b.name)),
        ),
        secrets: [{ name: "SST_RESOURCE_SecretKey", valueFrom: secretKeyParam.arn }],
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": logGroup.name, "awslogs-region": cfg.region, "awslogs-stream-prefix": "inference" },
        },
        // On SIGTERM (scale-in) the worker stops receiving and finishes its batch; ECS's ceiling on EC2 is 120 s.
        stopTimeout: 120,
      },
    ]),
  });

  // --- service + scaling ------------------------------------------------------------------------------------
  // The task has no inbound rule at all: nothing connects to a worker; it reaches SQS, S3 and ECR outward.
  const taskSg = new aws.ec2.SecurityGroup("InferenceTaskSg", {
    vpcId: vpc.id,
    description: "prediction workers (outbound only)",
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const service = new aws.ecs.Service(
    "InferenceService",
    {
      cluster: cluster.arn,
      taskDefinition: taskDefinition.arn,
      desiredCount: c.minTasks,
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1 }],
      networkConfiguration: { subnets: vpc.privateSubnets, securityGroups: [taskSg.id], assignPublicIp: false },
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      // At the default 0 tasks steady state is immediate; with minTasks > 0 a deploy fails loudly when the
      // tasks never turn healthy instead of reporting success over a crash loop.
      waitForSteadyState: true,
    },
    // Application Auto Scaling owns desiredCount after the first deploy.
    { dependsOn: [clusterCapacity], ignoreChanges: ["desiredCount"] },
  );
  const scaling = queueScaling({ cfg, queue: queue.queue, resourceId: $interpolate`service/${cluster.name}/${service.name}` });

  return { cluster, service, taskDefinition, asg, scaling };
}

/**
 * User data of a GPU container instance. ECS_WARM_POOLS_CHECK keeps the ECS agent from registering while
 * the instance is being prepared for the warm pool (it would otherwise be offered tasks and then stopped).
 * The image is pulled at that first boot, so a warm instance starts its task from the local cache
 * (ECS_IMAGE_PULL_BEHAVIOR=prefer-cached) instead of pulling several GB from ECR on the critical path.
 */
export function gpuUserData(cluster: string, image: string, region: string): string {
  const registry = image.split("/")[0];
  return [
    "#!/bin/bash",
    "cat >> /etc/ecs/ecs.config <<'EOF'",
    `ECS_CLUSTER=${cluster}`,
    "ECS_ENABLE_GPU_SUPPORT=true",
    // Tasks must use their task role, not the instance role, for S3 and SQS.
    "ECS_AWSVPC_BLOCK_IMDS=true",
    "ECS_WARM_POOLS_CHECK=true",
    "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
    "EOF",
    "systemctl start docker",
    `aws ecr get-login-password --region ${region} | docker login --username AWS --password-stdin ${registry} && docker pull ${image} || true`,
    "",
  ].join("\n");
}
