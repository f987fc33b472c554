/**
 * Webhook targets (issue 21, review claim 6) and webhook secrets at rest (N7): every spelling of an internal
 * address is refused in production, after DNS resolution, and delivery connects only to the addresses it
 * checked (a DNS answer that changes afterwards cannot reach loopback).
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSettings, SettingsError } from "../src/config.ts";
import { loadSecretKey, SecretBox } from "../src/jobs/secrets.ts";
import { newJobRecord, openWebhook, type StoredWebhook } from "../src/jobs/store.ts";
import { checkWebhookTarget, classifyAddress, resolveWebhookTarget, deliverWebhook, isPrivateAddress, type Resolver, verify } from "../src/jobs/webhook.ts";

/** A hosts file: names to addresses; anything else does not resolve. */
const hosts =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const found = table[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return found;
  };

const PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "::ffff:808:808", "64:ff9b::808:808", "::ffff:0:808:808"];

const INTERNAL: Record<string, string[]> = {
  loopback: ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "::7f00:1", "::127.0.0.1", "0:0:0:0:0:ffff:7f00:1", "[::ffff:7f00:1]"],
  "link-local / metadata": ["169.254.169.254", "::ffff:a9fe:a9fe", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "::ffff:0:a9fe:a9fe", "fe80::1", "fe80::1%eth0", "fd00:ec2::254"],
  private: ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "::ffff:10.0.0.1", "::ffff:c0a8:101", "64:ff9b::a00:1", "fd12:3456::1", "fc00::1"],
  "carrier-grade NAT": ["100.64.0.1", "100.127.255.254", "::ffff:6440:1"],
  unspecified: ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0"],
  "multicast / broadcast": ["224.0.0.1", "239.255.255.250", "255.255.255.255", "ff02::1", "ff05::2"],
  reserved: ["192.0.0.1", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "240.0.0.1", "2001:db8::1", "100::1"],
  "deprecated or tunnelling forms": ["fec0::1", "fec0:0:0:1::1", "::8.8.8.8", "::808:808", "2002:7f00:1::1", "2002:808:808::1", "2001::1", "64:ff9b:1::808:808"],
  invalid: ["", "not-an-ip", "1.2.3.4.5", "::g"],
};

describe("classifyAddress", () => {
  for (const [kind, list] of Object.entries(INTERNAL))
    it(`refuses ${kind}`, () => {
      for (const ip of list) expect(classifyAddress(ip).allowed, ip).toBe(false);
      for (const ip of list) expect(isPrivateAddress(ip), ip).toBe(true);
    });

  it("allows public unicast, and translator forms that embed a public IPv4", () => {
    for (const ip of PUBLIC) expect(classifyAddress(ip), ip).toMatchObject({ allowed: true });
    expect(classifyAddress("::ffff:7f00:1")).toEqual({ allowed: false, range: "ipv4Mapped/loopback", embedded: "127.0.0.1" });
    expect(classifyAddress("64:ff9b::a9fe:a9fe")).toMatchObject({ allowed: false, embedded: "169.254.169.254" });
  });
});

