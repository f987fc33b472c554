import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import sharp from "sharp";
import yauzl from "yauzl";
import {
  buildDatasetZip,
  DatasetError,
  inspectArchive,
  safeKeyFor,
  type DatasetLayout,
  type DatasetReport,
  type InspectOptions,
} from "../src/datasets/index.ts";
import { craftManyEntries, craftZip, deflateBomb, indexedPng, pngHeaderOnly, unixMode, type CraftEntry } from "./helpers/zipcraft.ts";

const solid = (w: number, h: number, format: "png" | "jpeg" | "webp", channels: 3 | 4 = 3) =>
  sharp({ create: { width: w, height: h, channels, background: { r: 200, g: 40, b: 90, alpha: 1 } } })
    .toFormat(format)
    .toBuffer();

let png: Buffer;
let png2: Buffer;
let jpg: Buffer;
let webp: Buffer;
let rgbLabel: Buffer;
let greyLabel: Buffer;
let paletteLabel: Buffer;
let greyLabelSmall: Buffer;

beforeAll(async () => {
  [png, png2, jpg, webp, rgbLabel] = await Promise.all([solid(16, 16, "png"), solid(16, 16, "png", 4), solid(16, 16, "jpeg"), solid(20, 12, "webp"), solid(16, 16, "png")]);
  const idx = new Uint8Array(16 * 16).map((_, i) => (i * 5) % 19); // 0..18
  greyLabel = indexedPng(16, 16, idx, 0);
  paletteLabel = indexedPng(16, 16, idx.map((v) => (v === 18 ? 34 : v)), 3);
  greyLabelSmall = indexedPng(8, 8, new Uint8Array(64), 0);
});

