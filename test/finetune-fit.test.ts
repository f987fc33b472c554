/**
 * A fine-tune whose dataset does not fit its base, over HTTP on the real local stack with the demo models:
 * refused with 422 `unprocessable` and `details.reason`, or accepted with the adaptation said in the job's
 * first event (jobs/dataset-fit.ts has the rules; packages/core/test/dataset-fit.test.ts every case).
 */
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import { encodeLabelPng } from "@ganserve/core/images/label-png";
import { followEvents, squaresZip, uploadDataset } from "./helpers/finetune.ts";
import { auth, startStack, type Stack } from "./helpers/stack.ts";

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { GANSERVE_DEMO_MODELS: "true" } });
});

afterAll(async () => {
  await stack?.stop();
});

const create = async (body: Record<string, unknown>) => {
  const res = await fetch(`${stack.url}/v1/fine-tunes`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};

describe("dataset fit", () => {
  it("refuses class folders the class-conditional base does not have, saying which", async () => {
    const ds = await uploadDataset(stack, await squaresZip(4, 32, "images/shoes"), "stylegan2");
    expect(ds.status).toBe(200);
    const r = await create({ base_model: "fashion-stylegan2", dataset: ds.id, name: "shoes", steps: 1 });
    expect(r.status).toBe(422);
    expect(r.body.error).toMatchObject({ code: "unprocessable", details: { reason: "unknown_classes", folders: ["shoes"] } });
    expect(r.body.error.message).toContain("images/shoes/");
    // Refused before the name was claimed: it stays free.
    expect((await fetch(`${stack.url}/v1/models/shoes`, { headers: auth(stack) })).status).toBe(404);
  });

  it("refuses SPADE label ids the base does not have", async () => {
    // One 64×64 scene whose label map uses class 9; scenes-spade has classes 0-7.
    const ids = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i < 2048 ? 0 : 9));
    const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#87b4e6" } }).png().toBuffer();
    const zip = buildDatasetZip([
      { path: "images/s0.png", bytes: new Uint8Array(image) },
      { path: "labels/s0.png", bytes: await encodeLabelPng({ width: 64, height: 64, data: ids }) },
    ]);
    const ds = await uploadDataset(stack, zip, "spade");
    expect(ds.status).toBe(200);
    const r = await create({ base_model: "scenes-spade", dataset: ds.id, name: "ten-classes", steps: 1 });
    expect(r.status).toBe(422);
    expect(r.body.error.details).toMatchObject({ reason: "labels_out_of_range", max_label_value: 9, max_class: 7 });
  });

  it("accepts an unlabelled dataset on the class-conditional base and says so in the first event", async () => {
    const ds = await uploadDataset(stack, await squaresZip(4), "stylegan2");
    const r = await create({ base_model: "fashion-stylegan2", dataset: ds.id, name: "unlabelled", steps: 1, batch_size: 2 });
    expect(r.status).toBe(201);
    const events = await followEvents(stack, r.body.id, (e) => e.type === "status");
    expect(events[0]).toMatchObject({ type: "status", status: "queued" });
    expect(events[0].message).toMatch(/class-conditional \(10 classes\).*no class folders/);
    await fetch(`${stack.url}/v1/fine-tunes/${r.body.id}/cancel`, { method: "POST", headers: auth(stack) });
  });
});
