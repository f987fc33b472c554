/**
 * Hostile input, property-based (fast-check), bounded so the file stays within a few seconds of requests:
 *  - request bodies for every POST route: random JSON, the right keys with wrong types, huge numbers, unicode;
 *  - images for /v1/translate: random bytes and PNG/JPEG files with mutated headers;
 *  - dataset zips: a valid zip with mutated bytes or cut short, uploaded and finalized;
 *  - checkpoint files (in-process): mutated safetensors / torch zip / legacy torch / network pickle bytes.
 * The properties: no 5xx from the API (a 429 from the queue is allowed), the process stays up and still
 * serves a good request afterwards, and loadCheckpoint fails only with CheckpointError. Seeds are fixed so a
 * failure reproduces; the counts of cases run are printed as one JSON line.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointError, loadCheckpoint } from "@ganserve/core/checkpoints/index";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import { startStack, type Stack } from "./helpers/stack.ts";
import { postUpload, type UploadForm } from "./helpers/upload.ts";
import { official } from "./fixtures/index.ts";

// The official checkpoint in every format the importer reads (the served model is the shipped emoji-cyclegan).
const SG = official("stylegan2/z32_w32_res32_skip");
const KEY = "gs_fuzz_test_key_0123456789";
const SEED = 20240611;
const ran: Record<string, number> = {};

let stack: Stack;
let png: Uint8Array;
let jpeg: Uint8Array;
let zip: Uint8Array;
let datasetId: string;

beforeAll(async () => {
  // Each dataset created without size_bytes holds up to GANSERVE_MAX_UPLOAD_BYTES of the dataset quota while its
  // upload form is open; the fuzzer creates hundreds and uploads to few, so its tenant gets a quota that fits.
  stack = await startStack({
    env: {
      GANSERVE_DEMO_MODELS: "true",
      GANSERVE_API_KEYS: KEY,
      GANSERVE_RATE_LIMIT_RPM: "10000000",
      GANSERVE_MAX_BODY_BYTES: String(1 << 20),
      GANSERVE_TENANT_DATASET_BYTES: String(2 ** 50),
    },
  });
  const img = sharp({ create: { width: 24, height: 24, channels: 3, background: "#4080c0" } });
  png = new Uint8Array(await img.clone().png().toBuffer());
  jpeg = new Uint8Array(await img.clone().jpeg().toBuffer());
  zip = await buildDatasetZip([
    { path: "images/a.png", bytes: png },
    { path: "images/b.png", bytes: png },
  ]);
  const created = await call("POST", "/v1/datasets", { layout: "stylegan2" });
  datasetId = ((await created.json()) as { id: string }).id;
});
afterAll(async () => {
  console.log(JSON.stringify({ test: "fuzz", cases: ran, total: Object.values(ran).reduce((a, b) => a + b, 0) }));
  await stack?.stop();
});

const call = (method: string, route: string, body?: unknown, raw?: BodyInit, contentType = "application/json") =>
  fetch(`${stack.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body !== undefined || raw !== undefined ? { "content-type": contentType } : {}) },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });

/** The API's side of every property: a 4xx/2xx in the error shape, never a 5xx (queue-full 429 allowed). */
async function expectHandled(res: Response, what: string) {
  const text = await res.text();
  expect(res.status, `${what} → ${res.status} ${text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400) expect(JSON.parse(text).error.code, what).toMatch(/^[a-z_]+$/);
}

/**
 * A body past GANSERVE_MAX_BODY_BYTES on its own connection: the server answers 413 and may close the socket
 * while the client still writes, which would poison a pooled fetch connection for the next case. 0 = the
 * server closed before the status line arrived (also a refusal; the health check at the end covers it).
 */
function oversized(route: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(`${stack.url}${route}`, { method: "POST", agent: false, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.end("x".repeat((1 << 20) + 10));
  });
}

const count = (name: string) => (ran[name] = (ran[name] ?? 0) + 1);

/** Values that break naive handlers: wrong types, huge and non-finite-looking numbers, odd unicode. */
const nasty = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.constantFrom("", "0-999999999", "-1", "1e309", "NaN", "\u0000", "\ud800", "../../etc/passwd", "a".repeat(5000), `ds_${"A".repeat(40)}`, "ft_../../x"),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e308, -0, 4294967296, 0.5),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.array(fc.integer({ min: -5, max: 2 ** 32 }), { maxLength: 70 }),
);

const ROUTES: { route: () => string; keys: string[] }[] = [
  { route: () => "/v1/generate", keys: ["model", "version", "seeds", "truncation_psi", "noise_mode", "class_idx", "style_mix", "format", "quality", "output"] },
  { route: () => "/v1/generate/interpolate", keys: ["model", "version", "seed_a", "seed_b", "frames", "truncation_psi", "format", "output"] },
  { route: () => "/v1/translate", keys: ["model", "version", "image", "label_map", "direction", "preprocess", "load_size", "seed", "format"] },
  { route: () => "/v1/datasets", keys: ["name", "layout", "size_bytes"] },
  { route: () => `/v1/datasets/${datasetId}/finalize`, keys: [] },
  { route: () => "/v1/fine-tunes", keys: ["base_model", "version", "dataset", "name", "steps", "batch_size", "learning_rate", "resolution", "seed", "options", "webhook"] },
  { route: () => "/v1/fine-tunes/ft_zzzzzzzzzzzzzzzzzzzz/cancel", keys: [] },
];

describe("request bodies", () => {
  it.each(ROUTES.map((r) => [r.route.toString().match(/\/v1[^"`]*/)?.[0] ?? "", r] as const))("POST %s", async (_name, { route, keys }) => {
    const known = keys.length
      ? fc.dictionary(fc.constantFrom(...keys), nasty, { maxKeys: keys.length })
      : fc.dictionary(fc.string({ maxLength: 8 }), nasty, { maxKeys: 3 });
    // Plausible bodies that get past the first checks, so deeper validation is reached too.
    const plausible = fc.record({ model: fc.constantFrom("emoji-cyclegan", "zz-missing"), seeds: nasty, seed_a: nasty, seed_b: nasty, frames: nasty, truncation_psi: nasty, image: nasty });
    const body = fc.oneof(fc.jsonValue({ maxDepth: 3 }), known, plausible);
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (b, asText) => {
        count("bodies");
        // Half the time the body is mangled text: not JSON at all, or cut mid-way.
        const raw = asText ? JSON.stringify(b).slice(0, Math.max(1, JSON.stringify(b).length - 1)) : undefined;
        await expectHandled(await call("POST", route(), raw === undefined ? b : undefined, raw), `${route()} ${raw ?? JSON.stringify(b)}`.slice(0, 400));
      }),
      { numRuns: 30, seed: SEED },
    );
  });

  it("wrong content types and oversized bodies", async () => {
    for (const [type, raw] of [["text/plain", "{}"], ["application/x-www-form-urlencoded", "model=cg-fuzz"], ["multipart/form-data; boundary=zz", "--zz\r\nbroken"]] as const)
      for (const r of ROUTES) {
        count("content-types");
        await expectHandled(await call("POST", r.route(), undefined, raw, type), `${r.route()} ${type}`);
      }
    for (const r of ROUTES) {
      count("oversized");
      expect([413, 0]).toContain(await oversized(r.route()));
    }
  });
});

