/**
 * Prediction webhooks: signed like fine-tune webhooks, `start` and `completed` always sent, `output` at most
 * one per 500 ms, in order, and only the events of webhook_events_filter.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sealWebhook } from "../src/jobs/store.ts";
import { SecretBox } from "../src/jobs/secrets.ts";
import { SIGNATURE_HEADER, verify } from "../src/jobs/webhook.ts";
import { createLogger } from "../src/log.ts";
import { PredictionWebhooks } from "../src/predictions/events.ts";
import type { Prediction } from "../src/predictions/schema.ts";
import { newPredictionRecord, type PredictionRecord } from "../src/predictions/store.ts";

const SECRET = "whsec_0123456789abcdef";
const secrets = new SecretBox(randomBytes(32));
let server: http.Server;
let url: string;
const received: { event: string; status: string; signed: boolean }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const parsed = JSON.parse(body) as { event: string; prediction: Prediction };
      received.push({ event: parsed.event, status: parsed.prediction.status, signed: verify(SECRET, body, String(req.headers[SIGNATURE_HEADER.toLowerCase()])) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => server?.close());

const record = (id: string, status: PredictionRecord["status"], filter?: PredictionRecord["webhook_events_filter"]): PredictionRecord => ({
  ...newPredictionRecord(
    { id, tenant: "t", family: "stylegan2", model: "m", version: "v1", task: "generate", input: {}, webhook: sealWebhook({ url, secret: SECRET }, id, secrets), webhook_events_filter: filter },
    Date.now(),
    60_000,
  ),
  status,
});

const hooks = () =>
  new PredictionWebhooks({ production: false, secrets, log: createLogger("silent"), view: async (rec) => ({ status: rec.status }) as Prediction });

it("sends start, throttled output and completed, signed and in order", async () => {
  received.length = 0;
  const w = hooks();
  const id = "p000000000000000000001";
  w.notify(record(id, "processing"), "start");
  for (let i = 0; i < 20; i++) w.notify(record(id, "processing"), "output");
  w.notify(record(id, "succeeded"), "completed");
  await w.idle();
  expect(received[0]).toMatchObject({ event: "start", status: "processing" });
  expect(received[received.length - 1]).toMatchObject({ event: "completed", status: "succeeded" });
  // 20 output notifications within far less than 500 ms: at most the first goes out.
  expect(received.filter((r) => r.event === "output").length).toBeLessThanOrEqual(1);
  expect(received.every((r) => r.signed)).toBe(true);
});

it("sends only the events of webhook_events_filter", async () => {
  received.length = 0;
  const w = hooks();
  const id = "p000000000000000000002";
  w.notify(record(id, "processing", ["completed"]), "start");
  w.notify(record(id, "succeeded", ["completed"]), "completed");
  await w.idle();
  expect(received.map((r) => r.event)).toEqual(["completed"]);
});
