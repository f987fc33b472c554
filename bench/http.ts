/**
 * `npm run bench:http`: end-to-end HTTP throughput of /v1/generate on a 64² StyleGAN2 (random weights) at
 * concurrency 1, 8 and 32 against the real local stack, plus cold start to first image and peak RSS. The
 * ratio that matters for dynamic batching is images/s at concurrency 8 over concurrency 1, measured in the
 * same run. Traffic goes only to the 127.0.0.1 server this script starts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeSafetensors } from "../packages/core/src/checkpoints/safetensors.ts";
import { initBackend } from "../packages/core/src/engine/backend.ts";
import { StyleGAN2Generator } from "../packages/core/src/networks/stylegan2/index.ts";
import { importModel } from "../test/helpers/models.ts";
import { startStack, tempDataDir } from "../test/helpers/stack.ts";
import { runLoad, serverRss } from "../test/soak/lib.ts";

const seconds = Number(process.env.GANSERVE_BENCH_SECONDS ?? 8);
const engine = process.env.GANSERVE_ENGINE ?? "auto";
const config = {
  z_dim: 128,
  w_dim: 128,
  c_dim: 0,
  img_resolution: 64,
  img_channels: 3,
  mapping_kwargs: { num_layers: 4 },
  synthesis_kwargs: { channel_base: 4096, channel_max: 128 },
};

await initBackend("wasm");
const g = StyleGAN2Generator.randomInit(config, 1);
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-http-bench-")), "g64.safetensors");
fs.writeFileSync(file, writeSafetensors(g.stateDict(), { metadata: { config: JSON.stringify(config) } }));
g.dispose();

const dataDir = tempDataDir();
importModel(file, "bench-64", dataDir, ["--yes"]);
const t0 = performance.now();
const stack = await startStack({ dataDir, env: { GANSERVE_ENGINE: engine, GANSERVE_MAX_QUEUE: "256" } });
const first = await fetch(`${stack.url}/v1/generate`, {
  method: "POST",
  headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
  body: JSON.stringify({ model: "bench-64", seeds: [0] }),
});
const coldMs = performance.now() - t0;
if (first.status !== 200) throw new Error(`first request failed: ${first.status} ${await first.text()}`);

const rows: { concurrency: number; images_per_s: number; p50_ms: number; p99_ms: number; non200: number }[] = [];
let peakRss = await serverRss(stack.url);
try {
  for (const connections of [1, 8, 32]) {
    let seed = 0;
    const f = await runLoad({ url: stack.url, path: "/v1/generate", key: stack.apiKey, body: { model: "bench-64", seeds: [seed++] }, connections, seconds });
    peakRss = Math.max(peakRss, await serverRss(stack.url));
    const ok = f.statuses["200"] ?? 0;
    rows.push({ concurrency: connections, images_per_s: ok / seconds, p50_ms: f.p50_ms, p99_ms: f.p99_ms, non200: f.requests - ok });
  }
} finally {
  await stack.stop();
}

console.log(`engine ${engine}, 64² StyleGAN2, ${seconds} s per level, ${os.cpus().length} cores`);
console.log("| concurrency | images/s | p50 ms | p99 ms | non-200 |\n| --- | --- | --- | --- | --- |");
for (const r of rows) console.log(`| ${r.concurrency} | ${r.images_per_s.toFixed(1)} | ${r.p50_ms} | ${r.p99_ms} | ${r.non200} |`);
console.log(`cold start to first image: ${coldMs.toFixed(0)} ms; peak server RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`);
console.log(
  JSON.stringify({
    http: rows,
    batching_ratio_c8_over_c1: rows[1].images_per_s / rows[0].images_per_s,
    cold_start_ms: Math.round(coldMs),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
  }),
);