describe("images", () => {
  const mutate = (base: () => Uint8Array, upTo: number) =>
    fc.array(fc.record({ at: fc.nat({ max: upTo }), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }).map((edits) => {
      const b = base().slice();
      for (const e of edits) b[e.at % b.length] = e.byte;
      return b;
    });
  it("random bytes and PNG/JPEG with mutated headers never make /v1/translate fail with a 5xx", async () => {
    const image = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }),
      mutate(() => png, 64),
      mutate(() => jpeg, 200),
      fc.nat({ max: 400 }).map((n) => png.slice(0, n)),
    );
    await fc.assert(
      fc.asyncProperty(image, fc.boolean(), async (bytes, multipart) => {
        count("images");
        let res: Response;
        if (multipart) {
          const form = new FormData();
          form.set("model", "emoji-cyclegan");
          form.set("image", new Blob([bytes]), "x.png");
          res = await fetch(`${stack.url}/v1/translate`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: form });
        } else res = await call("POST", "/v1/translate", { model: "emoji-cyclegan", image: Buffer.from(bytes).toString("base64") });
        await expectHandled(res, `translate ${bytes.length} bytes`);
      }),
      { numRuns: 20, seed: SEED },
    );
  });
});

describe("dataset zips", () => {
  it("a mutated or truncated valid zip, finalized, is a 200 or a 4xx with its reason", async () => {
    const mutated = fc.oneof(
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }).map((edits) => {
        const b = zip.slice();
        for (const e of edits) b[e.at % b.length] = e.byte;
        return b;
      }),
      fc.nat().map((n) => zip.slice(0, n % zip.length)),
      fc.uint8Array({ maxLength: 300 }),
    );
    await fc.assert(
      fc.asyncProperty(mutated, async (bytes) => {
        count("zips");
        const created = (await (await call("POST", "/v1/datasets", { layout: "auto" })).json()) as { id: string; upload: UploadForm };
        const put = await postUpload(created.upload, bytes);
        expect(put.ok).toBe(true);
        await expectHandled(await call("POST", `/v1/datasets/${created.id}/finalize`), `finalize ${bytes.length} bytes`);
      }),
      { numRuns: 20, seed: SEED },
    );
  });
});

describe("checkpoint files", () => {
  const FILES = [
    ["safetensors", path.join(SG, "weights.safetensors")],
    ["torch zip", path.join(SG, "weights.pth")],
    ["torch legacy", path.join(SG, "weights_legacy.pth")],
    ["network pickle", path.join(SG, "network-snapshot.pkl")],
  ] as const;
  it.each(FILES)("mutated %s bytes: loadCheckpoint resolves or throws CheckpointError only", async (_fmt, file) => {
    const original = new Uint8Array(fs.readFileSync(file));
    // Edits cluster at the start, where headers, pickle opcodes and zip directories decide what gets read.
    const edits = fc.array(fc.record({ at: fc.oneof(fc.nat({ max: 512 }), fc.nat({ max: original.length - 1 })), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 10 });
    const input = fc.oneof(
      edits.map((es) => {
        const b = original.slice();
        for (const e of es) b[e.at] = e.byte;
        return b;
      }),
      fc.nat({ max: original.length }).map((n) => original.slice(0, n)),
      // The zip's central directory sits at the end: mutate there as well.
      edits.map((es) => {
        const b = original.slice();
        for (const e of es) b[b.length - 1 - (e.at % 256)] = e.byte;
        return b;
      }),
    );
    await fc.assert(
      fc.asyncProperty(input, async (bytes) => {
        count("checkpoints");
        try {
          await loadCheckpoint(bytes, "fuzz.bin");
        } catch (e) {
          expect(e, String(e)).toBeInstanceOf(CheckpointError);
        }
      }),
      { numRuns: 40, seed: SEED },
    );
  });
});

describe("afterwards", () => {
  it("the server is still healthy and serves a good request", async () => {
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);
    expect((await call("POST", "/v1/translate", { model: "emoji-cyclegan", image: Buffer.from(png).toString("base64") })).status).toBe(200);
  });
});
