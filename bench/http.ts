/**
 * `npm run bench:http`: end-to-end HTTP throughput of /v1/generate on two 64² StyleGAN2s (random weights) at
 * concurrency 1, 8 and 32 against the real local stack, plus cold start to first image and peak RSS. The
 * ratio that matters for dynamic batching is images/s at concurrency 8 over concurrency 1, measured in the
 * same run. Traffic goes only to the 127.0.0.1 server this script starts.
 *
 * Predictions: /v1/generate runs as a prediction through the in-process queue and worker; the same requests
 * with GANSERVE_SYNC_INFERENCE=true run inside the request (the path before predictions). Both are measured
 * (p50 at concurrency 1 and 8), and the cold start of the queue path: a fresh stack's first prediction on an
 * empty queue, from its creation to its output. GANSERVE_BENCH_PARTS=queue runs only that comparison.
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
import { torchHttpAnchor } from "./torch-http.ts";

const seconds = Number(process.env.GANSERVE_BENCH_SECONDS ?? 8);
const engine = process.env.GANSERVE_ENGINE ?? "auto";

/**
 * Two 64² StyleGAN2s. "compute-bound" has 128 channels up to 32² (≈1.5 conv GFLOP per image): one image already
 * keeps both cores' FMA units near the CPU floor, so batching can only save the per-pass overhead. "light" has
 * 32 channels (≈0.1 GFLOP), where per-pass and per-request overheads dominate, as they do for most models on a
 * GPU: that is where batching multiplies throughput.
 */
const MODELS = {
  "compute-bound": { z_dim: 128, w_dim: 128, mapping: 4, channel_base: 4096, channel_max: 128 },
  light: { z_dim: 64, w_dim: 64, mapping: 2, channel_base: 1024, channel_max: 32 },
} as const;
type ModelName = keyof typeof MODELS;

const configOf = (m: (typeof MODELS)[ModelName]) => ({
  z_dim: m.z_dim,
  w_dim: m.w_dim,
  c_dim: 0,
  img_resolution: 64,
  img_channels: 3,
  mapping_kwargs: { num_layers: m.mapping },
  synthesis_kwargs: { channel_base: m.channel_base, channel_max: m.channel_max },
});

/** 2·MACs of the synthesis convs (3×3 convs, up-sampling transposed convs at their input size, 1×1 toRGB). */
function convGflop(m: (typeof MODELS)[ModelName]): number {
  const conv = (cin: number, cout: number, k: number, r: number) => 2 * cin * cout * k * k * r * r;
  const ch = (r: number) => Math.min(Math.floor(m.channel_base / r), m.channel_max);
  let f = 0;
  for (let r = 4; r <= 64; r *= 2) {
    if (r > 4) f += conv(ch(r / 2), ch(r), 3, r / 2);
    f += conv(ch(r), ch(r), 3, r) + conv(ch(r), 3, 1, r);
  }
  return f / 1e9;
}

await initBackend("wasm");
const dataDir = tempDataDir();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-http-bench-"));
for (const [name, m] of Object.entries(MODELS)) {
  const config = configOf(m);
  const g = StyleGAN2Generator.randomInit(config, 1);
  const file = path.join(tmp, `${name}.safetensors`);
  fs.writeFileSync(file, writeSafetensors(g.stateDict(), { metadata: { config: JSON.stringify(config) } }));
  g.dispose();
  importModel(file, `bench-${name}`, dataDir, ["--yes"]);
}

const generate = (stack: { url: string; apiKey: string }, model: string) =>
  fetch(`${stack.url}/v1/generate`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model, seeds: [0] }),
  });

