// Recording stand-ins for the AWS APIs other than S3 that the runtimes call, each deciding the call with the
// runtime's role before answering as the service would. Batch: SubmitJob, DescribeJobs, TerminateJob (REST
// JSON, POST /v1/<operation>).
import http from "node:http";
import crypto from "node:crypto";
import { MOCK_ACCOUNT, MOCK_REGION } from "../../infra/mock-harness.ts";
import type { Request, RoleGate } from "./iam.ts";

export interface FakeService {
  endpoint: string;
  /** Bodies of the calls that were allowed, in order. */
  accepted: { operation: string; input: Record<string, unknown> }[];
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const closer = (server: http.Server) => async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(() => r(undefined)));
};

const withRevision = (arn: string) => (/:\d+$/.test(arn) ? arn : `${arn}:1`);
const batchArn = (kind: string, name: string) => (name.startsWith("arn:") ? name : `arn:aws:batch:${MOCK_REGION}:${MOCK_ACCOUNT}:${kind}/${name}`);

/** A job the fake Batch holds; a test moves it along (e.g. to FAILED with an out-of-memory reason). */
export interface FakeBatchJob {
  jobId: string;
  jobName: string;
  status: "SUBMITTED" | "PENDING" | "RUNNABLE" | "STARTING" | "RUNNING" | "SUCCEEDED" | "FAILED";
  statusReason?: string;
  attempts?: { container?: { reason?: string; exitCode?: number } }[];
}

/**
 * SubmitJob is authorised on the job queue, the job definition and the job it creates (job/*); tags on the
 * request are also authorised as batch:TagResource on that job, with aws:RequestTag/<key> and aws:TagKeys.
 * DescribeJobs has no resource-level permissions (Resource "*"); TerminateJob is authorised on the job.
 */
export async function startFakeBatch(gate: RoleGate, opts: { failSubmit?: () => boolean } = {}): Promise<FakeService & { jobs: Map<string, FakeBatchJob> }> {
  const accepted: FakeService["accepted"] = [];
  const jobs = new Map<string, FakeBatchJob>();
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", async () => {
      const reply = (status: number, body: unknown, type?: string) => {
        res.writeHead(status, { "content-type": "application/json", ...(type ? { "x-amzn-errortype": type } : {}) });
        res.end(JSON.stringify(body));
      };
      const input = raw ? JSON.parse(raw) : {};
      if (req.method === "POST" && req.url === "/v1/describejobs") {
        if (!(await gate.decide("Batch DescribeJobs", { action: "batch:DescribeJobs", resource: "*" })))
          return reply(403, { message: "not authorized to perform batch:DescribeJobs" }, "AccessDeniedException");
        accepted.push({ operation: "DescribeJobs", input });
        const found = (input.jobs as string[]).flatMap((id) => (jobs.has(id) ? [jobs.get(id)!] : []));
        return reply(200, { jobs: found.map((j) => ({ ...j, jobArn: batchArn("job", j.jobId), jobQueue: "q", jobDefinition: "d", startedAt: 0 })) });
      }
      if (req.method === "POST" && req.url === "/v1/terminatejob") {
        if (!(await gate.decide(`Batch TerminateJob ${input.jobId}`, { action: "batch:TerminateJob", resource: batchArn("job", input.jobId) })))
          return reply(403, { message: "not authorized to perform batch:TerminateJob" }, "AccessDeniedException");
        accepted.push({ operation: "TerminateJob", input });
        const job = jobs.get(input.jobId);
        if (!job) return reply(400, { message: `job ${input.jobId} not found` }, "ClientException");
        if (job.status !== "SUCCEEDED" && job.status !== "FAILED") Object.assign(job, { status: "FAILED", statusReason: input.reason });
        return reply(200, {});
      }
      if (req.method !== "POST" || req.url !== "/v1/submitjob") {
        await gate.decide(`Batch ${req.method} ${req.url}`, { action: "batch:UnmodeledRequest", resource: "*" });
        return reply(403, { message: "not modelled by the rehearsal" }, "AccessDeniedException");
      }
      const jobId = crypto.randomUUID();
      const job = batchArn("job", jobId);
      const tags: Record<string, string> = input.tags ?? {};
      const tagContext = Object.keys(tags).length
        ? { ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])), "aws:TagKeys": Object.keys(tags) }
        : {};
      const requests: Request[] = [
        { action: "batch:SubmitJob", resource: batchArn("job-queue", input.jobQueue) },
        // A definition named without its revision runs the latest active one, and AWS authorises the request
        // on that revision's ARN (Batch user guide, "Accounting for job definition revisions"): the graph's
        // definition is at revision 1.
        { action: "batch:SubmitJob", resource: withRevision(batchArn("job-definition", input.jobDefinition)) },
        { action: "batch:SubmitJob", resource: job, context: tagContext },
        ...(Object.keys(tags).length ? [{ action: "batch:TagResource", resource: job, context: tagContext }] : []),
      ];
      if (!(await gate.decide(`Batch SubmitJob ${input.jobName}`, ...requests))) {
        return reply(403, { message: `not authorized to perform batch:SubmitJob` }, "AccessDeniedException");
      }
      if (opts.failSubmit?.()) return reply(500, { message: "rehearsal: Batch is failing" }, "ServerException");
      accepted.push({ operation: "SubmitJob", input });
      jobs.set(jobId, { jobId, jobName: input.jobName, status: "SUBMITTED" });
      reply(200, { jobArn: job, jobName: input.jobName, jobId });
    });
  });
  return { endpoint: await listen(server), accepted, jobs, close: closer(server) };
}

