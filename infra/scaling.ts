import type { InfraConfig } from "./config";

// The GPU service follows the prediction queue. Both alarms read SQS's own metrics, which SQS publishes
// every minute whether or not any worker runs, so they see a backlog at 0 tasks (an ALB or a target-tracking
// metric has no data points then).
//
//   backlog = waiting (ApproximateNumberOfMessagesVisible) + held by a worker (…NotVisible), missing = 0
//
// * Wake / grow: backlog ≥ 1 in a minute → desired = ceil(backlog / backlogPerTask), capped at maxTasks.
//   EXACT capacity, never "+1": the alarm stays in ALARM for the minutes a cold start takes, and Application
//   Auto Scaling re-runs the policy each minute after its cooldown; an exact step is idempotent, so a backlog
//   that waits on a booting instance never starts a second one.
// * Idle: backlog 0 for `idleMinutes` consecutive minutes → desired = minTasks (0 by default).
// The capacity provider (managed scaling, target 100 %) then starts or stops instances to fit the tasks.

/** SQS's metrics are per minute. */
const PERIOD_SECONDS = 60;

export interface StepAdjustment {
  metricIntervalLowerBound?: string;
  metricIntervalUpperBound?: string;
  scalingAdjustment: number;
}

/**
 * Exact-capacity steps over (backlog − 1), the alarm's threshold being 1. Above a threshold a step's lower
 * bound is inclusive and its upper bound exclusive, so task k covers backlogs (k−1)·B+1 … k·B. Kept pure so
 * the tests can replay it.
 */
export function scaleOutSteps(backlogPerTask: number, maxTasks: number): StepAdjustment[] {
  return Array.from({ length: maxTasks }, (_, i) => ({
    metricIntervalLowerBound: String(i * backlogPerTask),
    ...(i + 1 < maxTasks ? { metricIntervalUpperBound: String((i + 1) * backlogPerTask) } : {}),
    scalingAdjustment: i + 1,
  }));
}

function backlogQueries(queueName: $util.Input<string>) {
  const metric = (id: string, metricName: string) => ({
    id,
    returnData: false,
    metric: { namespace: "AWS/SQS", metricName, dimensions: { QueueName: queueName }, period: PERIOD_SECONDS, stat: "Maximum" },
  });
  return [
    metric("waiting", "ApproximateNumberOfMessagesVisible"),
    metric("held", "ApproximateNumberOfMessagesNotVisible"),
    // FILL: a minute without a data point is an empty queue, not "unknown".
    { id: "backlog", expression: "FILL(waiting, 0) + FILL(held, 0)", label: "predictions waiting or in flight", returnData: true },
  ];
}

interface Args {
  cfg: InfraConfig;
  queue: aws.sqs.Queue;
  /** `service/<cluster>/<service>` of the ECS service to scale. */
  resourceId: $util.Input<string>;
}

export function queueScaling({ cfg, queue, resourceId }: Args) {
  const c = cfg.inference;
  const target = new aws.appautoscaling.Target("InferenceScaling", {
    serviceNamespace: "ecs",
    scalableDimension: "ecs:service:DesiredCount",
    resourceId,
    minCapacity: c.minTasks,
    maxCapacity: c.maxTasks,
  });
  const common = {
    policyType: "StepScaling",
    serviceNamespace: target.serviceNamespace,
    scalableDimension: target.scalableDimension,
    resourceId: target.resourceId,
  };
  const scaleOut = new aws.appautoscaling.Policy("InferenceQueueScaleOut", {
    ...common,
    stepScalingPolicyConfiguration: {
      adjustmentType: "ExactCapacity",
      metricAggregationType: "Maximum",
      cooldown: c.scaleOutCooldownSeconds,
      stepAdjustments: scaleOutSteps(c.backlogPerTask, c.maxTasks),
    },
  });
  new aws.cloudwatch.MetricAlarm("InferenceQueueBacklog", {
    alarmDescription: "predictions are waiting or running: run ceil(backlog / backlogPerTask) GPU tasks",
    comparisonOperator: "GreaterThanOrEqualToThreshold",
    threshold: 1,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: "notBreaching",
    metricQueries: backlogQueries(queue.name),
    alarmActions: [scaleOut.arn],
  });
  const scaleIn = new aws.appautoscaling.Policy("InferenceQueueIdle", {
    ...common,
    stepScalingPolicyConfiguration: {
      adjustmentType: "ExactCapacity",
      metricAggregationType: "Maximum",
      cooldown: PERIOD_SECONDS,
      stepAdjustments: [{ metricIntervalUpperBound: "0", scalingAdjustment: c.minTasks }],
    },
  });
  new aws.cloudwatch.MetricAlarm("InferenceQueueIdleAlarm", {
    alarmDescription: `no prediction waiting or running for ${c.idleMinutes} minutes: back to ${c.minTasks} GPU tasks`,
    comparisonOperator: "LessThanThreshold",
    threshold: 0.5,
    evaluationPeriods: c.idleMinutes,
    datapointsToAlarm: c.idleMinutes,
    // SQS stops publishing for a queue nobody touched for 6 hours: that is idle too.
    treatMissingData: "breaching",
    metricQueries: backlogQueries(queue.name),
    alarmActions: [scaleIn.arn],
  });
  return { target, scaleOut, scaleIn };
}
