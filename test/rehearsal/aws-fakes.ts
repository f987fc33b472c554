// Recording stand-ins for the AWS APIs other than S3 that the runtimes call, each deciding the call with the
// runtime's role before answering as the service would. Batch: SubmitJob (REST JSON, POST /v1/submitjob).
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

const batchArn = (kind: string, name: string) => (name.startsWith("arn:") ? name : `arn:aws:batch:${MOCK_REGION}:${MOCK_ACCOUNT}:${kind}/${name}`);

/**
 * SubmitJob is authorised on the job queue, the job definition and the job it creates (job/*); tags on the
 * request are also authorised as batch:TagResource on that job, with aws:RequestTag/<key> and aws:TagKeys.
 */
export async function startFakeBatch(gate: RoleGate, opts: { failSubmit?: () => boolean } = {}): Promise<FakeService> {
  const accepted: FakeService["accepted"] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", async () => {
      const reply = (status: number, body: unknown, type?: string) => {
        res.writeHead(status, { "content-type": "application/json", ...(type ? { "x-amzn-errortype": type } : {}) });
        res.end(JSON.stringify(body));
      };
      const input = raw ? JSON.parse(raw) : {};
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
        { action: "batch:SubmitJob", resource: batchArn("job-definition", input.jobDefinition) },
        { action: "batch:SubmitJob", resource: job, context: tagContext },
        ...(Object.keys(tags).length ? [{ action: "batch:TagResource", resource: job, context: tagContext }] : []),
      ];
      if (!(await gate.decide(`Batch SubmitJob ${input.jobName}`, ...requests))) {
        return reply(403, { message: `not authorized to perform batch:SubmitJob` }, "AccessDeniedException");
      }
      if (opts.failSubmit?.()) return reply(500, { message: "rehearsal: Batch is failing" }, "ServerException");
      accepted.push({ operation: "SubmitJob", input });
      reply(200, { jobArn: job, jobName: input.jobName, jobId });
    });
  });
  return { endpoint: await listen(server), accepted, close: closer(server) };
}