interface QueuedMessage {
  id: string;
  body: string;
  receives: number;
  visibleAt: number;
  receipt?: string;
}

/**
 * SQS over its JSON protocol (what @aws-sdk/client-sqs speaks), at the origin of the queue URLs the graph
 * hands out: each call is decided as sqs:<Operation> on the queue's ARN. It keeps SQS's semantics that the
 * workers rely on: long polling up to WaitTimeSeconds, a visibility timeout per receive (default the
 * queue's), receive counts, ChangeMessageVisibility and DeleteMessage by receipt handle.
 */
export async function startFakeSqs(gate: RoleGate, opts: { visibilitySeconds: number }): Promise<FakeService & { messages: QueuedMessage[]; send(body: string): void }> {
  const accepted: FakeService["accepted"] = [];
  const messages: QueuedMessage[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  const md5 = (s: string) => crypto.createHash("md5").update(s, "utf8").digest("hex");
  const arnOf = (url: string) => {
    const [, account, name] = new URL(url).pathname.split("/");
    return `arn:aws:sqs:${MOCK_REGION}:${account}:${name}`;
  };
  let closing = false;
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", async () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify(body));
      };
      const op = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSQS\./, "");
      const input = raw ? JSON.parse(raw) : {};
      if (!(await gate.decide(`SQS ${op}`, { action: `sqs:${op}`, resource: arnOf(input.QueueUrl) }))) {
        return reply(400, { __type: "com.amazon.coral.service#AccessDeniedException", message: `not authorized to perform sqs:${op}` });
      }
      accepted.push({ operation: op, input });
      const now = Date.now();
      switch (op) {
        case "SendMessage": {
          const m: QueuedMessage = { id: crypto.randomUUID(), body: input.MessageBody, receives: 0, visibleAt: now };
          messages.push(m);
          wake();
          return reply(200, { MessageId: m.id, MD5OfMessageBody: md5(m.body) });
        }
        case "ReceiveMessage": {
          const deadline = now + Math.min(20, input.WaitTimeSeconds ?? 0) * 1000;
          for (;;) {
            const ready = messages.filter((m) => m.visibleAt <= Date.now()).slice(0, input.MaxNumberOfMessages ?? 1);
            if (ready.length > 0 || Date.now() >= deadline || closing) {
              const visibility = (input.VisibilityTimeout ?? opts.visibilitySeconds) * 1000;
              for (const m of ready) {
                m.receives++;
                m.visibleAt = Date.now() + visibility;
                m.receipt = crypto.randomUUID();
              }
              return reply(200, {
                Messages: ready.map((m) => ({ MessageId: m.id, ReceiptHandle: m.receipt, Body: m.body, MD5OfBody: md5(m.body), Attributes: { ApproximateReceiveCount: String(m.receives) } })),
              });
            }
            await new Promise<void>((r) => {
              const w = () => {
                waiters.delete(w);
                clearTimeout(t);
                r();
              };
              const t = setTimeout(w, Math.min(250, Math.max(0, deadline - Date.now())));
              waiters.add(w);
            });
          }
        }
        case "DeleteMessage": {
          const i = messages.findIndex((m) => m.receipt === input.ReceiptHandle);
          if (i >= 0) messages.splice(i, 1);
          return reply(200, {});
        }
        case "ChangeMessageVisibility": {
          const m = messages.find((x) => x.receipt === input.ReceiptHandle);
          if (m) m.visibleAt = Date.now() + input.VisibilityTimeout * 1000;
          return reply(200, {});
        }
        case "GetQueueAttributes":
          return reply(200, {
            Attributes: {
              ApproximateNumberOfMessages: String(messages.filter((m) => m.visibleAt <= now).length),
              ApproximateNumberOfMessagesNotVisible: String(messages.filter((m) => m.visibleAt > now).length),
            },
          });
        default:
          return reply(400, { __type: "com.amazonaws.sqs#UnsupportedOperation", message: `${op} is not modelled by the rehearsal` });
      }
    });
  });
  const endpoint = await listen(server);
  const close = closer(server);
  return {
    endpoint,
    accepted,
    messages,
    send: (body) => {
      messages.push({ id: crypto.randomUUID(), body, receives: 0, visibleAt: Date.now() });
      wake();
    },
    close: async () => {
      closing = true;
      wake();
      await close();
    },
  };
}
