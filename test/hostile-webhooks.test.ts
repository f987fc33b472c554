/**
 * Hostile webhooks on the real stack in production mode (issue 21, review claim 6 and N7): every internal
 * spelling of a webhook target is refused when the fine-tune is created (4xx, no job), a name that resolves
 * to loopback too, the stack stays up and within a memory budget, and the job record in storage never holds
 * the signing secret in clear. The DNS-rebinding case (a name that turns to loopback between creation and
 * delivery) is in packages/core/test/webhook-ssrf.test.ts, with an injected resolver.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMBEDDED_CREDENTIALS, Storage } from "@ganserve/core/storage/index";
import { jobKeys } from "@ganserve/core/storage/keys";
import { official } from "./fixtures/index.ts";
import { squaresZip, uploadDataset } from "./helpers/finetune.ts";
import { importModel } from "./helpers/models.ts";
import { expectAliveWithinBudget } from "./helpers/budget.ts";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";

const SG = official("stylegan2/z32_w32_res32_skip");
const KEY = `gs_alpha_${randomBytes(18).toString("base64url")}`;
const SECRET_KEY = randomBytes(32).toString("base64");
const SECRET = `whsec_${randomBytes(16).toString("hex")}`;
/** Peak RSS the API process may reach over this file (it serves no inference here). */
const MEMORY_BUDGET = 1024 ** 3;

let stack: Stack;
let storage: Storage;
let datasetId: string;

const createFineTune = (webhook: unknown, name = "hooked") =>
  fetch(`${stack.url}/v1/fine-tunes`, {
    method: "POST",
    headers: { ...auth(stack), "content-type": "application/json" },
    body: JSON.stringify({ base_model: "sg-base", dataset: datasetId, name, steps: 2, batch_size: 2, webhook }),
  });

beforeAll(async () => {
  const dataDir = tempDataDir();
  importModel(path.join(SG, "network-snapshot.pkl"), "sg-base", dataDir);
  stack = await startStack({ dataDir, env: { GANSERVE_PRODUCTION: "true", GANSERVE_API_KEYS: `alpha:${KEY}`, GANSERVE_SECRET_KEY: SECRET_KEY } });
  storage = new Storage({ bucket: "ganserve", region: "us-east-1", endpoint: `http://127.0.0.1:${stack.s3Port}`, credentials: EMBEDDED_CREDENTIALS });
  const up = await uploadDataset(stack, await squaresZip(4), "stylegan2");
  expect(up.status).toBe(200);
  datasetId = up.id;
}, 180_000);
afterAll(async () => {
  storage?.destroy();
  await stack?.stop();
});

describe("webhook targets in production", () => {
  // Review claim 6 and its variants: mapped/translated/NAT64/compatible IPv6, numeric IPv4 spellings.
  const hostile = [
    "https://[::ffff:127.0.0.1]:3999/hook-mapped",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/latest/meta-data/",
    "https://[::7f00:1]/",
    "https://[::ffff:0:7f00:1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[fec0::1]/",
    "https://[fd00:ec2::254]/",
    "https://[::1]/",
    "https://[fe80::1]/",
    "https://[2002:7f00:1::1]/",
    "https://127.0.0.1/",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://0x7f.1/",
    "https://127.1/",
    "https://2852039166/",
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://10.0.0.1/",
    "https://0/",
    "http://93.184.215.14/plain-http",
  ];

  it(`refuses each of ${hostile.length} internal spellings at create with a 4xx, creating no job`, async () => {
    for (const url of hostile) {
      const res = await createFineTune({ url, secret: SECRET });
      const body = await res.json();
      expect(res.status, url).toBe(400);
      expect(body.error, url).toMatchObject({ code: "validation_failed" });
      expect(JSON.stringify(body), url).not.toContain(SECRET);
    }
    const list = await (await fetch(`${stack.url}/v1/fine-tunes`, { headers: auth(stack) })).json();
    expect(list.fine_tunes).toEqual([]);
  });

  it("refuses a host name that resolves to loopback (checked after DNS)", async () => {
    const res = await createFineTune({ url: "https://localhost:3999/hook", secret: SECRET });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/localhost resolves to .*loopback/);
  });

  it("stays up and within its memory budget", async () => {
    await expectAliveWithinBudget(stack, MEMORY_BUDGET, "hostile-webhooks-memory");
  });
});

describe("webhook secrets at rest", () => {
  it("job.json holds the secret only sealed, and the API never returns it", async () => {
    // A public IP literal: allowed in production and needs no DNS. The job is canceled at once.
    const res = await createFineTune({ url: "https://93.184.215.14/hook", secret: SECRET });
    const created = await res.json();
    expect(res.status).toBe(201);
    await fetch(`${stack.url}/v1/fine-tunes/${created.id}/cancel`, { method: "POST", headers: auth(stack) });

    const stored = await storage.get(jobKeys.record(created.id));
    if (!stored) throw new Error("job.json is missing");
    const text = Buffer.from(stored).toString("utf8");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(Buffer.from(SECRET).toString("base64"));
    const record = JSON.parse(text);
    expect(record.webhook.url).toBe("https://93.184.215.14/hook");
    expect(record.webhook.secret).toBeUndefined();
    expect(Object.keys(record.webhook.secret_sealed).sort()).toEqual(["alg", "ct", "iv", "tag"]);
    expect(record.params.webhook).toBeUndefined();

    for (const url of [`/v1/fine-tunes/${created.id}`, "/v1/fine-tunes"]) {
      const body = await (await fetch(`${stack.url}${url}`, { headers: auth(stack) })).text();
      expect(body, url).not.toContain(SECRET);
      expect(body, url).not.toContain("secret_sealed");
    }
    expect(JSON.stringify(created)).not.toContain(SECRET);
  });
});

describe("production start", () => {
  it("refuses to start without GANSERVE_SECRET_KEY, with one line", async () => {
    const err = await startStack({ env: { GANSERVE_PRODUCTION: "true", GANSERVE_API_KEYS: `alpha:${KEY}`, GANSERVE_SECRET_KEY: "" } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/stack exited with 2/);
    const lines = message.split("\n").filter((l) => l.trim());
    expect(lines.filter((l) => l.includes("GANSERVE_SECRET_KEY"))).toEqual([
      expect.stringMatching(/^ganserve: configuration error: GANSERVE_SECRET_KEY is required in production mode/),
    ]);
  });
});
