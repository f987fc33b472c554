/**
 * Datasets and fine-tunes through the SDK against the real local stack. Guarded until the routes land;
 * remove the skipIf then.
 */
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDatasetZip } from "@ganserve/core/datasets/build";
import { DatasetFailedError, FineTuneCanceledError, Ganserve, imageBytes, type FineTuneEvent } from "../src/node.ts";
import { startStack, type Stack } from "../../../test/helpers/stack.ts";

// The shipped Fashion-MNIST demo model (32×32, class-conditional; class 7 is "Sneaker").
const BASE = "fashion-stylegan2";
const SNEAKER = 7;

async function sneakersZip(count: number) {
  const files = [];
  for (let i = 0; i < count; i++) {
    const bytes = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 20 * i, g: 120, b: 255 - 20 * i } } }).png().toBuffer();
    files.push({ path: `images/shoe-${i}.png`, bytes: new Uint8Array(bytes) });
  }
  files.push({ path: "images/notes.txt", bytes: new TextEncoder().encode("not an image") });
  return buildDatasetZip(files);
}

describe("datasets and fine-tunes", () => {
  let stack: Stack;
  let sdk: Ganserve;

  beforeAll(async () => {
    stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
    sdk = new Ganserve({ baseUrl: stack.url, apiKey: stack.apiKey });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it("uploads a dataset in one call, listing what it left out", async () => {
    const dataset = await sdk.datasets.upload(await sneakersZip(8), { name: "sneakers", layout: "stylegan2" });
    expect(dataset).toMatchObject({ status: "ready", name: "sneakers", layout: "stylegan2", stats: { images: 8 } });
    expect(dataset.upload).toBeUndefined();
    expect(dataset.rejected?.map((r) => r.path)).toEqual(["images/notes.txt"]);
    expect(await sdk.datasets.get(dataset.id)).toMatchObject({ id: dataset.id, status: "ready" });
    expect((await sdk.datasets.list()).datasets.map((d) => d.id)).toContain(dataset.id);
    // Finalize is idempotent once ready.
    expect(await sdk.datasets.finalize(dataset.id)).toMatchObject({ id: dataset.id, status: "ready" });
  });

  it("does the same in steps, and rejects an archive that is not a zip with DatasetFailedError", async () => {
    const created = await sdk.datasets.create({ layout: "stylegan2" });
    expect(created.status).toBe("awaiting_upload");
    await sdk.datasets.uploadBytes(created, new Blob([(await sneakersZip(4)).slice()]));
    expect(await sdk.datasets.finalize(created.id)).toMatchObject({ status: "ready", stats: { images: 4 } });

    const err = await sdk.datasets.upload(new TextEncoder().encode("this is not a zip"), { layout: "stylegan2" }).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetFailedError);
    expect(err.code).toBe("dataset_failed");
    expect(err.dataset).toMatchObject({ status: "failed" });
    expect(err.requestId).toBeTruthy();
  });

  it("fine-tunes, streams progress, and serves the result as a new model", async () => {
    const dataset = await sdk.datasets.upload(await sneakersZip(8), { layout: "stylegan2" });
    const created = await sdk.fineTunes.create({ base_model: BASE, dataset: dataset.id, name: "sneakers-sg", steps: 4, batch_size: 2 });
    expect(created).toMatchObject({ status: "queued", base_model: BASE, total_steps: 4 });

    const events: FineTuneEvent[] = [];
    const done = await sdk.fineTunes.wait(created.id, { timeoutMs: 240_000, onEvent: (e) => void events.push(e) });
    expect(done).toMatchObject({ id: created.id, status: "succeeded", step: 4, result: { model: "sneakers-sg" } });
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(events.at(-1)?.type).toBe("done");

    // The stream replays, and resumes after a given id.
    const replay: FineTuneEvent[] = [];
    for await (const e of sdk.fineTunes.events(created.id)) replay.push(e);
    expect(replay.map((e) => e.seq)).toEqual(seqs);
    const resumed: number[] = [];
    for await (const e of sdk.fineTunes.events(created.id, { lastEventId: seqs[1] })) resumed.push(e.seq);
    expect(resumed).toEqual(seqs.slice(2));

    expect((await sdk.fineTunes.list()).fine_tunes.map((f) => f.id)).toContain(created.id);
    const { images } = await sdk.generate({ model: "sneakers-sg", version: done.result!.version, class_idx: SNEAKER, seeds: [0] });
    expect(imageBytes(images[0]).length).toBeGreaterThan(0);
  });

  it("cancels a fine-tune, and wait reports it as FineTuneCanceledError", async () => {
    const dataset = await sdk.datasets.upload(await sneakersZip(4), { layout: "stylegan2" });
    const created = await sdk.fineTunes.create({ base_model: BASE, dataset: dataset.id, name: "to-cancel", steps: 100_000, batch_size: 2 });
    const canceled = await sdk.fineTunes.cancel(created.id);
    expect(canceled.cancel_requested).toBe(true);
    const err = await sdk.fineTunes.wait(created.id, { timeoutMs: 120_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(FineTuneCanceledError);
    expect(err.fineTune).toMatchObject({ id: created.id, status: "canceled" });
  });

  it("answers an unknown fine-tune with not_found", async () => {
    expect(await sdk.fineTunes.get("ft_0000000000000000").catch((e) => e)).toMatchObject({ status: 404, code: "not_found" });
  });
});
