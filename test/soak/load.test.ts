/**
 * Load, soak form (`npm run test:soak`): 32 connections for 30 s of POST /v1/generate with the rate limit
 * lifted (no errors besides 429, memory flat), then 30 s more with GANSERVE_RATE_LIMIT_RPM=600 on a second
 * stack: the excess must come back as 429 rate_limited with Retry-After, and nothing else may fail.
 */
import { afterEach, expect, it } from "vitest";
import { startStack, type Stack } from "../helpers/stack.ts";
import { failures, runLoad, serverRss } from "./lib.ts";

const KEY = "gs_soak_test_key_0123456789";
const body = { model: "fashion-stylegan2", class_idx: 3, seeds: [1], truncation_psi: 0.7 };
let stack: Stack | undefined;

async function start(rpm: string) {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: KEY, GANSERVE_RATE_LIMIT_RPM: rpm } });
  return stack;
}
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

it("30 s at 32 connections: no errors besides 429, memory flat", async () => {
  const s = await start("10000000");
  await runLoad({ url: s.url, path: "/v1/generate", key: KEY, body, connections: 8, seconds: 2 });
  const before = await serverRss(s.url);
  const f = await runLoad({ url: s.url, path: "/v1/generate", key: KEY, body, connections: 32, seconds: 30 });
  const after = await serverRss(s.url);
  console.log(JSON.stringify({ test: "load-soak", connections: 32, seconds: 30, ...f, rss_before_mb: Math.round(before / 2 ** 20), rss_after_mb: Math.round(after / 2 ** 20) }));
  expect(failures(f), JSON.stringify(f)).toBe(0);
  expect(f.statuses["200"] ?? 0).toBeGreaterThan(0);
  expect(after).toBeLessThanOrEqual(1.5 * before + 100 * 2 ** 20);
}, 180_000);

it("30 s at 32 connections with 600 rpm: the excess is 429 rate_limited with Retry-After, nothing else fails", async () => {
  const s = await start("600");
  const f = await runLoad({ url: s.url, path: "/v1/generate", key: KEY, body, connections: 32, seconds: 30 });
  console.log(JSON.stringify({ test: "load-soak-rate-limited", rpm: 600, connections: 32, seconds: 30, ...f }));
  expect(failures(f), JSON.stringify(f)).toBe(0);
  expect(f.statuses["429"] ?? 0).toBeGreaterThan(0);
  // 600 rpm with a 100-request burst allows at most 100 + 30 s × 10/s successes.
  expect(f.statuses["200"] ?? 0).toBeLessThanOrEqual(100 + 30 * 10 + 10);
  const res = await fetch(`${s.url}/v1/generate`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status).toBe(429);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect((await res.json()).error.code).toBe("rate_limited");
}, 180_000);
