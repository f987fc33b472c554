/** Dataset zips and SSE reading for the fine-tune end-to-end tests. */
import sharp from "sharp";
import { buildDatasetZip } from "@ganserve/core/datasets/index";
import { encodeLabelPng } from "@ganserve/core/images/label-png";
import type { FineTuneEvent } from "@ganserve/core/api/finetune";
import { auth, type Stack } from "./stack.ts";
import { postUpload } from "./upload.ts";

const square = (size: number, rgb: [number, number, number], inner: [number, number, number], offset: number) => {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = x >= offset && x < offset + size / 2 && y >= offset && y < offset + size / 2;
      data.set(inside ? inner : rgb, (y * size + x) * 3);
    }
  return sharp(data, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
};

/** `n` small coloured-square images under `folder` (StyleGAN2 layout: images/, or a class folder images/<class>). */
export async function squaresZip(n: number, size = 32, folder = "images"): Promise<Uint8Array> {
  const files = await Promise.all(
    Array.from({ length: n }, async (_, i) => ({
      path: `${folder}/sq${i}.png`,
      bytes: new Uint8Array(await square(size, [20 * i, 100, 200 - 10 * i], [250, 240 - 15 * i, 30], i % (size / 2))),
    })),
  );
  return buildDatasetZip(files);
}

/** trainA/ squares and trainB/ inverted squares (CycleGAN layout). */
export async function domainsZip(n: number, size = 32): Promise<Uint8Array> {
  const files = [];
  for (let i = 0; i < n; i++) {
    files.push({ path: `trainA/a${i}.png`, bytes: new Uint8Array(await square(size, [30, 60 + 10 * i, 200], [240, 220, 40], i % 8)) });
    files.push({ path: `trainB/b${i}.png`, bytes: new Uint8Array(await square(size, [225, 195 - 10 * i, 55], [15, 35, 215], (i + 3) % 8)) });
  }
  return buildDatasetZip(files);
}

/** images/ + labels/ pairs with matching stems (SPADE layout), label values in [0, classes). */
export async function scenesZip(n: number, size: number, classes: number): Promise<Uint8Array> {
  const palette: [number, number, number][] = [[120, 180, 250], [60, 160, 60], [40, 80, 200], [120, 120, 120], [200, 120, 60], [230, 230, 230]];
  const files = [];
  for (let i = 0; i < n; i++) {
    const ids = new Uint8Array(size * size);
    const rgb = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const c = (y < size / 3 + i ? 0 : 1 + ((x + i * 5) >> 4)) % classes;
        ids[y * size + x] = c;
        rgb.set(palette[c % palette.length], (y * size + x) * 3);
      }
    files.push({ path: `images/s${i}.png`, bytes: new Uint8Array(await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer()) });
    files.push({ path: `labels/s${i}.png`, bytes: await encodeLabelPng({ width: size, height: size, data: ids }) });
  }
  return buildDatasetZip(files);
}

/** create → POST to the presigned upload form with plain fetch → finalize. */
export async function uploadDataset(stack: Stack, zip: Uint8Array, layout: string, finalizeHeaders: Record<string, string> = {}) {
  const created = await (
    await fetch(`${stack.url}/v1/datasets`, {
      method: "POST",
      headers: { ...auth(stack), "content-type": "application/json" },
      body: JSON.stringify({ layout, name: "test", size_bytes: Math.max(1, zip.length) }),
    })
  ).json();
  const put = await postUpload(created.upload, zip);
  if (!put.ok) throw new Error(`upload failed: ${put.status}`);
  const res = await fetch(`${stack.url}/v1/datasets/${created.id}/finalize`, { method: "POST", headers: { ...auth(stack), ...finalizeHeaders } });
  return { status: res.status, body: await res.json(), id: created.id as string };
}

export async function startFineTune(stack: Stack, body: Record<string, unknown>) {
  const res = await fetch(`${stack.url}/v1/fine-tunes`, { method: "POST", headers: { ...auth(stack), "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json();
  if (res.status !== 201) throw new Error(`fine-tune create failed ${res.status}: ${JSON.stringify(json)}`);
  return json as { id: string };
}

/** Reads the SSE stream to its `done` event (or until `until` returns true), parsing every event. */
export async function followEvents(stack: Stack, id: string, until?: (e: FineTuneEvent) => boolean, timeoutMs = 240_000): Promise<FineTuneEvent[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const res = await fetch(`${stack.url}/v1/fine-tunes/${id}/events`, { headers: auth(stack), signal: ctrl.signal });
  if (res.status !== 200 || !res.headers.get("content-type")?.includes("text/event-stream")) throw new Error(`events: ${res.status}`);
  const events: FineTuneEvent[] = [];
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let cut = buf.indexOf("\n\n"); cut >= 0; cut = buf.indexOf("\n\n")) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        const e = JSON.parse(data) as FineTuneEvent;
        events.push(e);
        if (e.type === "done" || until?.(e)) {
          ctrl.abort();
          return events;
        }
      }
    }
  } catch (e) {
    if ((e as Error).name !== "AbortError") throw e;
  } finally {
    clearTimeout(timer);
  }
  return events;
}
