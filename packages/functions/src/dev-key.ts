/**
 * Local mode only (no GANSERVE_API_KEYS, not production): the playground served from this process fetches
 * the generated dev key from `GET /playground/dev-key`, so a first visit runs the demos without pasting it.
 * The key already sits in a file of the person running `npm start`; this hands it only to a browser page of
 * the same origin on the same machine:
 * - the peer is a loopback address (a server started with HOST=0.0.0.0 does not give it to the network);
 * - the Host header names a loopback host, so a page on another name rebound to 127.0.0.1 (DNS rebinding)
 *   does not get it;
 * - the browser says the request is same-origin (Sec-Fetch-Site), so no other site's page can ask for it.
 * Anything else gets the usual 404, as if the route did not exist (which it does not in production).
 */
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Hono } from "hono";
import type { AppEnv } from "./api/env.ts";

export const DEV_KEY_PATH = "/playground/dev-key";

const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d+)?$/i;
const isLoopbackPeer = (address: string | undefined) => !!address && (address === "::1" || /^(::ffff:)?127\./.test(address));

export function mountDevKey(app: Hono<AppEnv>, devKey: string) {
  app.get(DEV_KEY_PATH, async (c, next) => {
    const sameOrigin = c.req.header("sec-fetch-site") === "same-origin";
    const host = c.req.header("host") ?? "";
    if (!sameOrigin || !LOOPBACK_HOST.test(host) || !isLoopbackPeer(getConnInfo(c).remote.address)) return next();
    c.header("Cache-Control", "no-store");
    return c.json({ api_key: devKey, mode: "local" as const });
  });
}
