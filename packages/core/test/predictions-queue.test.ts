/**
 * The prediction queue's contract (SQS semantics: visibility timeout, receive count, long polling, delete),
 * checked on the in-process queue and on the SQS adapter. The adapter goes through `@aws-sdk/client-sqs`'s own
 * command objects to a fake at the client boundary that keeps SQS's rules: no local SQS-compatible server
 * from the registries speaks the JSON protocol of the current client (sqslite answers only the Query one).
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/errors.ts";
import { MemoryQueue } from "../src/predictions/memory-queue.ts";
import type { PredictionQueue } from "../src/predictions/queue.ts";
import { SqsQueue, type SqsSender } from "../src/predictions/sqs-queue.ts";

const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/predictions";

/** SQS as its documentation states it, for one standard queue; what the adapter sent is kept in `calls`. */
class FakeSqs implements SqsSender {
  calls: { name: string; input: Record<string, unknown> }[] = [];
  down = false;
  private messages: { id: number; body: string; visibleAt: number; count: number; handle?: string }[] = [];
  private next = 1;

  async send(command: object, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    const name = command.constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    this.calls.push({ name, input });
    if (this.down) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED", $metadata: {} });
    if (input.QueueUrl !== QUEUE_URL) throw Object.assign(new Error("The specified queue does not exist."), { name: "QueueDoesNotExist", $metadata: { httpStatusCode: 400 } });
    if (command instanceof SendMessageCommand) {
      this.messages.push({ id: this.next++, body: String(input.MessageBody), visibleAt: 0, count: 0 });
      return { MessageId: String(this.next - 1) };
    }
    if (command instanceof ReceiveMessageCommand) {
      const max = Number(input.MaxNumberOfMessages ?? 1);
      const wait = Number(input.WaitTimeSeconds ?? 0);
      if (max < 1 || max > 10 || wait < 0 || wait > 20) throw Object.assign(new Error("InvalidParameterValue"), { $metadata: { httpStatusCode: 400 } });
      const until = Date.now() + wait * 1000;
      for (;;) {
        const now = Date.now();
        const got = this.messages.filter((m) => m.visibleAt <= now).slice(0, max);
        for (const m of got) {
          m.count++;
          m.handle = `h-${m.id}-${m.count}`;
          m.visibleAt = now + Number(input.VisibilityTimeout ?? 30) * 1000;
        }
        if (got.length || now >= until || options?.abortSignal?.aborted)
          return { Messages: got.map((m) => ({ MessageId: String(m.id), Body: m.body, ReceiptHandle: m.handle, Attributes: { ApproximateReceiveCount: String(m.count) } })) };
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const byHandle = () => this.messages.find((m) => m.handle === input.ReceiptHandle);
    if (command instanceof ChangeMessageVisibilityCommand) {
      const m = byHandle();
      if (!m) throw Object.assign(new Error("ReceiptHandleIsInvalid"), { $metadata: { httpStatusCode: 400 } });
      m.visibleAt = Date.now() + Number(input.VisibilityTimeout) * 1000;
      return {};
    }
    if (command instanceof DeleteMessageCommand) {
      this.messages = this.messages.filter((m) => m.handle !== input.ReceiptHandle);
      return {};
    }
    if (command instanceof GetQueueAttributesCommand) {
      const now = Date.now();
      const visible = this.messages.filter((m) => m.visibleAt <= now).length;
      return { Attributes: { ApproximateNumberOfMessages: String(visible), ApproximateNumberOfMessagesNotVisible: String(this.messages.length - visible) } };
    }
    throw new Error(`FakeSqs: ${name} is not modelled`);
  }
}

const cases: [string, () => { queue: PredictionQueue; fake?: FakeSqs }][] = [
  ["memory", () => ({ queue: new MemoryQueue() })],
  [
    "sqs adapter",
    () => {
      const fake = new FakeSqs();
      return { queue: new SqsQueue(QUEUE_URL, fake), fake };
    },
  ],
];

describe.each(cases)("%s queue", (_name, make) => {
  it("hides a received message for its visibility timeout, then hands it out again with a higher receive count", async () => {
    const { queue } = make();
    await queue.send('{"id":"a"}');
    const [first] = await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 1 });
    expect(first).toMatchObject({ body: '{"id":"a"}', receiveCount: 1 });
    expect(await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 1 })).toEqual([]);
    expect(await queue.depth()).toEqual({ visible: 0, inFlight: 1 });
    // Long polling returns it as soon as it is visible again (a dead worker's message reappears).
    const [again] = await queue.receive({ max: 10, waitSeconds: 5, visibilitySeconds: 30 });
    expect(again).toMatchObject({ body: '{"id":"a"}', receiveCount: 2 });
    expect(again.receiptHandle).not.toBe(first.receiptHandle);
    await queue.delete(again.receiptHandle);
    expect(await queue.depth()).toEqual({ visible: 0, inFlight: 0 });
    expect(await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 1 })).toEqual([]);
  });

  it("long polling: a receive that waits gets a message sent meanwhile", async () => {
    const { queue } = make();
    const pending = queue.receive({ max: 1, waitSeconds: 10, visibilitySeconds: 30 });
    await new Promise((r) => setTimeout(r, 100));
    await queue.send("late");
    expect((await pending).map((m) => m.body)).toEqual(["late"]);
  });

  it("extends visibility while working and releases at once with 0; max bounds a receive", async () => {
    const { queue } = make();
    for (const b of ["1", "2", "3"]) await queue.send(b);
    const got = await queue.receive({ max: 2, waitSeconds: 0, visibilitySeconds: 1 });
    expect(got.map((m) => m.body)).toEqual(["1", "2"]);
    await queue.changeVisibility(got[0].receiptHandle, 30);
    await queue.changeVisibility(got[1].receiptHandle, 0);
    const next = await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 });
    expect(next.map((m) => m.body).sort()).toEqual(["2", "3"]);
    await new Promise((r) => setTimeout(r, 1200));
    // "1" was extended past its first timeout: still hidden.
    expect(await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
  });
});

describe("sqs adapter", () => {
  it("sends SQS's own parameters, within SQS's bounds", async () => {
    const fake = new FakeSqs();
    const queue = new SqsQueue(QUEUE_URL, fake);
    await queue.send("x");
    await queue.receive({ max: 64, waitSeconds: 60, visibilitySeconds: 90 });
    const receive = fake.calls.find((c) => c.name === "ReceiveMessageCommand")!.input;
    expect(receive).toMatchObject({ QueueUrl: QUEUE_URL, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, VisibilityTimeout: 90, MessageSystemAttributeNames: ["ApproximateReceiveCount"] });
    expect(new Set(fake.calls.map((c) => c.name))).toEqual(new Set(["SendMessageCommand", "ReceiveMessageCommand"]));
  });

  it("an unreachable queue is a 503 queue_unavailable with Retry-After; a client error stays itself", async () => {
    const fake = new FakeSqs();
    fake.down = true;
    const err = await new SqsQueue(QUEUE_URL, fake).send("x").catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: "queue_unavailable", status: 503 });
    expect(err.retryAfter).toBeGreaterThan(0);
    const wrong = await new SqsQueue(`${QUEUE_URL}-missing`, new FakeSqs()).send("x").catch((e) => e);
    expect(wrong).not.toBeInstanceOf(ApiError);
    expect(wrong.name).toBe("QueueDoesNotExist");
  });
});
