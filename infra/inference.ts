import { modelKeys, outputKeys } from "../packages/core/src/storage/keys";
import { ECS_GPU_AMI_PARAMETER, INFERENCE_PORT, type InfraConfig } from "./config";
import { containerImage } from "./images";
import { ecsInstanceProfile, executionRole, secretParameter, serviceRole } from "./iam";

// GPU data plane: /v1/generate and /v1/translate served by the inference container on ECS with EC2 GPU
// capacity. sst.aws.Service/Cluster only schedule on Fargate, which has no GPUs, so this is raw Pulumi.

interface Args {
  cfg: InfraConfig;
  vpc: sst.aws.Vpc;
  bucket: sst.aws.Bucket;
  objects: (...prefixes: string[]) => $util.Output<string>[];
  storage: sst.Linkable<Record<string, unknown>>;
  apiKeys: sst.Secret;
  secretKey: sst.Secret;
}

export async function inference({ cfg, vpc, bucket, objects, storage, apiKeys, secretKey }: Args) {
  const c = cfg.inference;
  const prefix = `${$app.name}-${$app.stage}`;
  const vpcCidr = vpc.nodes.vpc.cidrBlock;

  // --- capacity: an ASG of GPU instances managed by an ECS capacity provider -----------------------------
  const cluster = new aws.ecs.Cluster("GpuCluster", {});
  const ami = aws.ssm.getParameterOutput({ name: ECS_GPU_AMI_PARAMETER });
  const instanceSg = new aws.ec2.SecurityGroup("GpuInstanceSg", {
    vpcId: vpc.id,
    description: "ganserve GPU container instances (no inbound; tasks use their own ENIs)",
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const profile = ecsInstanceProfile("GpuInstance");
  const launchTemplate = new aws.ec2.LaunchTemplate("GpuLaunchTemplate", {
    imageId: ami.value,
    instanceType: c.instanceType,
    iamInstanceProfile: { arn: profile.arn },
    vpcSecurityGroupIds: [instanceSg.id],
    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
    // The CUDA + libtensorflow image is several GB; the AMI's default root volume fills up after a few deploys.
    blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { volumeSize: 100, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } }],
    userData: cluster.name.apply((name) =>
      Buffer.from(
        [
          "#!/bin/bash",
          `echo ECS_CLUSTER=${name} >> /etc/ecs/ecs.config`,
          "echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config",
          // Tasks must use their task role, not the instance role, for S3.
          "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config",
          "",
        ].join("\n"),
      ).toString("base64"),
    ),
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
  const { repo, ref } = await containerImage("Inference", "containers/inference.Dockerfile");
  const logGroup = new aws.cloudwatch.LogGroup("InferenceLogs", { name: `/${$app.name}/${$app.stage}/inference`, retentionInDays: 30 });
  const apiKeysParam = secretParameter("InferenceApiKeys", "inference/api-keys", apiKeys);
  // Production refuses to start without GANSERVE_SECRET_KEY (it seals webhook secrets at rest).
  const secretKeyParam = secretParameter("InferenceSecretKey", "inference/secret-key", secretKey);
  const execution = executionRole("InferenceExecutionRole", repo, logGroup, [apiKeysParam, secretKeyParam]);
  const taskRole = serviceRole("InferenceTaskRole", "ecs-tasks.amazonaws.com", [
    { Action: ["s3:GetObject"], Resource: objects(modelKeys.root, outputKeys.root) },
    { Action: ["s3:PutObject"], Resource: objects(outputKeys.root) },
    { Action: ["s3:ListBucket"], Resource: [bucket.arn], Condition: { StringLike: { "s3:prefix": [`${modelKeys.root}*`] } } },
  ]);
  const linkEnv = sst.Linkable.env([storage]);
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
        environment: linkEnv.apply((env) =>
          [
            ...Object.entries(env).map(([name, value]) => ({ name, value })),
            { name: "NODE_ENV", value: "production" },
            { name: "PORT", value: String(INFERENCE_PORT) },
            { name: "AWS_REGION", value: cfg.region },
            { name: "GANSERVE_S3_REGION", value: cfg.region },
            // Answer (with a 503) before API Gateway's 30 s integration limit cuts the connection.
            { name: "GANSERVE_REQUEST_TIMEOUT_MS", value: "28000" },
          ].sort((a, b) => a.name.localeCompare(b.name)),
        ),
        secrets: [
          { name: "SST_RESOURCE_ApiKeys", valueFrom: apiKeysParam.arn },
          { name: "SST_RESOURCE_SecretKey", valueFrom: secretKeyParam.arn },
        ],
        logConfiguration: {
          logDriver: "awslogs",
          options: { "awslogs-group": logGroup.name, "awslogs-region": cfg.region, "awslogs-stream-prefix": "inference" },
        },
        stopTimeout: 60,
      },
    ]),
  });

  // --- internal ALB: the target of API Gateway's VPC link --------------------------------------------------
  const vpcLinkSg = new aws.ec2.SecurityGroup("ApiVpcLinkSg", {
    vpcId: vpc.id,
    description: "API Gateway VPC link to the inference ALB",
    egress: [{ protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: [vpcCidr] }],
  });
  const albSg = new aws.ec2.SecurityGroup("InferenceAlbSg", {
    vpcId: vpc.id,
    description: "internal inference ALB",
    ingress: [{ protocol: "tcp", fromPort: 80, toPort: 80, securityGroups: [vpcLinkSg.id] }],
    egress: [{ protocol: "tcp", fromPort: INFERENCE_PORT, toPort: INFERENCE_PORT, cidrBlocks: [vpcCidr] }],
  });
  const taskSg = new aws.ec2.SecurityGroup("InferenceTaskSg", {
    vpcId: vpc.id,
    description: "inference tasks",
    ingress: [{ protocol: "tcp", fromPort: INFERENCE_PORT, toPort: INFERENCE_PORT, securityGroups: [albSg.id] }],
    // ECR, S3 and CloudWatch are reached through the NAT / S3 gateway endpoint.
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const alb = new aws.lb.LoadBalancer("InferenceAlb", {
    internal: true,
    loadBalancerType: "application",
    subnets: vpc.privateSubnets,
    securityGroups: [albSg.id],
    // API Gateway cuts integrations at 30 s anyway; keep the ALB from closing slower batches first.
    idleTimeout: 60,
  });
  const targetGroup = new aws.lb.TargetGroup("InferenceTargets", {
    port: INFERENCE_PORT,
    protocol: "HTTP",
    targetType: "ip",
    vpcId: vpc.id,
    deregistrationDelay: 30,
    // /ready turns 200 only once the models are warm, so a booting task gets no traffic.
    healthCheck: { path: "/ready", matcher: "200", interval: 15, timeout: 5, healthyThreshold: 2, unhealthyThreshold: 3 },
  });
  const listener = new aws.lb.Listener("InferenceListener", {
    loadBalancerArn: alb.arn,
    port: 80,
    protocol: "HTTP",
    defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
  });

  // --- service + scaling ------------------------------------------------------------------------------------
  const service = new aws.ecs.Service(
    "InferenceService",
    {
      cluster: cluster.arn,
      taskDefinition: taskDefinition.arn,
      desiredCount: c.minTasks,
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1 }],
      networkConfiguration: { subnets: vpc.privateSubnets, securityGroups: [taskSg.id], assignPublicIp: false },
      loadBalancers: [{ targetGroupArn: targetGroup.arn, containerName: "inference", containerPort: INFERENCE_PORT }],
      // Instance boot + image pull + model warm-up.
      healthCheckGracePeriodSeconds: 600,
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      waitForSteadyState: false,
    },
    // Application Auto Scaling owns desiredCount after the first deploy.
    { dependsOn: [listener, clusterCapacity], ignoreChanges: ["desiredCount"] },
  );
  const resourceId = $interpolate`service/${cluster.name}/${service.name}`;
  const scaling = new aws.appautoscaling.Target("InferenceScaling", {
    serviceNamespace: "ecs",
    scalableDimension: "ecs:service:DesiredCount",
    resourceId,
    minCapacity: c.minTasks,
    maxCapacity: c.maxTasks,
  });
  new aws.appautoscaling.Policy("InferenceRequestsPerTarget", {
    policyType: "TargetTrackingScaling",
    serviceNamespace: scaling.serviceNamespace,
    scalableDimension: scaling.scalableDimension,
    resourceId: scaling.resourceId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue: c.requestsPerTarget,
      predefinedMetricSpecification: {
        predefinedMetricType: "ALBRequestCountPerTarget",
        resourceLabel: $interpolate`${alb.arnSuffix}/${targetGroup.arnSuffix}`,
      },
      scaleOutCooldown: 60,
      // GPU instances are slow to come back; don't give one up after a short lull.
      scaleInCooldown: 600,
    },
  });

  if (c.minTasks === 0) {
    // With zero tasks there are no targets, so ALBRequestCountPerTarget has no data and target tracking never
    // scales out. The ALB answers 503 in that state: one 503 in a minute starts the first task.
    const wake = new aws.appautoscaling.Policy("InferenceScaleFromZero", {
      policyType: "StepScaling",
      serviceNamespace: scaling.serviceNamespace,
      scalableDimension: scaling.scalableDimension,
      resourceId: scaling.resourceId,
      stepScalingPolicyConfiguration: {
        adjustmentType: "ChangeInCapacity",
        metricAggregationType: "Maximum",
        cooldown: 300,
        stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }],
      },
    });
    new aws.cloudwatch.MetricAlarm("InferenceColdRequests", {
      namespace: "AWS/ApplicationELB",
      metricName: "HTTPCode_ELB_503_Count",
      dimensions: { LoadBalancer: alb.arnSuffix },
      statistic: "Sum",
      period: 60,
      evaluationPeriods: 1,
      threshold: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      treatMissingData: "notBreaching",
      alarmActions: [wake.arn],
    });
  }

  return { cluster, service, alb, listener, targetGroup, taskDefinition, internalUrl: $interpolate`http://${alb.dnsName}`, vpcLinkSg };
}
