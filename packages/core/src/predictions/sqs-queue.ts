/**
 * The prediction queue in AWS: an SQS standard queue through `@aws-sdk/client-sqs`. The calls it makes
 * (the deployment's IAM grants exactly these on the queue): SendMessage, ReceiveMessage,
 * ChangeMessageVisibility, DeleteMessage, GetQueueAttributes.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { ApiError } from "../errors.ts";
import type { PredictionQueue, QueueDepth, QueueMessage, ReceiveOptions } from "./queue.ts";

/** The part of SQSClient the adapter uses, so tests can stand a fake in at the client boundary. */
export interface SqsSender {
  send(command: object, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** SQS's own bounds: 10 messages a receive, 20 s of long polling, 12 h of visibility. */
export const SQS_MAX_MESSAGES = 10;
export const SQS_MAX_WAIT_SECONDS = 20;
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

export class SqsQueue implements PredictionQueue {
  readonly kind = "sqs" as const;
  private readonly client: SqsSender;

  constructor(
    readonly url: string,
    client?: SqsSender,
  ) {
    // Long polls take up to 20 s: the request timeout must outlast them.
    this.client = client ?? new SQSClient({ maxAttempts: 4, requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 } });
  }

  /** A queue that cannot be reached is a 503 the client may retry, like storage (storage.ts). */
  private async call<T>(command: object, signal?: AbortSignal): Promise<T> {
    try {
      return (await this.client.send(command, signal ? { abortSignal: signal } : undefined)) as T;
    } catch (e) {
      if (signal?.aborted) throw e;
      const err = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
      const status = err.$metadata?.httpStatusCode ?? 0;
      if (status === 0 || status >= 500 || ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND"].includes(err.code ?? ""))
        throw new ApiError("queue_unavailable", `the prediction queue is unavailable: ${err.code ?? err.name ?? "error"}`, undefined, 2);
      throw e;
    }
  }

  async send(body: string): Promise<void> {
    await this.call(new SendMessageCommand({ QueueUrl: this.url, MessageBody: body }));
  }

  async receive(opts: ReceiveOptions): Promise<QueueMessage[]> {
    const res = await this.call<{ Messages?: { Body?: string; ReceiptHandle?: string; Attributes?: Record<string, string> }[] }>(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.max(1, Math.min(SQS_MAX_MESSAGES, opts.max)),
        WaitTimeSeconds: Math.max(0, Math.min(SQS_MAX_WAIT_SECONDS, opts.waitSeconds)),
        VisibilityTimeout: Math.min(SQS_MAX_VISIBILITY_SECONDS, opts.visibilitySeconds),
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
      opts.signal,
    );
    return (res.Messages ?? []).flatMap((m) =>
      m.Body !== undefined && m.ReceiptHandle
        ? [{ body: m.Body, receiptHandle: m.ReceiptHandle, receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1) }]
        : [],
    );
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    await this.call(new ChangeMessageVisibilityCommand({ QueueUrl: this.url, ReceiptHandle: receiptHandle, VisibilityTimeout: Math.min(SQS_MAX_VISIBILITY_SECONDS, seconds) }));
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.call(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receiptHandle }));
  }

  async depth(): Promise<QueueDepth> {
    const res = await this.call<{ Attributes?: Record<string, string> }>(
      new GetQueueAttributesCommand({ QueueUrl: this.url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    return { visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
  }
}
