/**
 * Hostile images against the API's memory (issue 21, review claim 5): a 57 KB flat 4096² PNG through translate
 * with `preprocess=none` took the stack from 0.29 to 3.9 GB and kept it there, four at once peaked at 13.1 GB.
 * Now a CycleGAN's network input is admitted by its estimated cost (inference/admission.ts: pixels × the
 * network's width, against GANSERVE_MAX_PASS_BYTES), read from the header before anything is decoded; what is
 * admitted runs, and the memory a large pass took is given back.
 *
 * Budgets (documented in docs/performance.md, "Memory"): the stack's peak RSS over this file stays under its
 * baseline (demo models loaded and warm) + 1 GiB, and after the bursts its RSS is back within 400 MiB of that
 * baseline. The stack runs with the allocator settings `npm start` gives a server
 * (packages/functions/bin/malloc-env.mjs): with glibc's defaults its threads kept 200-440 MiB of freed memory.
 */
import fs from "node:fs";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auth, memoryOf, startStack, type Stack } from "./helpers/stack.ts";

const MiB = 1024 ** 2;
const PEAK_BUDGET = 1024 * MiB;
const RETAINED_BUDGET = 400 * MiB;

let stack: Stack;
let baseline: number;
const images: Record<string, Uint8Array> = {};

const flat = (width: number, height: number, format: "png" | "jpeg" | "webp") =>
  sharp({ create: { width, height, channels: 3, background: { r: 230, g: 200, b: 40 } } })
    .toFormat(format)
    .toBuffer()
    .then((b) => new Uint8Array(b));

function translate(fields: Record<string, string>, file: { field: string; bytes: Uint8Array; type: string }) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.set(file.field, new Blob([file.bytes.slice()], { type: file.type }), "upload");
  return fetch(`${stack.url}/v1/translate`, { method: "POST", headers: auth(stack), body: form });
}

const cycle = (preprocess: string, bytes: Uint8Array, type = "image/png") =>
  translate({ model: "emoji-cyclegan", preprocess, format: "jpeg" }, { field: "image", bytes, type });

