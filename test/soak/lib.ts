/**
 * Shared by the load, fault and soak tests: autocannon runs against a stack this test process started, and
 * reading the server's own memory from /metrics. Traffic only ever goes to 127.0.0.1 servers started here.
 */
import autocannon from "autocannon";

export interface LoadFigures {
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  p50_ms: number;
  p99_ms: number;
  rps: number;
}

/** Resident memory of the server process as it reports it (prom-client default metrics). */
export async function serverRss(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^(?:ganserve_)?process_resident_memory_bytes\s+([0-9.e+]+)/m.exec(text);
  if (!m) throw new Error("no process_resident_memory_bytes in /metrics");
  return Number(m[1]);
}

export async function runLoad(opts: { url: string; path: string; key: string; body: unknown; connections: number; seconds: number; maxRequests?: number }): Promise<LoadFigures> {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(opts.url)) throw new Error(`load tests only target local servers, not ${opts.url}`);
  const statuses: Record<string, number> = {};
  const result = await autocannon({
    url: `${opts.url}${opts.path}`,
    method: "POST",
    connections: opts.connections,
    duration: opts.seconds,
    amount: opts.maxRequests,
    timeout: 30,
    headers: { authorization: `Bearer ${opts.key}`, "content-type": "application/json" },
    body: JSON.stringify(opts.body),
    setupClient: (client) => {
      client.on("response", (status: number) => {
        statuses[status] = (statuses[status] ?? 0) + 1;
      });
    },
  });
  return {
    requests: Object.values(statuses).reduce((a, b) => a + b, 0),
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    rps: Math.round(result.requests.average * 10) / 10,
  };
}

/** Non-429 failures: anything that is not a 2xx, plus socket errors and timeouts. */
export const failures = (f: LoadFigures) =>
  Object.entries(f.statuses).reduce((n, [s, c]) => n + (s.startsWith("2") || s === "429" ? 0 : c), 0) + f.errors + f.timeouts;
