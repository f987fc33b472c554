/**
 * Completion webhooks, signed like Stripe's: `X-Ganserve-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">`, so a receiver can check both origin and freshness. In production the target must be https
 * and must not resolve to a private, loopback or link-local address (no SSRF into the VPC).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { lookup } from "node:dns/promises";
import net from "node:net";
import { ApiError } from "../errors.ts";

export const SIGNATURE_HEADER = "X-Ganserve-Signature";

export function sign(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/** For receivers (and tests): true when the header matches the body and is at most `toleranceS` old. */
export function verify(secret: string, body: string, header: string, toleranceS = 300, now = Date.now() / 1000): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isFinite(t) || Math.abs(now - t) > toleranceS || !parts.v1) return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.${body}`).digest("hex"));
  const got = Buffer.from(parts.v1);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

export function isPrivateAddress(ip: string): boolean {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split(".").map(Number);
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  const v6 = ip.toLowerCase();
  if (v6.startsWith("::ffff:")) return isPrivateAddress(v6.slice(7));
  return v6 === "::1" || v6 === "::" || v6.startsWith("fc") || v6.startsWith("fd") || v6.startsWith("fe80");
}

/** Rejects webhook targets that production must never call; checked at job creation and again at delivery. */
export async function checkWebhookTarget(url: string, production: boolean): Promise<void> {
  const u = new URL(url);
  if (!["http:", "https:"].includes(u.protocol)) throw new ApiError("validation_failed", "webhook.url: must be http(s)");
  if (!production) return;
  if (u.protocol !== "https:") throw new ApiError("validation_failed", "webhook.url: must be https");
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const addresses = net.isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  if (addresses.length === 0) throw new ApiError("validation_failed", `webhook.url: ${host} does not resolve`);
  if (addresses.some(isPrivateAddress)) throw new ApiError("validation_failed", "webhook.url: private, loopback and link-local addresses are not allowed");
}

/** Delivers with a few retries; never throws (a webhook failure must not fail the job). */
export async function deliverWebhook(
  hook: { url: string; secret: string },
  payload: unknown,
  opts: { production: boolean; attempts?: number; fetchImpl?: typeof fetch },
): Promise<{ ok: boolean; status?: number; error?: string }> {
  const body = JSON.stringify(payload);
  let last: { ok: boolean; status?: number; error?: string } = { ok: false };
  for (let attempt = 0; attempt < (opts.attempts ?? 3); attempt++) {
    try {
      await checkWebhookTarget(hook.url, opts.production);
      const res = await (opts.fetchImpl ?? fetch)(hook.url, {
        method: "POST",
        headers: { "content-type": "application/json", [SIGNATURE_HEADER]: sign(hook.secret, body) },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(10_000),
      });
      last = { ok: res.ok, status: res.status };
      if (res.ok) return last;
    } catch (e) {
      last = { ok: false, error: (e as Error).message };
    }
    await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
  return last;
}