const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
/** every reading so far, and the allocator settings the stack runs with: what a failed budget is read against */
const readings: string[] = [];
const report = (what: string) => {
  const m = memoryOf(stack.pid);
  readings.push(`hostile memory: ${what}: RSS ${mib(m.rss)}, peak ${mib(m.peak)} (baseline ${mib(baseline)})`);
  console.log(readings.at(-1));
  return m;
};
const tunables = () =>
  fs
    .readFileSync(`/proc/${stack.pid}/environ`, "utf8")
    .split("\0")
    .filter((v) => v.startsWith("GLIBC_TUNABLES=") || v.startsWith("MALLOC_"))
    .join(" ") || "no glibc malloc settings";

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
  images.png4096 = await flat(4096, 4096, "png");
  images.png1024 = await flat(1024, 1024, "png");
  images.png8192 = await flat(8192, 8192, "png");
  images.jpeg8192 = await flat(8192, 8192, "jpeg");
  images.webp8192 = await flat(8192, 8192, "webp");
  // SPADE label map: 4096² of class ids 0..7 in bands.
  const ids = Buffer.alloc(4096 * 4096);
  for (let y = 0; y < 4096; y++) ids.fill(y >> 9, y * 4096, (y + 1) * 4096);
  images.label4096 = new Uint8Array(await sharp(ids, { raw: { width: 4096, height: 4096, channels: 1 } }).toColourspace("b-w").png().toBuffer());
  // Warm both models once at their own size, then take the baseline.
  expect((await cycle("resize", await flat(32, 32, "png"))).status).toBe(200);
  const label64 = new Uint8Array(await sharp(Buffer.alloc(64 * 64), { raw: { width: 64, height: 64, channels: 1 } }).toColourspace("b-w").png().toBuffer());
  expect((await translate({ model: "scenes-spade", format: "png" }, { field: "label_map", bytes: label64, type: "image/png" })).status).toBe(200);
  baseline = memoryOf(stack.pid).rss;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("translate admits by cost, before decoding", () => {
  it("refuses a flat 4096² PNG with preprocess=none: 413 with the model's limit", async () => {
    expect(images.png4096.length).toBeLessThan(300_000); // a few hundred KB of upload
    const res = await cycle("none", images.png4096);
    expect(res.status).toBe(413);
    const { error } = await res.json();
    expect(error.code).toBe("image_too_large");
    expect(error.details).toMatchObject({ limit: "network_pixels", net_width: 4096, net_height: 4096 });
    expect(error.details.max_net_pixels).toBeLessThan(4096 * 4096);
    expect(error.details.max_net_side ** 2).toBeLessThanOrEqual(error.details.max_net_pixels);
    report("after one 4096² preprocess=none");
  });

  it("refuses four at once, and a load_size that asks for the same", async () => {
    const all = await Promise.all(Array.from({ length: 4 }, () => cycle("none", images.png4096)));
    expect(all.map((r) => r.status)).toEqual([413, 413, 413, 413]);
    const big = await translate({ model: "emoji-cyclegan", preprocess: "resize", load_size: "2048", format: "jpeg" }, { field: "image", bytes: images.png4096, type: "image/png" });
    expect(big.status).toBe(413);
    expect((await big.json()).error.details).toMatchObject({ limit: "network_pixels", net_width: 2048 });
  });

  it.each(["png", "jpeg", "webp"] as const)("refuses an 8192² flat %s over GANSERVE_MAX_PIXELS from its header", async (format) => {
    for (const preprocess of ["none", "resize"]) {
      const res = await cycle(preprocess, images[`${format}8192`], `image/${format}`);
      expect(res.status).toBe(413);
      const { error } = await res.json();
      expect(error.code).toBe("image_too_large");
      expect(error.details).toMatchObject({ width: 8192, height: 8192, max_pixels: 4096 * 4096 });
    }
  });
});

describe("what is admitted runs within the budget and gives its memory back", () => {
  it("serves a 4096² upload with the default preprocess (the network runs at 32²), four at once", async () => {
    const all = await Promise.all(Array.from({ length: 4 }, () => cycle("resize", images.png4096)));
    for (const r of all) {
      expect(r.status).toBe(200);
      expect((await r.json()).params).toMatchObject({ width: 4096, height: 4096, net_size: [32, 32] });
    }
    report("after four 4096² preprocess=resize");
  }, 120_000);

  it("serves a 1024² upload with preprocess=none (a large-but-allowed pass), twice at once", async () => {
    const all = await Promise.all([cycle("none", images.png1024), cycle("none", images.png1024)]);
    for (const r of all) {
      expect(r.status).toBe(200);
      expect((await r.json()).params).toMatchObject({ net_size: [1024, 1024] });
    }
    report("after two 1024² preprocess=none");
  }, 120_000);

  it("serves a 4096² SPADE label map (the generator runs at its 64²)", async () => {
    const res = await translate({ model: "scenes-spade", format: "jpeg" }, { field: "label_map", bytes: images.label4096, type: "image/png" });
    expect(res.status).toBe(200);
    expect((await res.json()).params).toMatchObject({ width: 4096, height: 4096 });
    report("after a 4096² label map");
  }, 120_000);

  it("stays up, peaks under baseline + 1 GiB, and returns near its baseline", async () => {
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);
    // Give the allocators and the GC a moment to hand memory back.
    await new Promise((r) => setTimeout(r, 3000));
    const m = report("at the end");
    const why = [...readings, `stack environment: ${tunables()}`].join("\n");
    expect(m.peak - baseline, why).toBeLessThan(PEAK_BUDGET);
    expect(m.rss - baseline, why).toBeLessThan(RETAINED_BUDGET);
  });
});