async function failure(zip: Uint8Array, opts: Partial<InspectOptions> = {}): Promise<DatasetError> {
  try {
    await inspectArchive(zip, { layout: "auto", ...opts });
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error("expected inspectArchive to fail");
}

const codesOf = (report: DatasetReport) => Object.fromEntries(report.rejected.map((r) => [r.path, r.code]));

describe("archive-level failures", () => {
  // Each case: an archive and the DatasetError code it must produce. Built lazily: images exist after beforeAll.
  const cases: [string, () => Uint8Array, string, Partial<InspectOptions>?][] = [
    ["not a zip", () => Buffer.from("definitely not a zip archive, just some text"), "not_a_zip"],
    ["zero bytes", () => new Uint8Array(0), "not_a_zip"],
    ["empty zip (end record only)", () => craftZip([]), "empty_archive"],
    ["only directories", () => craftZip([{ name: "images/", method: 0 }, { name: "trainA/", method: 0 }]), "empty_archive"],
    ["100k tiny entries (zip64 count)", () => craftManyEntries(100_000), "too_many_entries"],
    [
      "1 GiB bomb, declared honestly",
      () => craftZip([{ name: "images/a.png", compressed: deflateBomb(1024), declaredSize: 1024 ** 3 }]),
      "zip_bomb",
    ],
    [
      "1 GiB bomb behind a lying 1000-byte header",
      () => craftZip([{ name: "images/a.png", compressed: deflateBomb(1024), declaredSize: 1000, crc: 0 }]),
      "zip_bomb",
    ],
    [
      "30 MiB at ~1000:1, under the size cap but over the ratio cap",
      () => craftZip([{ name: "images/a.png", compressed: deflateBomb(30), declaredSize: 30 * 1024 * 1024 }]),
      "zip_bomb",
    ],
    [
      "overlapping entries sharing one payload",
      () => craftZip([{ name: "images/a.png", data: png }, { name: "images/b.png", data: png, offsetOf: 0 }]),
      "zip_bomb",
    ],
    [
      "total uncompressed size over the limit",
      () => craftZip([{ name: "images/a.png", data: png }, { name: "images/b.png", data: png2 }]),
      "archive_too_large",
      { limits: { maxTotalBytes: 100 } },
    ],
    ["cyclegan without trainB/", () => craftZip([{ name: "trainA/a.png", data: png }]), "wrong_layout", { layout: "cyclegan" }],
    ["auto with no recognised folders", () => craftZip([{ name: "pics/a.png", data: png }]), "wrong_layout"],
    ["spade without labels/", () => craftZip([{ name: "images/a.png", data: png }]), "wrong_layout", { layout: "spade" }],
    [
      "nothing decodes",
      () => craftZip([{ name: "images/a.png", data: Buffer.concat([png.subarray(0, 40), Buffer.alloc(100, 7)]) }]),
      "no_usable_images",
    ],
    ["only non-images", () => craftZip([{ name: "images/a.txt", data: Buffer.from("hi") }]), "no_usable_images"],
    [
      "cyclegan whose trainB images are all rejected",
      () => craftZip([{ name: "trainA/a.png", data: png }, { name: "trainB/b.png", data: Buffer.from("nope") }]),
      "no_usable_images",
    ],
    [
      "garbage central directory",
      () => {
        const z = craftZip([{ name: "images/a.png", data: png }]);
        const cd = z.readUInt32LE(z.length - 6);
        z.writeUInt32LE(0xdeadbeef, cd);
        return z;
      },
      "corrupt_archive",
    ],
    ["bad limits", () => craftZip([]), "invalid_options", { limits: { maxEntries: -1 } }],
  ];

  it.each(cases.map(([name, make, code, opts]) => [name, code, make, opts] as const))("%s -> %s", async (_name, code, make, opts) => {
    const started = performance.now();
    const err = await failure(make(), opts);
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("names the entry that tripped a bomb check", async () => {
    const err = await failure(craftZip([{ name: "images/x.png", compressed: deflateBomb(64), declaredSize: 10, crc: 0 }]));
    expect(err).toMatchObject({ code: "zip_bomb", path: "images/x.png" });
    expect(err.message).toMatch(/past its declared 10 bytes/);
  });

  it("caps what a lying header can make us allocate at the declared size", async () => {
    // The ratio check is switched off so only the inflate cap stands between a 1 GiB stream and memory.
    const declared = 32 * 1024 * 1024;
    const zip = craftZip([{ name: "images/a.png", compressed: deflateBomb(1024), declaredSize: declared, crc: 0 }]);
    const before = process.memoryUsage().arrayBuffers;
    const err = await failure(zip, { limits: { maxCompressionRatio: 1e9 } });
    expect(err.code).toBe("zip_bomb");
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(3 * declared);
  });

  it("refuses a wrong layout with a message saying what was expected", async () => {
    const err = await failure(craftZip([{ name: "images/a.png", data: png }]), { layout: "cyclegan" });
    expect(err.message).toMatch(/found images\//);
    expect(err.message).toMatch(/trainA\/ and trainB\//);
  });
});

describe("per-entry rejections", () => {
  // Each hostile entry sits beside one good image so the archive as a whole is accepted.
  const cases: [string, () => CraftEntry, string][] = [
    ["../x.png", () => ({ name: "../x.png", data: png }), "path_traversal"],
    ["images/../../x.png", () => ({ name: "images/../../x.png", data: png }), "path_traversal"],
    ["backslash traversal", () => ({ name: "images\\..\\..\\x.png", data: png }), "path_traversal"],
    ["/etc/x.png", () => ({ name: "/etc/x.png", data: png }), "absolute_path"],
    ["C:\\x.png", () => ({ name: "C:\\x.png", data: png }), "absolute_path"],
    ["control character", () => ({ name: "images/a\u0000.png", data: png }), "invalid_name"],
    [
      "symlink",
      () => ({ name: "images/link.png", data: Buffer.from("/etc/passwd"), method: 0, externalAttrs: unixMode(0o120777) }),
      "symlink",
    ],
    ["fifo", () => ({ name: "images/pipe.png", data: png, externalAttrs: unixMode(0o010644) }), "not_regular_file"],
    ["__MACOSX", () => ({ name: "__MACOSX/images/._a.png", data: Buffer.alloc(10) }), "ignored_junk"],
    [".DS_Store", () => ({ name: "images/.DS_Store", data: Buffer.alloc(10) }), "ignored_junk"],
    ["non-image extension", () => ({ name: "images/notes.txt", data: Buffer.from("hello") }), "not_an_image"],
    ["no extension", () => ({ name: "images/README", data: Buffer.from("hello") }), "not_an_image"],
    ["encrypted flag", () => ({ name: "images/secret.png", data: png, flags: 0x1 }), "encrypted"],
    ["bzip2 method", () => ({ name: "images/b.png", data: png, method: 12, compressed: png }), "unsupported_compression"],
    ["undecodable image", () => ({ name: "images/broken.png", data: Buffer.concat([png.subarray(0, 40), Buffer.alloc(200, 0xab)]) }), "undecodable_image"],
    ["random bytes", () => ({ name: "images/noise.jpg", data: Buffer.from("not really a jpeg at all") }), "undecodable_image"],
    ["50000x50000 header", () => ({ name: "images/huge.png", data: pngHeaderOnly(50_000, 50_000) }), "image_too_large"],
    ["jpeg named .png", () => ({ name: "images/photo.png", data: jpg }), "format_mismatch"],
    ["svg named .png", () => ({ name: "images/vector.png", data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') }), "format_mismatch"],
    ["CRC mismatch", () => ({ name: "images/crc.png", data: png, crc: 0x12345678 }), "corrupt_entry"],
    ["declares more than it holds", () => ({ name: "images/short.png", data: png, declaredSize: png.length + 10 }), "corrupt_entry"],
    ["stored entry with lying size", () => ({ name: "images/stored.png", data: png, method: 0, declaredSize: png.length - 1 }), "corrupt_entry"],
    ["too deep for the layout", () => ({ name: "images/a/b/c.png", data: png }), "outside_layout"],
    ["outside the layout's folders", () => ({ name: "extra/c.png", data: png }), "outside_layout"],
  ];

  it.each(cases.map(([name, make, code]) => [name, code, make] as const))("%s -> %s", async (_name, code, make) => {
    const bad = make();
    const report = await inspectArchive(craftZip([{ name: "images/good.png", data: png }, bad]), { layout: "stylegan2" });
    expect(report.entries.map((e) => e.path)).toEqual(["images/good.png"]);
    expect(report.rejected).toHaveLength(1);
    expect(report.rejected[0].code).toBe(code);
    expect(report.rejected[0].reason.length).toBeGreaterThan(5);
    expect(report.stats.rejectedByCode).toEqual({ [code]: 1 });
  });

  it("rejects the second of two identical paths and of two paths with the same storage key", async () => {
    const report = await inspectArchive(
      craftZip([
        { name: "images/a.png", data: png },
        { name: "images/a.png", data: png2 },
        { name: "images/b c.png", data: png },
        { name: "images/b_c.png", data: png2 },
      ]),
      { layout: "stylegan2" },
    );
    expect(report.entries.map((e) => e.path)).toEqual(["images/a.png", "images/b c.png"]);
    expect(report.rejected.map((r) => [r.path, r.code])).toEqual([
      ["images/a.png", "duplicate_path"],
      ["images/b_c.png", "duplicate_path"],
    ]);
  });

  it("ignores directory entries silently", async () => {
    const report = await inspectArchive(
      craftZip([
        { name: "images/", method: 0 },
        { name: "images/sub/", method: 0, externalAttrs: unixMode(0o040755) },
        { name: "images/a.png", data: png },
      ]),
      { layout: "auto" },
    );
    expect(report.rejected).toEqual([]);
    expect(report.stats.entryCount).toBe(3);
  });

  it("refuses loose images in a class-conditional stylegan2 dataset", async () => {
    const report = await inspectArchive(
      craftZip([
        { name: "images/cat/a.png", data: png },
        { name: "images/loose.png", data: png },
      ]),
      { layout: "stylegan2" },
    );
    expect(codesOf(report)).toEqual({ "images/loose.png": "outside_layout" });
    expect(report.stats.classes).toEqual(["cat"]);
  });
});

describe("spade pairing and label maps", () => {
  const spade = (extra: CraftEntry[]) =>
    craftZip([{ name: "images/ok.png", data: png }, { name: "labels/ok.png", data: greyLabel }, ...extra]);

  it("rejects unmatched stems on both sides", async () => {
    const report = await inspectArchive(
      spade([
        { name: "images/lonely.jpg", data: jpg },
        { name: "labels/orphan.png", data: greyLabel },
      ]),
      { layout: "spade" },
    );
    expect(codesOf(report)).toEqual({ "images/lonely.jpg": "unmatched_stem", "labels/orphan.png": "unmatched_stem" });
    expect(report.stats.pairs).toBe(1);
  });

  it("rejects an RGB label map and then its image as unmatched", async () => {
    const report = await inspectArchive(
      spade([
        { name: "images/rgb.png", data: png },
        { name: "labels/rgb.png", data: rgbLabel },
      ]),
      { layout: "spade" },
    );
    expect(codesOf(report)).toEqual({ "labels/rgb.png": "label_not_indexed", "images/rgb.png": "unmatched_stem" });
    expect(report.rejected.find((r) => r.code === "label_not_indexed")?.reason).toMatch(/RGB/);
  });

  it("rejects a label map whose size differs from its image", async () => {
    const report = await inspectArchive(
      spade([
        { name: "images/small.png", data: png },
        { name: "labels/small.png", data: greyLabelSmall },
      ]),
      { layout: "spade" },
    );
    expect(codesOf(report)).toEqual({ "labels/small.png": "label_size_mismatch", "images/small.png": "unmatched_stem" });
  });

  it("rejects non-PNG label maps", async () => {
    const report = await inspectArchive(
      spade([
        { name: "images/j.png", data: png },
        { name: "labels/j.jpg", data: jpg },
      ]),
      { layout: "spade" },
    );
    expect(codesOf(report)).toEqual({ "labels/j.jpg": "label_not_indexed", "images/j.png": "unmatched_stem" });
  });

  it("never hands half a pair to onImage", async () => {
    const seen: string[] = [];
    await inspectArchive(spade([{ name: "images/rgb.png", data: png }, { name: "labels/rgb.png", data: rgbLabel }]), {
      layout: "spade",
      onImage: (path) => void seen.push(path),
    });
    expect(seen.sort()).toEqual(["images/ok.png", "labels/ok.png"]);
  });
});

describe("good datasets", () => {
  it("stylegan2: png, jpeg and webp with dimensions, channels, stats and bytes delivered", async () => {
    const files = [
      { path: "images/a.png", bytes: png },
      { path: "images/b.png", bytes: png2 },
      { path: "images/c.jpg", bytes: jpg },
      { path: "images/d.webp", bytes: webp },
    ];
    const delivered = new Map<string, { role: string; bytes: Uint8Array }>();
    const report = await inspectArchive(buildDatasetZip(files), {
      layout: "stylegan2",
      onImage: async (path, role, bytes) => void delivered.set(path, { role, bytes }),
    });
    expect(report.layout).toBe("stylegan2");
    expect(report.root).toBe("");
    expect(report.rejected).toEqual([]);
    expect(report.entries.map((e) => [e.path, e.key, e.role, e.format, e.width, e.height, e.channels])).toEqual([
      ["images/a.png", "images/a.png", "images", "png", 16, 16, 3],
      ["images/b.png", "images/b.png", "images", "png", 16, 16, 4],
      ["images/c.jpg", "images/c.jpg", "images", "jpeg", 16, 16, 3],
      ["images/d.webp", "images/d.webp", "images", "webp", 20, 12, 3],
    ]);
    const total = files.reduce((n, f) => n + f.bytes.length, 0);
    expect(report.stats).toEqual({
      entryCount: 4,
      acceptedCount: 4,
      countsByFolder: { images: 4 },
      totalBytes: total,
      rejectedByCode: {},
      resolutions: { "16x16": 3, "20x12": 1 },
    });
    for (const f of files) {
      expect(delivered.get(f.path)?.role).toBe("images");
      expect(Buffer.compare(Buffer.from(delivered.get(f.path)!.bytes), f.bytes)).toBe(0);
    }
  });

  it("stylegan2 with classes", async () => {
    const report = await inspectArchive(
      buildDatasetZip([
        { path: "images/dog/1.png", bytes: png },
        { path: "images/cat/1.png", bytes: png },
        { path: "images/cat/2.jpg", bytes: jpg },
      ]),
      { layout: "auto" },
    );
    expect(report.layout).toBe("stylegan2");
    expect(report.stats.countsByFolder).toEqual({ "images/dog": 1, "images/cat": 2 });
    expect(report.stats.classes).toEqual(["cat", "dog"]);
  });

  it("cyclegan, detected automatically inside a zipped folder, with macOS junk alongside", async () => {
    const report = await inspectArchive(
      buildDatasetZip([
        { path: "horse2zebra/trainA/h1.jpg", bytes: jpg },
        { path: "horse2zebra/trainA/h2.png", bytes: png },
        { path: "horse2zebra/trainB/z1.png", bytes: png },
        { path: "horse2zebra/trainB/z2.webp", bytes: webp },
        { path: "horse2zebra/trainB/z3.png", bytes: png2 },
        { path: "horse2zebra/testA/t1.png", bytes: png },
        { path: "__MACOSX/horse2zebra/trainA/._h1.jpg", bytes: Buffer.alloc(4) },
      ]),
      { layout: "auto" },
    );
    expect(report.layout).toBe("cyclegan");
    expect(report.root).toBe("horse2zebra/");
    expect(report.stats.countsByFolder).toEqual({ trainA: 2, trainB: 3, testA: 1 });
    expect(report.entries[0]).toMatchObject({ path: "horse2zebra/trainA/h1.jpg", key: "trainA/h1.jpg", role: "trainA" });
    expect(codesOf(report)).toEqual({ "__MACOSX/horse2zebra/trainA/._h1.jpg": "ignored_junk" });
  });

  it("spade with greyscale and palette label maps records class indices", async () => {
    const delivered: string[] = [];
    const report = await inspectArchive(
      buildDatasetZip([
        { path: "images/a.jpg", bytes: jpg },
        { path: "images/b.png", bytes: png },
        { path: "labels/a.png", bytes: greyLabel },
        { path: "labels/b.png", bytes: paletteLabel },
      ]),
      { layout: "auto", onImage: (path, role) => void delivered.push(`${role}:${path}`) },
    );
    expect(report.layout).toBe("spade");
    expect(report.rejected).toEqual([]);
    expect(report.stats).toMatchObject({ pairs: 2, maxLabelValue: 34, countsByFolder: { images: 2, labels: 2 }, resolutions: { "16x16": 2 } });
    const labels = report.entries.filter((e) => e.role === "labels");
    expect(labels.map((l) => [l.path, l.channels, l.maxLabelValue])).toEqual([
      ["labels/a.png", 1, 18],
      ["labels/b.png", 1, 34],
    ]);
    expect(report.entries.filter((e) => e.role === "images").every((e) => e.maxLabelValue === undefined)).toBe(true);
    expect(delivered.sort()).toEqual(["images:images/a.jpg", "images:images/b.png", "labels:labels/a.png", "labels:labels/b.png"]);
  });

  it("aborts when onImage fails, so the caller's storage error is not swallowed", async () => {
    const zip = buildDatasetZip([{ path: "images/a.png", bytes: png }]);
    await expect(
      inspectArchive(zip, {
        layout: "stylegan2",
        onImage: () => {
          throw new Error("S3 down");
        },
      }),
    ).rejects.toThrow("S3 down");
  });
});

describe("buildDatasetZip", () => {
  it("writes archives that yauzl reads back byte for byte", async () => {
    const files = [
      { path: "trainA/ü.png", bytes: png },
      { path: "trainB/x.jpg", bytes: jpg },
      { path: "empty.txt", bytes: new Uint8Array(0) },
    ];
    const zip = await yauzl.fromBufferPromise(Buffer.from(buildDatasetZip(files)));
    const out = new Map<string, Buffer>();
    for await (const entry of zip.eachEntry()) {
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      out.set(entry.fileName, Buffer.concat(chunks));
    }
    expect([...out.keys()]).toEqual(files.map((f) => f.path));
    for (const f of files) expect(Buffer.compare(out.get(f.path)!, Buffer.from(f.bytes))).toBe(0);
  });
});

describe("safeKeyFor", () => {
  it.each([
    ["images/a.png", "images/a.png"],
    ["/etc/passwd", "etc/passwd"],
    ["../../x.png", "x.png"],
    ["a/./b//c.png", "a/b/c.png"],
    ["C:\\Users\\me\\x.png", "C_/Users/me/x.png"],
    ["café/naïve photo.png", "cafe/naive_photo.png"],
    ["a..b/...png", "a.b/.png"],
    ["", "_"],
    ["..", "_"],
    [`images/${"a".repeat(300)}.png`, `images/${"a".repeat(251)}.png`],
    [`${"d".repeat(256)}/x.png`, `${"d".repeat(255)}/x.png`],
  ])("%j -> %j", (path, key) => expect(safeKeyFor(path)).toBe(key));

  it("always yields a safe relative key", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (path) => {
        const key = safeKeyFor(path);
        expect(key).toMatch(/^[A-Za-z0-9._/-]+$/);
        expect(key).not.toContain("..");
        expect(key.startsWith("/")).toBe(false);
        expect(key.endsWith("/")).toBe(false);
        expect(key.split("/").every((s) => s !== "" && s !== "." && s.length <= 255)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("layout option", () => {
  it.each<[DatasetLayout, string[]]>([
    ["stylegan2", ["images/a.png"]],
    ["cyclegan", ["trainA/a.png", "trainB/b.png"]],
    ["spade", ["images/a.png", "labels/a.png"]],
  ])("auto detects %s", async (layout, paths) => {
    const report = await inspectArchive(
      buildDatasetZip(paths.map((p) => ({ path: p, bytes: p.startsWith("labels") ? greyLabel : png }))),
      { layout: "auto" },
    );
    expect(report.layout).toBe(layout);
  });
});
