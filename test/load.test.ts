/**
 * Load, fast form: 32 connections for about 10 s of POST /v1/generate on the shipped StyleGAN2 demo model. Every
 * answer must be a 2xx or a 429 (queue full / rate limited): no 5xx, no socket errors, no timeouts; the
 * server's resident memory must stay flat (after ≤ 1.5 × before + 100 MB). Prints one JSON line of figures.
 * The 30 s form is test/soak/load.test.ts.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startStack, type Stack } from "./helpers/stack.ts";
import { failures, runLoad, serverRss } from "./soak/lib.ts";

const KEY = "gs_load_test_key_0123456789";

let stack: Stack;
beforeAll(async () => {
  // The rate limit is lifted so the figures measure the serving path, not the limiter.
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true", GANSERVE_API_KEYS: KEY, GANSERVE_RATE_LIMIT_RPM: "10000000" } });
});
afterAll(async () => {
  await stack?.stop();
});

it("serves 32 concurrent connections for 10 s with no errors besides 429 and flat memory", async () => {
  const body = { model: "fashion-stylegan2", class_idx: 3, seeds: [1], truncation_psi: 0.7 };
  // Warm-up: model load and first allocations are not growth.
  await runLoad({ url: stack.url, path: "/v1/generate", key: KEY, body, connections: 8, seconds: 1 });
  const before = await serverRss(stack.url);
  const f = await runLoad({ url: stack.url, path: "/v1/generate", key: KEY, body, connections: 32, seconds: 10 });
  const after = await serverRss(stack.url);
  console.log(JSON.stringify({ test: "load-fast", connections: 32, seconds: 10, ...f, rss_before_mb: Math.round(before / 2 ** 20), rss_after_mb: Math.round(after / 2 ** 20) }));
  expect(f.requests).toBeGreaterThan(0);
  expect(f.statuses["200"] ?? 0).toBeGreaterThan(0);
  expect(failures(f), JSON.stringify(f)).toBe(0);
  expect(after).toBeLessThanOrEqual(1.5 * before + 100 * 2 ** 20);
  expect((await fetch(`${stack.url}/health`)).status).toBe(200);
});