describe("checkWebhookTarget in production", () => {
  const resolve = hosts({
    "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:1b01"],
    "localhost.example.com": ["127.0.0.1"],
    "mapped.example.com": ["::ffff:7f00:1"],
    "mixed.example.com": ["93.184.215.14", "10.0.0.7"],
    "metadata.example.com": ["::ffff:a9fe:a9fe"],
  });
  const refused = (url: string) => expect(resolveWebhookTarget(url, true, resolve), url).rejects.toMatchObject({ code: "validation_failed", status: 400 });

  it("refuses every spelling of loopback and the metadata address in the URL", async () => {
    for (const url of [
      "https://[::ffff:127.0.0.1]/hook",
      "https://[::ffff:7f00:1]:3999/hook-mapped",
      "https://[::ffff:a9fe:a9fe]/latest/meta-data",
      "https://[::ffff:169.254.169.254]/",
      "https://[::7f00:1]/",
      "https://[::127.0.0.1]/",
      "https://[::ffff:0:7f00:1]/",
      "https://[64:ff9b::7f00:1]/",
      "https://[64:ff9b::127.0.0.1]/",
      "https://[fec0::1]/",
      "https://[::1]/",
      "https://[0:0:0:0:0:0:0:1]/",
      "https://[fe80::1]/",
      "https://2130706433/",
      "https://0177.0.0.1/",
      "https://0x7f.1/",
      "https://0x7f000001/",
      "https://127.1/",
      "https://017700000001/",
      "https://2852039166/", // 169.254.169.254
      "https://0xa9.0xfe.0xa9.0xfe/",
      "https://0251.0376.0251.0376/",
      "https://0/",
      "https://127.0.0.1./",
    ])
      await refused(url);
  });

  it("refuses host names that resolve to an internal address, even among public ones", async () => {
    for (const host of ["localhost.example.com", "mapped.example.com", "mixed.example.com", "metadata.example.com", "unknown.example.com"]) await refused(`https://${host}/hook`);
  });

  it("refuses plain http and other schemes", async () => {
    for (const url of ["http://hooks.example.com/hook", "http://2130706433/", "ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://127.0.0.1/"]) await refused(url);
  });

  it("allows public targets and returns the addresses it checked", async () => {
    await expect(resolveWebhookTarget("https://hooks.example.com/hook", true, resolve)).resolves.toEqual(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:1b01"]);
    await expect(resolveWebhookTarget("https://8.8.8.8/hook", true, resolve)).resolves.toEqual(["8.8.8.8"]);
    await expect(resolveWebhookTarget("https://[2606:4700::1111]/hook", true, resolve)).resolves.toEqual(["2606:4700::1111"]);
    await expect(resolveWebhookTarget("https://[::ffff:8.8.8.8]/hook", true, resolve)).resolves.toEqual(["::ffff:808:808"]);
  });

  it("outside production allows http and local receivers (local development)", async () => {
    await expect(resolveWebhookTarget("http://127.0.0.1:9999/hook", false, resolve)).resolves.toEqual(["127.0.0.1"]);
    await expect(resolveWebhookTarget("http://[::ffff:127.0.0.1]:9999/hook", false, resolve)).resolves.toBeDefined();
    await expect(resolveWebhookTarget("ftp://127.0.0.1/x", false, resolve)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("http://127.0.0.1:9999/hook", false, resolve)).resolves.toBeUndefined();
    await expect(checkWebhookTarget("https://[::ffff:127.0.0.1]/hook", true, resolve)).rejects.toMatchObject({ code: "validation_failed" });
  });
});

describe("delivery", () => {
  const SECRET = "delivery-secret-0123456789";
  const received: { url: string; host: string; body: string; signature: string }[] = [];
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ url: req.url ?? "", host: String(req.headers.host), body, signature: String(req.headers["x-ganserve-signature"] ?? "") });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => server.close());

  it("connects only to the addresses it resolved (pinned), signing the body", async () => {
    received.length = 0;
    // Not production: a local receiver is allowed; the name exists only in the injected resolver.
    const res = await deliverWebhook({ url: `http://receiver.invalid:${port}/pinned`, secret: SECRET }, { event: "x" }, { production: false, resolve: hosts({ "receiver.invalid": ["127.0.0.1"] }), attempts: 1 });
    expect(res).toEqual({ ok: true, status: 200 });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ url: "/pinned", host: `receiver.invalid:${port}`, body: '{"event":"x"}' });
    expect(verify(SECRET, received[0].body, received[0].signature)).toBe(true);
  });

  it("refuses at delivery a name that now resolves to loopback (DNS rebinding), without connecting or retrying", async () => {
    received.length = 0;
    let calls = 0;
    // Public when the job was created, loopback by the time it finishes.
    const rebinding: Resolver = async () => (calls++ === 0 ? ["93.184.215.14"] : ["127.0.0.1"]);
    await expect(resolveWebhookTarget(`https://rebind.example.com:${port}/hook`, true, rebinding)).resolves.toEqual(["93.184.215.14"]);
    const started = Date.now();
    const res = await deliverWebhook({ url: `https://rebind.example.com:${port}/hook`, secret: SECRET }, { event: "x" }, { production: true, resolve: rebinding, attempts: 3, retryDelayMs: 1000 });
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(/127\.0\.0\.1 \(loopback\).*not allowed/);
    expect(calls).toBe(2);
    expect(Date.now() - started).toBeLessThan(900);
    expect(received).toHaveLength(0);
  });

  it("refuses mapped-IPv6 and numeric-IPv4 spellings of loopback at delivery", async () => {
    received.length = 0;
    for (const url of [`https://[::ffff:127.0.0.1]:${port}/`, `https://[::ffff:0:7f00:1]:${port}/`, `https://[64:ff9b::7f00:1]:${port}/`, `https://2130706433:${port}/`, `https://0x7f.1:${port}/`]) {
      const res = await deliverWebhook({ url, secret: SECRET }, {}, { production: true, resolve: hosts({}), attempts: 1 });
      expect(res, url).toMatchObject({ ok: false, error: expect.stringMatching(/not allowed/) });
    }
    expect(received).toHaveLength(0);
  });

  it("retries a name that does not resolve yet, then gives up", async () => {
    let calls = 0;
    const flaky: Resolver = async () => {
      calls++;
      throw new Error("EAI_AGAIN");
    };
    const res = await deliverWebhook({ url: "https://later.example.com/hook", secret: SECRET }, {}, { production: true, resolve: flaky, attempts: 2, retryDelayMs: 1 });
    expect(res).toMatchObject({ ok: false, error: expect.stringMatching(/does not resolve/) });
    expect(calls).toBe(2);
  });
});

