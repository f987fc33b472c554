/**
 * Google (Noto) ↔ Twitter (Twemoji) emoji as a CycleGAN dataset, from the npm packages
 * emoji-datasource-google / emoji-datasource-twitter: the same emoji has the same file name in
 * img/google/64/ and img/twitter/64/. Training is unpaired (trainA and trainB are sampled independently by
 * the trainer); the held-out split keeps the pairs (testA/x.png ↔ testB/x.png) so the evaluation can score
 * G_A(google) against the real twitter drawing of the same emoji.
 *
 * The split is a hash of the emoji's file name, so it never changes when the packages add emoji. Skin-tone
 * variants are left out: they are near-copies of their base emoji and would leak the test set into training.
 */
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { buildDatasetZip, type DatasetFile } from "../datasets/build.ts";
import { resolveNpmPackage } from "./sources.ts";

export const EMOJI_PACKAGES = { A: "emoji-datasource-google", B: "emoji-datasource-twitter" } as const;
export const EMOJI_SETS = { A: "google", B: "twitter" } as const;
export const EMOJI_SIZE = 64;
/** One emoji in TEST_MODULUS goes to the held-out split. */
export const TEST_MODULUS = 10;

/** FNV-1a: tiny, stable across platforms and Node versions. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export const emojiSplitOf = (file: string): "train" | "test" => (fnv1a(file) % TEST_MODULUS === 0 ? "test" : "train");

export interface EmojiPair {
  file: string;
  a: string;
  b: string;
}

interface EmojiJsonEntry {
  image?: string;
  [k: string]: unknown;
}

/**
 * The emoji both packages draw, as pairs of file paths, sorted by file name. A package's emoji.json marks
 * which images are its own (`has_img_<set>`); others in its folder would be fallbacks drawn by another set.
 */
export function pairEmoji(dirA: string, dirB: string, size = EMOJI_SIZE): EmojiPair[] {
  const imgA = path.join(dirA, "img", EMOJI_SETS.A, String(size));
  const imgB = path.join(dirB, "img", EMOJI_SETS.B, String(size));
  const inB = new Set(fs.readdirSync(imgB).filter((f) => f.endsWith(".png")));
  let names = fs.readdirSync(imgA).filter((f) => f.endsWith(".png") && inB.has(f));
  const meta = path.join(dirA, "emoji.json");
  if (fs.existsSync(meta)) {
    const entries = JSON.parse(fs.readFileSync(meta, "utf8")) as EmojiJsonEntry[];
    const own = new Set(entries.filter((e) => e[`has_img_${EMOJI_SETS.A}`] === true && e[`has_img_${EMOJI_SETS.B}`] === true && typeof e.image === "string").map((e) => e.image as string));
    names = names.filter((n) => own.has(n));
  }
  return names.sort().map((file) => ({ file, a: path.join(imgA, file), b: path.join(imgB, file) }));
}

/** RGBA emoji → RGB PNG on white: the networks take 3 channels, and white is how emoji are usually seen. */
export async function compositeOnWhite(png: Uint8Array | Buffer, size = EMOJI_SIZE): Promise<Uint8Array> {
  const out = await sharp(png)
    .resize(size, size, { fit: "contain", background: { r: 255, g: 255, b: 255, alpha: 1 } })
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .removeAlpha()
    .png({ compressionLevel: 6 })
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export interface EmojiDatasetOptions {
  split: "train" | "test";
  /** where `npm install --no-save --prefix <dir>` put the two packages */
  packagesDir: string;
  /** at most this many emoji (the first by file name); default all */
  limit?: number;
  /** output size; the 64 px originals are downscaled (area-averaged by sharp) for smaller, faster demos */
  size?: number;
}

/**
 * train: a cyclegan-layout zip (trainA = google, trainB = twitter). test: testA/ and testB/ with the same
 * file names, the paired held-out set `evaluateCycleGAN` reads.
 */
export async function buildEmojiDataset(opts: EmojiDatasetOptions): Promise<{ zip: Uint8Array; count: number; names: string[] }> {
  const pairs = pairEmoji(resolveNpmPackage(EMOJI_PACKAGES.A, opts.packagesDir), resolveNpmPackage(EMOJI_PACKAGES.B, opts.packagesDir))
    .filter((p) => emojiSplitOf(p.file) === opts.split)
    .slice(0, opts.limit ?? Infinity);
  const [dA, dB] = opts.split === "train" ? ["trainA", "trainB"] : ["testA", "testB"];
  const files: DatasetFile[] = [];
  for (const p of pairs) {
    files.push({ path: `${dA}/${p.file}`, bytes: await compositeOnWhite(fs.readFileSync(p.a), opts.size) });
    files.push({ path: `${dB}/${p.file}`, bytes: await compositeOnWhite(fs.readFileSync(p.b), opts.size) });
  }
  return { zip: buildDatasetZip(files), count: pairs.length, names: pairs.map((p) => p.file) };
}