/** The queue path against the direct path, each on a fresh stack over the same models; and the queue's cold start. */
async function queueVsDirect() {
  const rows: { path: string; model: ModelName; concurrency: number; p50_ms: number; p99_ms: number; images_per_s: number; non200: number }[] = [];
  let cold: { server_total_s: number; client_ms: number } | undefined;
  for (const [name, env] of [["queue", {}], ["direct", { GANSERVE_SYNC_INFERENCE: "true" }]] as const) {
    const s = await startStack({ dataDir, env: { GANSERVE_ENGINE: engine, GANSERVE_MAX_QUEUE: "256", ...env } });
    try {
      if (name === "queue") {
        // The first message on an empty queue of a process that just started, to its first output.
        const tc = performance.now();
        const created = await fetch(`${s.url}/v1/predictions`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.apiKey}`, "content-type": "application/json", prefer: "wait=0" },
          body: JSON.stringify({ model: "bench-compute-bound", input: { seeds: [0], output: "base64" } }),
        });
        let p = (await created.json()) as { id: string; status: string; metrics: { total_time?: number } };
        while (!["succeeded", "failed", "canceled"].includes(p.status)) {
          await new Promise((r) => setTimeout(r, 20));
          p = await (await fetch(`${s.url}/v1/predictions/${p.id}`, { headers: { authorization: `Bearer ${s.apiKey}` } })).json();
        }
        if (p.status !== "succeeded") throw new Error(`cold prediction ${p.status}`);
        cold = { server_total_s: p.metrics.total_time ?? Number.NaN, client_ms: Math.round(performance.now() - tc) };
      }
      for (const model of Object.keys(MODELS) as ModelName[]) {
        if ((await generate(s, `bench-${model}`)).status !== 200) throw new Error(`bench-${model} does not serve on the ${name} path`);
        for (const connections of [1, 8]) {
          const f = await runLoad({ url: s.url, path: "/v1/generate", key: s.apiKey, body: { model: `bench-${model}`, seeds: [0] }, connections, seconds });
          const ok = f.statuses["200"] ?? 0;
          rows.push({ path: name, model, concurrency: connections, p50_ms: f.p50_ms, p99_ms: f.p99_ms, images_per_s: ok / seconds, non200: f.requests - ok });
        }
      }
    } finally {
      await s.stop();
    }
  }
  console.log(`/v1/generate, queue path (prediction, in-process queue and worker) vs direct path, ${seconds} s per level`);
  console.log("| model | concurrency | p50 queue ms | p50 direct ms | overhead ms | images/s queue | images/s direct |\n| --- | --- | --- | --- | --- | --- | --- |");
  for (const q of rows.filter((r) => r.path === "queue")) {
    const d = rows.find((r) => r.path === "direct" && r.model === q.model && r.concurrency === q.concurrency)!;
    console.log(`| ${q.model} | ${q.concurrency} | ${q.p50_ms} | ${d.p50_ms} | ${q.p50_ms - d.p50_ms} | ${q.images_per_s.toFixed(1)} | ${d.images_per_s.toFixed(1)} |`);
  }
  console.log(`cold start of the queue path (first message on an empty queue to its output): ${cold?.server_total_s} s in the record, ${cold?.client_ms} ms seen by the client`);
  console.log(JSON.stringify({ queue_vs_direct: rows, queue_cold_start: cold }));
}

if (process.env.GANSERVE_BENCH_PARTS === "queue") {
  await queueVsDirect();
  process.exit(0);
}

const t0 = performance.now();
const stack = await startStack({ dataDir, env: { GANSERVE_ENGINE: engine, GANSERVE_MAX_QUEUE: "256" } });
const first = await generate(stack, "bench-compute-bound");
const coldMs = performance.now() - t0;
if (first.status !== 200) throw new Error(`first request failed: ${first.status} ${await first.text()}`);

interface Row {
  model: ModelName;
  concurrency: number;
  images_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non200: number;
}
const rows: Row[] = [];
let peakRss = await serverRss(stack.url);
try {
  for (const model of Object.keys(MODELS) as ModelName[]) {
    if ((await generate(stack, `bench-${model}`)).status !== 200) throw new Error(`bench-${model} does not serve`);
    for (const connections of [1, 8, 32]) {
      const f = await runLoad({ url: stack.url, path: "/v1/generate", key: stack.apiKey, body: { model: `bench-${model}`, seeds: [0] }, connections, seconds });
      peakRss = Math.max(peakRss, await serverRss(stack.url));
      const ok = f.statuses["200"] ?? 0;
      rows.push({ model, concurrency: connections, images_per_s: ok / seconds, p50_ms: f.p50_ms, p99_ms: f.p99_ms, non200: f.requests - ok });
    }
  }
} finally {
  await stack.stop();
}

const ratio = (model: ModelName) => {
  const at = (c: number) => rows.find((r) => r.model === model && r.concurrency === c)!.images_per_s;
  return at(8) / at(1);
};
console.log(`engine ${engine}, 64² StyleGAN2s, ${seconds} s per level, ${os.cpus().length} cores`);
console.log("| model | conv GFLOP/img | concurrency | images/s | GFLOP/s | p50 ms | p99 ms | non-200 |\n| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const gf = convGflop(MODELS[r.model]);
  console.log(`| ${r.model} | ${gf.toFixed(2)} | ${r.concurrency} | ${r.images_per_s.toFixed(1)} | ${(gf * r.images_per_s).toFixed(1)} | ${r.p50_ms} | ${r.p99_ms} | ${r.non200} |`);
}
console.log(`cold start to first image: ${coldMs.toFixed(0)} ms; peak server RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`);
console.log(
  JSON.stringify({
    http: rows,
    batching_ratio_c8_over_c1: Object.fromEntries((Object.keys(MODELS) as ModelName[]).map((m) => [m, Math.round(ratio(m) * 100) / 100])),
    cold_start_ms: Math.round(coldMs),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
  }),
);

await queueVsDirect();

// The anchor: the same models and requests through a small PyTorch http.server (bench/torch-http.ts).
const anchor = await torchHttpAnchor(Object.fromEntries(Object.keys(MODELS).map((m) => [`bench-${m}`, path.join(tmp, `${m}.safetensors`)])), seconds);
if ("error" in anchor) console.log(`PyTorch anchor unavailable: ${anchor.error}`);
else {
  const ips = (rs: { model: string; concurrency: number; images_per_s: number }[], model: string, c: number) => rs.find((r) => r.model === model && r.concurrency === c)?.images_per_s ?? 0;
  console.log(`PyTorch ${anchor.torch} http.server, ${anchor.threads} threads: images/s (ours / torch)`);
  console.log("| model | c1 torch | c8 torch | c8/c1 torch | c1 ours/torch | c8 ours/torch |\n| --- | --- | --- | --- | --- | --- |");
  const summary: Record<string, Record<string, number>> = {};
  for (const m of Object.keys(MODELS) as ModelName[]) {
    const [t1, t8, o1, o8] = [ips(anchor.rows, `bench-${m}`, 1), ips(anchor.rows, `bench-${m}`, 8), ips(rows, m, 1), ips(rows, m, 8)];
    summary[m] = { torch_c1: t1, torch_c8: t8, torch_c8_over_c1: t8 / t1, ours_over_torch_c1: o1 / t1, ours_over_torch_c8: o8 / t8 };
    console.log(`| ${m} | ${t1.toFixed(1)} | ${t8.toFixed(1)} | ${(t8 / t1).toFixed(2)} | ${(o1 / t1).toFixed(2)} | ${(o8 / t8).toFixed(2)} |`);
  }
  console.log(JSON.stringify({ torch_http: anchor.rows, vs_torch: summary }));
}
