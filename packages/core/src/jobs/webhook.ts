/**
 * Completion webhooks, signed like Stripe's: `X-Ganserve-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">`, so a receiver can check both origin and freshness.
 *
 * Target policy (no SSRF into the VPC):
 * - Production: https only, and every address the host resolves to must be public unicast (ipaddr.js's
 *   `range()`; private, loopback, link-local, unique-local, carrier-grade NAT, multicast, broadcast, reserved,
 *   documentation, benchmarking, discard and deprecated site-local are refused). IPv6 forms that a translator
 *   turns into IPv4 (IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`)
 *   are judged by the IPv4 they embed; deprecated or tunnelling forms (IPv4-compatible `::a.b.c.d`, 6to4,
 *   Teredo, local-use NAT64 `64:ff9b:1::/48`) are refused outright. Decimal, octal and hex IPv4 spellings
 *   (`2130706433`, `0177.0.0.1`, `0x7f.1`) are normalised by the URL parser before the check.
 *   The check runs at job creation and again at delivery; delivery resolves the host once, checks every
 *   address, and connects only to those addresses (a custom `lookup`), so a DNS answer that changes between
 *   the check and the connection (rebinding) cannot reach an internal address.
 * - Not production (local development): http and any address are allowed, so a receiver on localhost works;
 *   delivery still connects only to the addresses it resolved once.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import ipaddr from "ipaddr.js";
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

export interface AddressVerdict {
  allowed: boolean;
  /** ipaddr.js's range name ("unicast", "loopback", "ipv4Mapped", …), or "invalid". */
  range: string;
  /** The IPv4 address an IPv6 form embeds, when the verdict was taken on it. */
  embedded?: string;
}

/** The IPv4 in the low 32 bits of an IPv6 address. */
const low32 = (v6: ipaddr.IPv6) => {
  const p = v6.parts;
  return new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
};
const NAT64_WELL_KNOWN = ipaddr.parseCIDR("64:ff9b::/96") as [ipaddr.IPv6, number];
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96") as [ipaddr.IPv6, number];

/**
 * IPv6 text as the WHATWG URL parser (and inet_pton) reads it: ipaddr.js would read `::8.8.8.8` as the
 * IPv4-mapped `::ffff:808:808`, where the socket layer connects to the IPv4-compatible `::808:808`.
 */
function canonical(ip: string): string {
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

/** Whether production may call this address (see the module comment for the policy). */
export function classifyAddress(ip: string): AddressVerdict {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(canonical(ip.replace(/^\[|\]$/g, "")));
  } catch {
    return { allowed: false, range: "invalid" };
  }
  if (addr.kind() === "ipv4") {
    const range = addr.range();
    return { allowed: range === "unicast", range };
  }
  const v6 = addr as ipaddr.IPv6;
  const range = v6.range();
  const embedded =
    range === "ipv4Mapped" || range === "rfc6145" || (range === "rfc6052" && v6.match(NAT64_WELL_KNOWN))
      ? low32(v6)
      : range === "unicast" && v6.match(IPV4_COMPATIBLE)
        ? low32(v6)
        : undefined;
  if (embedded) {
    const inner = embedded.range();
    // IPv4-compatible addresses are deprecated (RFC 4291 §2.5.5.1): refused whatever they embed.
    const allowed = inner === "unicast" && range !== "unicast";
    return { allowed, range: range === "unicast" ? "ipv4Compatible" : inner === "unicast" ? range : `${range}/${inner}`, embedded: embedded.toString() };
  }
  return { allowed: range === "unicast", range };
}

/** True when production must not call this address (kept for callers of the old name). */
export function isPrivateAddress(ip: string): boolean {
  return !classifyAddress(ip).allowed;
}

/** Resolves a host name to every address it has (the system resolver by default; tests inject their own). */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

const refused = (detail: string) => new ApiError("validation_failed", `webhook.url: ${detail}; private, loopback and link-local addresses are not allowed`);

/**
 * Checks a webhook target and returns the addresses a delivery may connect to. Production: https, and every
 * resolved address must be allowed (see the module comment); elsewhere only the scheme is checked.
 */
