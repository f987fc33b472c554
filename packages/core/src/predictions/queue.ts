/**
 * The port between the API and the workers: SQS's semantics, which the in-process queue (memory-queue.ts)
 * models and the SQS adapter (sqs-queue.ts) passes through. A received message is hidden for a visibility
 * timeout; a worker that finishes deletes it, one that keeps working extends the timeout, and one that dies
 * does neither, so the message reappears and another worker runs it (receiveCount says how often it was
 * handed out). Bodies are small JSON ({id, tenant, model}): inputs live in storage.
 */
export interface QueueMessage {
  body: string;
  /** Names this delivery: deleting or extending needs it, and a redelivery gets a new one. */
  receiptHandle: string;
  /** 1 on the first delivery. */
  receiveCount: number;
}

export interface ReceiveOptions {
  /** At most this many messages (SQS: 1..10). */
  max: number;
  /** Long polling: wait up to this long for a first message (SQS: 0..20). */
  waitSeconds: number;
  /** How long the received messages stay hidden. */
  visibilitySeconds: number;
  signal?: AbortSignal;
}

export interface QueueDepth {
  /** waiting to be received */
  visible: number;
  /** received and neither deleted nor back yet */
  inFlight: number;
}

export interface PredictionQueue {
  readonly kind: "memory" | "sqs";
  send(body: string): Promise<void>;
  receive(opts: ReceiveOptions): Promise<QueueMessage[]>;
  changeVisibility(receiptHandle: string, seconds: number): Promise<void>;
  delete(receiptHandle: string): Promise<void>;
  depth(): Promise<QueueDepth>;
}

/** What the API puts on the queue for one prediction. */
export interface PredictionMessage {
  id: string;
  tenant: string;
  model: string;
}
