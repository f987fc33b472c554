/**
 * The playground's local dev key (packages/functions/src/dev-key.ts): handed to a same-origin page of a
 * loopback server, and to nothing else: no Sec-Fetch-Site (curl, scripts), another site's page, another
 * Host (DNS rebinding), or a server with configured keys.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "./helpers/stack.ts";

let local: Stack;
let configured: Stack;

beforeAll(async () => {
  [local, configured] = await Promise.all([startStack(), startStack({ env: { GANSERVE_API_KEYS: "configured-key-0123456789abcdef" } })]);
});

afterAll(async () => {
  await Promise.all([local?.stop(), configured?.stop()]);
});

/** GET /playground/dev-key with exactly these headers (http.request, so Host can be anything). */
function devKey(stack: Stack, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const { port } = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/playground/dev-key", headers: { accept: "application/json", ...headers } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("playground dev key", () => {
  it("is handed to a same-origin page of the loopback server", async () => {
    const r = await devKey(local, { host: new URL(local.url).host, "sec-fetch-site": "same-origin" });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ api_key: local.apiKey, mode: "local" });
  });

  it("is not handed to requests that are not a same-origin page on a loopback name", async () => {
    const host = new URL(local.url).host;
    const refused: Record<string, string>[] = [{ host }, { host, "sec-fetch-site": "cross-site" }, { host, "sec-fetch-site": "same-site" }, { host: "rebound.example:80", "sec-fetch-site": "same-origin" }];
    for (const headers of refused) {
      const r = await devKey(local, headers);
      expect(r.status, JSON.stringify(headers)).toBe(404);
      expect(r.body).not.toContain(local.apiKey);
    }
  });

  it("does not exist when the server has configured keys", async () => {
    const r = await devKey(configured, { host: new URL(configured.url).host, "sec-fetch-site": "same-origin" });
    expect(r.status).toBe(404);
  });
});
