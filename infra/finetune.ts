import { datasetKeys, jobKeys, modelKeys } from "../packages/core/src/storage/keys";
import { BATCH_GPU_IMAGE_TYPE, FINETUNE_JOB_ENV, type InfraConfig } from "./config";
import { containerImage } from "./images";
import { ecsInstanceProfile, executionRole, secretParameter, serviceRole } from "./iam";

// Fine-tune runner: one AWS Batch GPU job per POST /v1/fine-tunes. minVcpus 0 means no instance runs
// (and nothing is billed) while the queue is empty.

interface Args {
  cfg: InfraConfig;
  vpc: sst.aws.Vpc;
  bucket: sst.aws.Bucket;
  objects: (...prefixes: string[]) => $util.Output<string>[];
  storage: sst.Linkable<Record<string, unknown>>;
  secretKey: sst.Secret;
}

export async function fineTune({ cfg, vpc, bucket, objects, storage, secretKey }: Args) {
  const f = cfg.fineTune;
  const prefix = `${$app.name}-${$app.stage}`;

  const sg = new aws.ec2.SecurityGroup("FineTuneSg", {
    vpcId: vpc.id,
    description: "ganserve fine-tune Batch instances (outbound only)",
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const profile = ecsInstanceProfile("FineTuneInstance");
  // Batch merges this with its own AMI choice; it only enlarges the disk and enforces IMDSv2.
  const launchTemplate = new aws.ec2.LaunchTemplate("FineTuneLaunchTemplate", {
    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" },
    blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { volumeSize: 100, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } }],
  });
  const computeEnvironment = new aws.batch.ComputeEnvironment("FineTuneCompute", {
    type: "MANAGED",
    state: "ENABLED",
    // No serviceRole: Batch then uses its service-linked role (AWSServiceRoleForBatch).
    computeResources: {
      type: f.spot ? "SPOT" : "EC2",
      allocationStrategy: f.spot ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE",
      instanceTypes: f.instanceTypes,
      minVcpus: 0,
      maxVcpus: f.maxVcpus,
      subnets: vpc.privateSubnets,
      securityGroupIds: [sg.id],
      instanceRole: profile.arn,
      ec2Configurations: [{ imageType: BATCH_GPU_IMAGE_TYPE }],
      launchTemplate: { launchTemplateId: launchTemplate.id, version: launchTemplate.latestVersion.apply(String) },
    },
  });
  const queue = new aws.batch.JobQueue("FineTuneQueue", {
    state: "ENABLED",
    priority: 1,
    computeEnvironmentOrders: [{ order: 1, computeEnvironment: computeEnvironment.arn }],
  });

  const { repo, ref } = await containerImage("FineTune", "containers/finetune.Dockerfile");
  const logGroup = new aws.cloudwatch.LogGroup("FineTuneLogs", { name: `/${$app.name}/${$app.stage}/finetune`, retentionInDays: 30 });
  const jobRole = serviceRole("FineTuneJobRole", "ecs-tasks.amazonaws.com", [
    // jobs/ is read back to resume from the last checkpoint after a crash or a Spot interruption.
    { Action: ["s3:GetObject"], Resource: objects(datasetKeys.root, modelKeys.root, jobKeys.root) },
    // jobs/: progress, samples, checkpoints; models/: the published model version; datasets/: a dataset
    // finalize job (a `ds_` job id) writes the accepted files, the index and the record.
    { Action: ["s3:PutObject"], Resource: objects(jobKeys.root, modelKeys.root, datasetKeys.root) },
    // Each checkpoint replaces the previous one (the worker deletes it). A finalize job deletes the dataset's
    // zip once indexed (or refused) and the files of an earlier failed attempt.
    { Action: ["s3:DeleteObject"], Resource: [$interpolate`${bucket.arn}/${jobKeys.prefix("*")}checkpoints/*`, ...objects(datasetKeys.root)] },
    {
      Action: ["s3:ListBucket"],
      Resource: [bucket.arn],
      Condition: { StringLike: { "s3:prefix": [datasetKeys.root, modelKeys.root, jobKeys.root].map((p) => `${p}*`) } },
    },
  ]);
  // The worker opens the job's sealed webhook secret with GANSERVE_SECRET_KEY.
  const secretKeyParam = secretParameter("FineTuneSecretKey", "finetune/secret-key", secretKey);
  // With an execution role set, the ECS agent on the Batch host also pulls the image and ships logs with it.
  const execution = executionRole("FineTuneExecutionRole", repo, logGroup, [secretKeyParam]);
  const linkEnv = sst.Linkable.env([storage]);
  const jobDefinition = new aws.batch.JobDefinition("FineTuneJob", {
    name: `${prefix}-finetune`,
    type: "container",
    platformCapabilities: ["EC2"],
    propagateTags: true,
    containerProperties: $jsonStringify({
      image: ref,
      jobRoleArn: jobRole.arn,
      executionRoleArn: execution.arn,
      secrets: [{ name: "SST_RESOURCE_SecretKey", valueFrom: secretKeyParam.arn }],
      resourceRequirements: [
        { type: "GPU", value: "1" },
        { type: "VCPU", value: String(f.jobVcpus) },
        { type: "MEMORY", value: String(f.jobMemoryMiB) },
      ],
      environment: linkEnv.apply((env) =>
        [
          ...Object.entries(env).map(([name, value]) => ({ name, value })),
          ...Object.entries(FINETUNE_JOB_ENV).map(([name, value]) => ({ name, value })),
          { name: "AWS_REGION", value: cfg.region },
          { name: "GANSERVE_S3_REGION", value: cfg.region },
        ].sort((a, b) =>
          a.name.localeCompare(b.name),
        ),
      ),
      logConfiguration: {
        logDriver: "awslogs",
        options: { "awslogs-group": logGroup.name, "awslogs-region": cfg.region, "awslogs-stream-prefix": "finetune" },
      },
    }),
    // The worker resumes from its last checkpoint, so retrying after losing the host costs little.
    retryStrategy: {
      attempts: 3,
      evaluateOnExits: [
        { onStatusReason: "Host EC2*", action: "RETRY" },
        { onReason: "*", action: "EXIT" },
      ],
    },
    timeout: { attemptDurationSeconds: f.timeoutSeconds },
  });

  // SubmitJob is authorised on the queue, the job definition and the new job itself; its tags (the ganserve
  // job id, propagated to the ECS task) need TagResource on that job too. Any revision of the definition:
  // a deploy registers a new one and deregisters the old, and a submit racing it must not fail.
  // Reconciliation asks Batch for the state of unfinished jobs (DescribeJobs has no resource-level
  // permissions: AWS requires "*"), and a cancel terminates a job that is still waiting (TerminateJob on job/*).
  const jobArns = queue.arn.apply((arn) => arn.replace(/:job-queue\/.*$/, ":job/*"));
  const definitionArns = $interpolate`${jobDefinition.arnPrefix}:*`;
  const link = new sst.Linkable("FineTune", {
    properties: { jobQueue: queue.arn, jobDefinition: jobDefinition.arnPrefix },
    include: [
      sst.aws.permission({ actions: ["batch:SubmitJob"], resources: [queue.arn, definitionArns, jobArns] }),
      sst.aws.permission({ actions: ["batch:TagResource", "batch:TerminateJob"], resources: [jobArns] }),
      sst.aws.permission({ actions: ["batch:DescribeJobs"], resources: ["*"] }),
    ],
  });

  return { computeEnvironment, queue, jobDefinition, link };
}
