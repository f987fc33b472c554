/** Multipart translate, file inputs (including Node paths), image helpers and the dataset upload flow. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DatasetFailedError, Ganserve, imageBytes, toBlob, type Dataset, type ImageResult } from "../src/index.ts";
import { Ganserve as NodeGanserve } from "../src/node.ts";
import { apiError, fakeFetch, json, streamOf, type Call, type Handler } from "./fake-fetch.ts";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
const ZIP = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 9, 9, 9]);
const translated = () => json({ model: "m", version: "v1", params: {}, image: { content_type: "image/png", width: 1, height: 1, data: "AAE=" }, timings: {} });

const client = (handlers: Handler[]) => {
  const f = fakeFetch(...handlers);
  return { sdk: new Ganserve({ baseUrl: "http://api.test", apiKey: "k", fetch: f.fetch }), calls: f.calls };
};
const formOf = (call: Call) => call.body as FormData;
const bytesOf = async (v: FormDataEntryValue | null) => new Uint8Array(await (v as Blob).arrayBuffer());

describe("translate", () => {
  it("sends multipart with each kind of file input, typed and named from the bytes", async () => {
    const inputs = [
      PNG,
      Buffer.from(PNG),
      PNG.buffer.slice(0),
      new Blob([PNG]),
      new Blob([PNG], { type: "image/png" }),
      streamOf([PNG.slice(0, 5), PNG.slice(5)]),
      new Uint16Array(PNG.buffer.slice(0)),
    ];
    for (const image of inputs) {
      const { sdk, calls } = client([translated]);
      await sdk.translate({ model: "cg", image, direction: "BtoA", load_size: 64 });
      const form = formOf(calls[0]);
      expect(calls[0].url).toBe("http://api.test/v1/translate");
      expect(calls[0].headers.get("content-type")).toBeNull(); // fetch sets the multipart boundary itself
      expect(form.get("model")).toBe("cg");
      expect(form.get("direction")).toBe("BtoA");
      expect(form.get("load_size")).toBe("64");
      const file = form.get("image") as File;
      expect([file.name, file.type]).toEqual(["image.png", "image/png"]);
      expect(await bytesOf(file)).toEqual(PNG);
    }
  });

  it("sends all SPADE inputs and keeps a File's own name", async () => {
    const { sdk, calls } = client([translated]);
    await sdk.translate({ model: "sp", label_map: new File([PNG], "labels.png", { type: "image/png" }), instance_map: PNG, seed: 3 });
    const form = formOf(calls[0]);
    expect((form.get("label_map") as File).name).toBe("labels.png");
    expect((form.get("instance_map") as File).name).toBe("instance_map.png");
    expect(form.get("seed")).toBe("3");
    expect(form.has("image")).toBe(false);
  });

  it("rejects a path string in the browser entry, reads it in the Node entry", async () => {
    const { sdk, calls } = client([translated]);
    // @ts-expect-error paths are a Node-entry feature
    await expect(sdk.translate({ model: "cg", image: "in.png" })).rejects.toThrow(/Node entry/);
    expect(calls).toHaveLength(0);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sdk-"));
    const file = path.join(dir, "photo");
    fs.writeFileSync(file, PNG);
    const f = fakeFetch(translated);
    await new NodeGanserve({ baseUrl: "http://api.test", apiKey: "k", fetch: f.fetch }).translate({ model: "cg", image: file });
    const sent = formOf(f.calls[0]).get("image") as File;
    expect([sent.name, sent.type]).toEqual(["photo.png", "image/png"]);
    // The Node entry streams the file lazily, so it must still exist while the body is read.
    expect(await bytesOf(sent)).toEqual(PNG);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("re-sends the same bytes of a stream when retrying", async () => {
    const { sdk, calls } = client([() => apiError(503, "overloaded", { "retry-after": "0" }), translated]);
    await sdk.translate({ model: "cg", image: streamOf([PNG]) });
    expect(await bytesOf(formOf(calls[1]).get("image"))).toEqual(PNG);
  });
});

describe("image helpers", () => {
  const image: ImageResult = { content_type: "image/png", width: 1, height: 1, data: Buffer.from(PNG).toString("base64") };

  it("decodes inline images to bytes and blobs", async () => {
    expect(imageBytes(image)).toEqual(PNG);
    const blob = toBlob(image);
    expect(blob.type).toBe("image/png");
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(PNG);
  });

  it("points URL outputs to download, which fetches without the API key", async () => {
    const byUrl: ImageResult = { content_type: "image/png", width: 1, height: 1, url: "http://s3.test/img.png?sig=1" };
    expect(() => imageBytes(byUrl)).toThrow(/download/);
    const { sdk, calls } = client([() => new Response(PNG)]);
    expect(await sdk.download(byUrl)).toEqual(PNG);
    expect(calls[0].url).toBe(byUrl.url);
    expect(calls[0].headers.get("authorization")).toBeNull();
  });
});

const ID = "ds_0123456789abcdef";
const awaiting: Dataset = {
  id: ID,
  layout: "stylegan2",
  status: "awaiting_upload",
  created_at: "2025-01-01T00:00:00Z",
  upload: {
    url: "http://s3.test/ganserve",
    method: "POST",
    fields: { key: "datasets/x/upload.zip", "Content-Type": "application/zip", Policy: "eyJ9", "X-Amz-Signature": "abc" },
    file_field: "file",
    max_bytes: 100,
    expires_at: "2025-01-01T01:00:00Z",
  },
};
const ready: Dataset = { ...awaiting, status: "ready", upload: undefined, stats: { images: 3, counts_by_folder: { images: 3 }, total_bytes: 7, resolutions: { "32x32": 3 } }, rejected: [{ path: "images/x.txt", code: "not_an_image", reason: "not an image" }] };

describe("datasets.upload", () => {
  it("creates with the zip's size, POSTs the zip with the form's fields (file last) without the key, and finalizes", async () => {
    const { sdk, calls } = client([() => json(awaiting, 201), () => new Response(null, { status: 204 }), () => json(ready)]);
    expect(await sdk.datasets.upload(ZIP, { name: "shoes", layout: "stylegan2" })).toEqual(ready);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST http://api.test/v1/datasets",
      `POST ${awaiting.upload!.url}`,
      `POST http://api.test/v1/datasets/${ID}/finalize`,
    ]);
    expect(JSON.parse(calls[0].body as string)).toEqual({ name: "shoes", layout: "stylegan2", size_bytes: ZIP.length });
    const post = calls[1];
    expect(post.headers.get("authorization")).toBeNull();
    const form = post.body as FormData;
    expect(form).toBeInstanceOf(FormData);
    expect([...form.keys()]).toEqual([...Object.keys(awaiting.upload!.fields), "file"]);
    for (const [k, v] of Object.entries(awaiting.upload!.fields)) expect(form.get(k)).toBe(v);
    expect(new Uint8Array(await (form.get("file") as Blob).arrayBuffer())).toEqual(ZIP);
  });

  it("refuses a zip over the form's max_bytes before sending it", async () => {
    const { sdk, calls } = client([]);
    const err = await sdk.datasets.uploadBytes(awaiting, new Uint8Array(101)).catch((e) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/at most 100/);
    expect(calls).toHaveLength(0);
  });

  it("explains a refused upload with S3's own code", async () => {
    const denied = () => new Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", { status: 403 });
    const { sdk } = client([denied]);
    const err = await sdk.datasets.uploadBytes(awaiting, ZIP).catch((e) => e);
    expect(err).toMatchObject({ status: 403, code: "forbidden", message: "HTTP 403 AccessDenied: Request has expired" });
  });

  it("throws DatasetFailedError with the record when finalize refuses the archive", async () => {
    const failed: Dataset = { ...awaiting, status: "failed", error: { code: "zip_bomb", message: "ratio too high" } };
    const { sdk } = client([
      () => json(awaiting, 201),
      () => new Response(null, { status: 204 }),
      () => apiError(413, "payload_too_large", {}, { dataset: ID, reason: "zip_bomb" }),
      () => json(failed),
    ]);
    const err = await sdk.datasets.upload(ZIP).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetFailedError);
    expect(err).toMatchObject({ code: "dataset_failed", status: 413, reason: "zip_bomb", dataset: failed, requestId: "req-payload_too_large" });
    expect(err.cause).toMatchObject({ code: "payload_too_large" });
  });

  it("throws DatasetFailedError when finalize answers 200 with status failed", async () => {
    const failed: Dataset = { ...ready, status: "failed", error: { code: "no_images", message: "nothing usable" }, rejected: [{ path: "a.txt", code: "not_an_image", reason: "?" }] };
    const { sdk } = client([() => json(awaiting, 201), () => new Response(null, { status: 204 }), () => json(failed)]);
    const err = await sdk.datasets.upload(new Blob([ZIP])).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetFailedError);
    expect(err).toMatchObject({ reason: "no_images", rejected: failed.rejected });
  });

  it("follows a finalize job (202 processing, as when deployed) by polling the dataset until it ends", async () => {
    const processing: Dataset = { ...awaiting, status: "processing" };
    const failed: Dataset = { ...processing, status: "failed", upload: undefined, error: { code: "zip_bomb", message: "ratio too high" } };
    const { sdk, calls } = client([() => json(processing, 202), () => json(processing), () => json(ready)]);
    expect(await sdk.datasets.finalize(ID)).toEqual(ready);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `POST http://api.test/v1/datasets/${ID}/finalize`,
      `GET http://api.test/v1/datasets/${ID}`,
      `GET http://api.test/v1/datasets/${ID}`,
    ]);
    // upload() turns a job that ended failed into DatasetFailedError with the record's reason.
    const up = client([() => json(awaiting, 201), () => new Response(null, { status: 204 }), () => json(processing, 202), () => json(failed)]);
    const err = await up.sdk.datasets.upload(ZIP).catch((e) => e);
    expect(err).toBeInstanceOf(DatasetFailedError);
    expect(err).toMatchObject({ reason: "zip_bomb", dataset: { id: ID, status: "failed" } });
  });

  it("passes other finalize errors through unchanged", async () => {
    const { sdk } = client([() => json(awaiting, 201), () => new Response(null, { status: 204 }), () => apiError(409, "conflict"), () => json(awaiting)]);
    const err = await sdk.datasets.upload(ZIP).catch((e) => e);
    expect(err).not.toBeInstanceOf(DatasetFailedError);
    expect(err.code).toBe("conflict");
  });
});
