import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { inspectArchive } from "../src/datasets/inspect.ts";
import { buildEmojiDataset, compositeOnWhite, emojiSplitOf, pairEmoji } from "../src/demo/emoji.ts";
import { balancedIndices, buildFashionDataset, FASHION_FOLDERS, fashionToRgb32, loadFashionSplit } from "../src/demo/fashion.ts";
import { readIdx, writeIdxUint8 } from "../src/demo/idx.ts";
import { buildScenesDataset, renderScene, SCENE_CLASSES, SCENE_LABEL_NC, sceneSeed, SKY, GRASS, WATER, TREE, ROAD } from "../src/demo/scenes.ts";
import { DemoDataMissing, pickFashionFiles, resolveNpmPackage } from "../src/demo/sources.ts";
import { readZipImages } from "../src/eval/zip-images.ts";
import { decodeRgb } from "../src/images/codec.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-demo-test-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("IDX reader", () => {
  it("reads a crafted ubyte file, gzipped or not", () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    const raw = writeIdxUint8([2, 3, 4], data);
    expect([...raw.subarray(0, 8)]).toEqual([0, 0, 8, 3, 0, 0, 0, 2]);
    for (const bytes of [raw, new Uint8Array(gzipSync(raw))]) {
      const a = readIdx(bytes);
      expect(a.shape).toEqual([2, 3, 4]);
      expect([...a.data]).toEqual([...data]);
    }
  });

  it("reads big-endian int32 values and rejects bad files", () => {
    const buf = new Uint8Array(4 + 4 + 8);
    const v = new DataView(buf.buffer);
    buf[2] = 0x0c;
    buf[3] = 1;
    v.setUint32(4, 2);
    v.setInt32(8, -5);
    v.setInt32(12, 70000);
    expect([...readIdx(buf).data]).toEqual([-5, 70000]);
    expect(() => readIdx(Uint8Array.of(1, 2, 3, 4))).toThrow(/magic/);
    expect(() => readIdx(writeIdxUint8([5], new Uint8Array(4)))).toThrow(/5 values/);
  });
});