describe("webhook secrets at rest", () => {
  const box = new SecretBox(randomBytes(32));
  const params = { base_model: "m", dataset: "ds_x", name: "out", steps: 10, webhook: { url: "https://hooks.example.com/h", secret: "clear-secret-0123456789" } } as never;

  it("a new job record holds only ciphertext, IV and tag, and opens back for signing", () => {
    const job = newJobRecord({ id: "ft_sealed01", tenant: "t", family: "stylegan2", baseVersion: "v1", params, secrets: box });
    const text = JSON.stringify(job);
    expect(text).not.toContain("clear-secret-0123456789");
    expect(Object.keys(job.webhook as object).sort()).toEqual(["secret_sealed", "url"]);
    expect(Object.keys((job.webhook as { secret_sealed: object }).secret_sealed).sort()).toEqual(["alg", "ct", "iv", "tag"]);
    expect(job.params).not.toHaveProperty("webhook");
    expect(openWebhook(job.webhook as StoredWebhook, job.id, box)).toEqual({ url: "https://hooks.example.com/h", secret: "clear-secret-0123456789" });
  });

  it("does not open under another job id, another key, or after tampering; refuses to store without a key", () => {
    const job = newJobRecord({ id: "ft_sealed02", tenant: "t", family: "stylegan2", baseVersion: "v1", params, secrets: box });
    const hook = job.webhook as { url: string; secret_sealed: { alg: "A256GCM"; iv: string; tag: string; ct: string } };
    expect(() => openWebhook(hook, "ft_other", box)).toThrow();
    expect(() => openWebhook(hook, job.id, new SecretBox(randomBytes(32)))).toThrow();
    const ct = Buffer.from(hook.secret_sealed.ct, "base64");
    ct[0] ^= 1;
    expect(() => openWebhook({ ...hook, secret_sealed: { ...hook.secret_sealed, ct: ct.toString("base64") } }, job.id, box)).toThrow();
    expect(() => openWebhook(hook, job.id, undefined)).toThrow(/GANSERVE_SECRET_KEY/);
    expect(() => newJobRecord({ id: "ft_x", tenant: "t", family: "stylegan2", baseVersion: "v1", params })).toThrow();
  });

  it("old records with a clear secret still open", () => {
    expect(openWebhook({ url: "https://a.example/h", secret: "legacy-secret-0123456789" }, "ft_old", undefined)).toEqual({ url: "https://a.example/h", secret: "legacy-secret-0123456789" });
  });

  it("the key: generated once into the data dir locally, required in production, never echoed", () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-secret-key-"));
    try {
      const a = loadSecretKey({ GANSERVE_PRODUCTION: false, dataDir });
      expect(a).toHaveLength(32);
      expect(loadSecretKey({ GANSERVE_PRODUCTION: false, dataDir }).equals(a)).toBe(true);
      expect(fs.statSync(path.join(dataDir, "secret-key")).mode & 0o777).toBe(0o600);
      const given = randomBytes(32);
      expect(loadSecretKey({ GANSERVE_PRODUCTION: true, dataDir, GANSERVE_SECRET_KEY: given.toString("base64") }).equals(given)).toBe(true);
      expect(() => loadSecretKey({ GANSERVE_PRODUCTION: true, dataDir })).toThrow(SettingsError);
      expect(() => loadSecretKey({ GANSERVE_PRODUCTION: true, dataDir })).toThrow(/^GANSERVE_SECRET_KEY is required in production mode[^\n]*$/);
      expect(() => loadSettings({ GANSERVE_SECRET_KEY: "c2hvcnQta2V5LXZhbHVl" })).toThrow(/^invalid GANSERVE_SECRET_KEY=\(not shown\): /);
      expect(() => loadSettings({ GANSERVE_SECRET_KEY: "c2hvcnQta2V5LXZhbHVl" })).not.toThrow(/c2hvcnQ/);
      expect(loadSettings({ SST_RESOURCE_SecretKey: JSON.stringify({ value: given.toString("base64") }) }).GANSERVE_SECRET_KEY).toBe(given.toString("base64"));
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
