/**
 * Early answers on reused connections. A 4xx sent before the server read the request body (auth, content
 * type, body limit...) must leave the connection usable (the rest of the body drained) or close it cleanly
 * (`Connection: close`, the rest of the body read and discarded, then a graceful end): never a reset that
 * takes the answer with it. The bad-input suite's hostile bodies are replayed over keep-alive sockets, and
 * Node's own fetch (undici, what the SDK uses) sends the large bodies it must get a 415 and a 413 for.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostileCases, hostileInputs, wireBody, type HostileCase } from "./helpers/hostile-bodies.ts";
import { importFixtureModels } from "./helpers/models.ts";
import { auth, startStack, tempDataDir, type Stack } from "./helpers/stack.ts";


/** GANSERVE_MAX_BODY_BYTES is left at its default, 20 MiB. */
const MAX_BODY_BYTES = 20 * 1024 * 1024;
const MB = 1000 * 1000;

let stack: Stack;
let cases: HostileCase[];

beforeAll(async () => {
  const dataDir = tempDataDir();
  importFixtureModels(dataDir);
  stack = await startStack({ dataDir });
  cases = hostileCases(await hostileInputs(), { maxBodyBytes: MAX_BODY_BYTES });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

type Outcome = { status: number; code?: string; connection?: string } | { error: string };

/** One POST through `agent`; a socket error is an outcome, not a throw, so a run can count them. */
function post(agent: http.Agent, route: string, body: Buffer, headers: Record<string, string>, sockets: Set<unknown>): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(`${stack.url}${route}`, { method: "POST", agent, headers: { ...headers, "content-length": String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      res.on("end", () => {
        let code: string | undefined;
        try {
          code = JSON.parse(Buffer.concat(chunks).toString("utf8")).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode!, code, connection: res.headers.connection });
      });
    });
    req.on("socket", (s) => sockets.add(s));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end(body);
  });
}

describe("early answers on keep-alive connections", () => {
  it.each([1, 4])("replays the bad-input bodies %i socket(s) wide: every request gets its 4xx, no socket errors", async (maxSockets) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets });
    const sockets = new Set<unknown>();
    const wire = cases.map((c) => ({ c, body: Buffer.from(wireBody(c)), headers: { ...auth(stack), "content-type": "application/json", ...c.headers } }));
    const rounds = Math.ceil(128 / wire.length);
    const plan = Array.from({ length: rounds }, () => wire).flat();
    try {
      const outcomes = await Promise.all(plan.map(({ c, body, headers }) => post(agent, c.route, body, headers, sockets)));
      const errors = outcomes.flatMap((o, i) => ("error" in o ? [`${plan[i].c.name}: ${o.error}`] : []));
      console.log(`keep-alive replay, ${maxSockets} socket(s): ${plan.length} requests, ${errors.length} socket errors, ${sockets.size} connections`);
      expect(plan.length).toBeGreaterThanOrEqual(128);
      expect(errors, `${errors.length} socket errors in ${plan.length} requests`).toEqual([]);
      expect(outcomes.map((o) => ("status" in o ? { status: o.status, code: o.code } : o))).toEqual(plan.map(({ c }) => ({ status: c.status, code: c.code })));
      // Connections are reused: only answers that leave a large body unread close theirs.
      expect(sockets.size).toBeLessThan(plan.length / 4);
    } finally {
      agent.destroy();
    }
  });

  it("Node's fetch gets the 415 for a 5 MB body with the wrong content type, and the next request works", async () => {
    const res = await fetch(`${stack.url}/v1/generate`, { method: "POST", headers: { ...auth(stack), "content-type": "text/plain" }, body: "x".repeat(5 * MB) });
    expect(res.status).toBe(415);
    expect((await res.json()).error.code).toBe("unsupported_media_type");
    const next = await fetch(`${stack.url}/v1/models`, { headers: auth(stack) });
    expect(next.status).toBe(200);
  });

  it("Node's fetch gets the 413 for a 25 MB body, and the next request works", async () => {
    const body = JSON.stringify({ model: "cg-fixture", image: "A".repeat(25 * MB) });
    const res = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe("payload_too_large");
    const next = await fetch(`${stack.url}/v1/models`, { headers: auth(stack) });
    expect(next.status).toBe(200);
  });

  it("Node's fetch gets the 413 for a 25 MB chunked body (no Content-Length), and the next request works", async () => {
    const chunk = new TextEncoder().encode("A".repeat(MB));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 25) c.enqueue(chunk);
        else c.close();
      },
    });
    const res = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe("payload_too_large");
    const next = await fetch(`${stack.url}/v1/models`, { headers: auth(stack) });
    expect(next.status).toBe(200);
  });
});