describe("Fashion-MNIST dataset", () => {
  it("pads 28→32, replicates gray to RGB and names class folders in label order", async () => {
    const dir = path.join(tmp, "fashion");
    fs.mkdirSync(dir);
    const n = 20;
    const imgs = new Uint8Array(n * 784);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    for (let i = 0; i < n; i++) imgs.fill(100 + i, i * 784, (i + 1) * 784);
    for (const split of ["train", "t10k"]) {
      fs.writeFileSync(path.join(dir, `${split}-images-idx3-ubyte.gz`), gzipSync(writeIdxUint8([n, 28, 28], imgs)));
      fs.writeFileSync(path.join(dir, `${split}-labels-idx1-ubyte.gz`), gzipSync(writeIdxUint8([n], labels)));
    }
    const files = pickFashionFiles(fs.readdirSync(dir).map((f) => path.join(dir, f)), dir);
    const split = loadFashionSplit("test", files);
    const rgb = fashionToRgb32(split, 3);
    expect(rgb.width).toBe(32);
    expect([...rgb.data.subarray(0, 3)]).toEqual([0, 0, 0]);
    const centre = (16 * 32 + 16) * 3;
    expect([...rgb.data.subarray(centre, centre + 3)]).toEqual([103, 103, 103]);
    expect(balancedIndices(labels, 1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    const { zip, count } = await buildFashionDataset({ split: "train", perClass: 2, files });
    expect(count).toBe(20);
    const report = await inspectArchive(zip, { layout: "stylegan2" });
    expect(report.stats.classes).toEqual([...FASHION_FOLDERS]);
    expect(report.stats.resolutions).toEqual({ "32x32": 20 });
    expect(() => pickFashionFiles([], "nowhere")).toThrow(DemoDataMissing);
  });
});

describe("procedural scenes", () => {
  it("is deterministic in the seed and differs between seeds", () => {
    const a = renderScene(42);
    const b = renderScene(42);
    expect(Buffer.from(a.image).equals(Buffer.from(b.image))).toBe(true);
    expect(Buffer.from(a.label).equals(Buffer.from(b.label))).toBe(true);
    expect(Buffer.from(renderScene(43).image).equals(Buffer.from(a.image))).toBe(false);
    expect(sceneSeed(1, 0)).not.toBe(sceneSeed(1, 1));
  });

  it("keeps the image consistent with the label map", () => {
    const seen = new Set<number>();
    for (let s = 0; s < 40; s++) {
      const sc = renderScene(sceneSeed(7, s), 64);
      expect(sc.label.length).toBe(64 * 64);
      for (let i = 0; i < sc.label.length; i++) {
        const cls = sc.label[i];
        seen.add(cls);
        expect(cls).toBeLessThan(SCENE_LABEL_NC);
        const [r, g, b] = sc.image.subarray(i * 3, i * 3 + 3);
        if (cls === SKY || cls === WATER) expect(b).toBeGreaterThan(r);
        if (cls === GRASS) expect(g).toBeGreaterThan(Math.max(r, b));
        if (cls === ROAD) expect(Math.abs(r - b) < 20 || r > 200).toBe(true);
        if (cls === TREE) expect(g >= r || r < 110).toBe(true);
      }
      // sky is always above the ground: the top row is sky or cloud, the bottom row never is
      for (let x = 0; x < 64; x++) {
        expect([0, 1]).toContain(sc.label[x]);
        expect([0, 1, 2]).not.toContain(sc.label[63 * 64 + x]);
      }
    }
    expect(seen.size).toBe(SCENE_CLASSES.length);
  });

  it("builds a spade-layout zip whose labels decode back exactly", async () => {
    const { zip } = await buildScenesDataset({ n: 3, seed: 5 });
    const report = await inspectArchive(zip, { layout: "spade" });
    expect(report.stats.pairs).toBe(3);
    const entries = await readZipImages(zip, "spade");
    const lab = entries.find((e) => e.path === "labels/scene-00001.png")!;
    const { decodeLabelPng } = await import("../src/images/label-png.ts");
    expect([...decodeLabelPng(lab.bytes, { maxPixels: 1 << 20 }).data]).toEqual([...renderScene(sceneSeed(5, 1)).label]);
  });
});

describe("emoji pairing", () => {
  async function fakePackage(root: string, pkg: string, set: string, files: Record<string, [number, number, number, number]>, meta?: object[]) {
    const dir = path.join(root, "node_modules", pkg);
    fs.mkdirSync(path.join(dir, "img", set, "64"), { recursive: true });
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: pkg, version: "0.0.0" }));
    if (meta) fs.writeFileSync(path.join(dir, "emoji.json"), JSON.stringify(meta));
    for (const [name, [r, g, b, a]] of Object.entries(files))
      fs.writeFileSync(path.join(dir, "img", set, "64", name), await sharp({ create: { width: 64, height: 64, channels: 4, background: { r, g, b, alpha: a / 255 } } }).png().toBuffer());
    return dir;
  }

  it("pairs same-name images both sets draw, splits by name hash, composites on white", async () => {
    const root = path.join(tmp, "emoji");
    // pick names so that both splits are represented
    const names: string[] = [];
    for (let i = 0; names.filter((n) => emojiSplitOf(n) === "test").length < 2 || names.length < 8; i++) names.push(`1f${(600 + i).toString(16)}.png`);
    const meta = [...names, "only-google.png", "fallback.png"].map((image) => ({ image, has_img_google: true, has_img_twitter: image !== "fallback.png" }));
    const google = Object.fromEntries([...names, "only-google.png", "fallback.png"].map((n) => [n, [255, 0, 0, 255] as [number, number, number, number]]));
    const twitter = Object.fromEntries([...names, "fallback.png"].map((n) => [n, [0, 0, 255, 0] as [number, number, number, number]]));
    await fakePackage(root, "emoji-datasource-google", "google", google, meta);
    await fakePackage(root, "emoji-datasource-twitter", "twitter", twitter);
    const pairs = pairEmoji(resolveNpmPackage("emoji-datasource-google", root), resolveNpmPackage("emoji-datasource-twitter", root));
    expect(pairs.map((p) => p.file)).toEqual([...names].sort());
    expect(() => resolveNpmPackage("emoji-datasource-apple", root)).toThrow(DemoDataMissing);

    const test = await buildEmojiDataset({ split: "test", packagesDir: root });
    const train = await buildEmojiDataset({ split: "train", packagesDir: root });
    expect(test.count + train.count).toBe(names.length);
    expect(test.names.filter((n) => train.names.includes(n))).toEqual([]);
    expect(test.names.every((n) => emojiSplitOf(n) === "test")).toBe(true);
    expect((await inspectArchive(train.zip, { layout: "cyclegan" })).stats.countsByFolder).toEqual({ trainA: train.count, trainB: train.count });
    const entries = await readZipImages(test.zip, "cyclegan");
    expect(entries.filter((e) => e.role === "testA").map((e) => e.path.slice(6))).toEqual(entries.filter((e) => e.role === "testB").map((e) => e.path.slice(6)));
    // fully transparent → white; opaque red stays red
    const b = await decodeRgb(entries.find((e) => e.role === "testB")!.bytes, { maxPixels: 1 << 20 });
    expect([...b.data.subarray(0, 3)]).toEqual([255, 255, 255]);
    const a = await decodeRgb(await compositeOnWhite(fs.readFileSync(pairs[0].a)), { maxPixels: 1 << 20 });
    expect([...a.data.subarray(0, 3)]).toEqual([255, 0, 0]);
  });
});
