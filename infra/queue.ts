import type { InfraConfig } from "./config";
import { serviceRole } from "./iam";

// The prediction queue: the API Lambda enqueues one message per prediction, the GPU workers pull and batch.
// SQS keeps a message invisible while a worker holds it; a worker that dies mid-batch leaves it to reappear
// after the visibility timeout, and after `maxReceives` tries it moves to the dead-letter queue instead of
// crash-looping the fleet.

/** SQS's longest retention; dead letters are kept for inspection, not for replay by the service. */
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;
/** A prediction's deadline is 30 minutes by default; a message older than a day can only be answered `failed`. */
const QUEUE_RETENTION_SECONDS = 24 * 3600;
/** Long polling: an idle worker holds one ReceiveMessage open for 20 s (SQS's maximum) instead of spinning. */
const RECEIVE_WAIT_SECONDS = 20;

export function predictionQueue(cfg: InfraConfig) {
  const dlq = new aws.sqs.Queue("PredictionDlq", {
    messageRetentionSeconds: DLQ_RETENTION_SECONDS,
    sqsManagedSseEnabled: true,
  });
  const queue = new aws.sqs.Queue("PredictionQueue", {
    visibilityTimeoutSeconds: cfg.inference.queueVisibilitySeconds,
    messageRetentionSeconds: QUEUE_RETENTION_SECONDS,
    receiveWaitTimeSeconds: RECEIVE_WAIT_SECONDS,
    sqsManagedSseEnabled: true,
    redrivePolicy: $jsonStringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: cfg.inference.maxReceives }),
  });
  // Only the dead-letter queue's own source may redrive into it.
  new aws.sqs.RedriveAllowPolicy("PredictionDlqRedriveAllow", {
    queueUrl: dlq.url,
    redriveAllowPolicy: $jsonStringify({ redrivePermission: "byQueue", sourceQueueArns: [queue.arn] }),
  });
  // SQS publishes a queue's CloudWatch metrics only while it is "active": it holds messages or an API call
  // touched it in the last 6 hours, and metrics of a re-activated queue can take up to 15 minutes to resume.
  // The scaling alarms read those metrics at 0 tasks (nobody polls then), so touch the queue every hour.
  const keepAliveRole = serviceRole("PredictionQueueKeepAliveRole", "scheduler.amazonaws.com", [
    { Action: ["sqs:GetQueueAttributes"], Resource: [queue.arn] },
  ]);
  new aws.scheduler.Schedule("PredictionQueueKeepAlive", {
    scheduleExpression: "rate(1 hour)",
    flexibleTimeWindow: { mode: "OFF" },
    target: {
      arn: "arn:aws:scheduler:::aws-sdk:sqs:getQueueAttributes",
      roleArn: keepAliveRole.arn,
      input: $jsonStringify({ QueueUrl: queue.url, AttributeNames: ["ApproximateNumberOfMessages"] }),
      retryPolicy: { maximumRetryAttempts: 0 },
    },
  });
  // The API Lambda only enqueues; the workers' receive/delete grants are on their task role (infra/inference.ts).
  const link = new sst.Linkable("PredictionQueue", {
    properties: { url: queue.url },
    include: [sst.aws.permission({ actions: ["sqs:SendMessage"], resources: [queue.arn] })],
  });
  return { queue, dlq, link };
}