export async function resolveWebhookTarget(url: string, production: boolean, resolve: Resolver = systemResolver): Promise<string[]> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ApiError("validation_failed", "webhook.url: not a URL");
  }
  if (!["http:", "https:"].includes(u.protocol)) throw new ApiError("validation_failed", "webhook.url: must be http(s)");
  if (production && u.protocol !== "https:") throw new ApiError("validation_failed", "webhook.url: must be https");
  const host = u.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (net.isIP(host)) addresses = [host];
  else if (!production) return [];
  else addresses = await resolve(host).catch(() => []);
  if (!production) return addresses;
  if (addresses.length === 0) throw new ApiError("validation_failed", `webhook.url: ${host} does not resolve`);
  for (const a of addresses) {
    const v = classifyAddress(a);
    if (!v.allowed) throw refused(`${a === host ? host : `${host} resolves to ${a}`} (${v.range}${v.embedded ? `, embeds ${v.embedded}` : ""})`);
  }
  return addresses;
}

/** Checks a webhook target (at job creation); see resolveWebhookTarget. */
export async function checkWebhookTarget(url: string, production: boolean, resolve: Resolver = systemResolver): Promise<void> {
  await resolveWebhookTarget(url, production, resolve);
}

/** A `lookup` for http(s).request that answers only with the given, already checked addresses. */
export function pinnedLookup(addresses: string[]): net.LookupFunction {
  return ((_host: string, options: { family?: number | string; all?: boolean } | number, callback: (...args: unknown[]) => void) => {
    const opts = typeof options === "number" ? { family: options } : (options ?? {});
    const family = opts.family === "IPv4" ? 4 : opts.family === "IPv6" ? 6 : Number(opts.family ?? 0);
    const list = addresses.map((address) => ({ address, family: net.isIPv6(address) ? 6 : 4 })).filter((a) => !family || a.family === family);
    process.nextTick(() => {
      if (!list.length) return callback(Object.assign(new Error(`no IPv${family} address among the checked ones`), { code: "ENOTFOUND" }));
      if (opts.all) callback(null, list);
      else callback(null, list[0].address, list[0].family);
    });
  }) as unknown as net.LookupFunction;
}

/** One POST; resolves with the status code as soon as it arrives (the response body is not read). */
function post(url: URL, headers: Record<string, string>, body: string, addresses: string[], timeoutMs: number): Promise<number> {
  const mod = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        // IP literals never reach lookup (they were checked as they are); host names connect only to
        // the addresses that were checked.
        ...(addresses.length ? { lookup: pinnedLookup(addresses) } : {}),
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export interface DeliveryOptions {
  production: boolean;
  attempts?: number;
  /** Host name resolution for the check and the connection (default: the system resolver). */
  resolve?: Resolver;
  timeoutMs?: number;
  /** First retry delay; doubles after each attempt. */
  retryDelayMs?: number;
}

/** Delivers with a few retries; never throws (a webhook failure must not fail the job). */
export async function deliverWebhook(hook: { url: string; secret: string }, payload: unknown, opts: DeliveryOptions): Promise<{ ok: boolean; status?: number; error?: string }> {
  const body = JSON.stringify(payload);
  const resolve = opts.resolve ?? systemResolver;
  let last: { ok: boolean; status?: number; error?: string } = { ok: false };
  for (let attempt = 0; attempt < (opts.attempts ?? 3); attempt++) {
    try {
      let addresses = await resolveWebhookTarget(hook.url, opts.production, resolve);
      const url = new URL(hook.url);
      // Outside production the check resolves nothing; the connection still uses one resolution.
      if (!addresses.length && !net.isIP(url.hostname.replace(/^\[|\]$/g, ""))) addresses = await resolve(url.hostname);
      const status = await post(url, { "content-type": "application/json", [SIGNATURE_HEADER]: sign(hook.secret, body) }, body, addresses, opts.timeoutMs ?? 10_000);
      last = { ok: status >= 200 && status < 300, status };
      if (last.ok) return last;
    } catch (e) {
      last = { ok: false, error: (e as Error).message };
      // A refused target stays refused (a name that does not resolve may resolve on the next try).
      if (e instanceof ApiError && !/does not resolve/.test(e.message)) return last;
    }
    if (attempt + 1 < (opts.attempts ?? 3)) await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? 500) * 2 ** attempt));
  }
  return last;
}
