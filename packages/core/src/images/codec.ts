/**
 * Image bytes in and out, with every decode bounded: the format is sniffed from magic bytes and the
 * declared size is checked against the pixel limit before any pixel is decoded, so a 50000×50000 header or
 * a zip posing as a PNG costs nothing.
 */
import sharp, { type Metadata } from "sharp";
import { ApiError } from "../errors.ts";

// libvips' operation cache keeps recent results (up to 50 MB, 100 operations) for reuse; every request here
// brings new bytes, so it only ever held memory after a pass. Off: what a decode allocates goes when it ends.
sharp.cache(false);

export type ImageKind = "png" | "jpeg" | "webp";
export const CONTENT_TYPES: Record<ImageKind, string> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

export function sniff(bytes: Uint8Array): ImageKind | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.length >= 12 && String.fromCharCode(...bytes.subarray(0, 4)) === "RIFF" && String.fromCharCode(...bytes.subarray(8, 12)) === "WEBP")
    return "webp";
  return undefined;
}

export interface RgbImage {
  /** HWC, 3 channels (or `channels`), uint8 */
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 for a grayscale image (a one-channel generator's output, encoded as grayscale); default 3 */
  channels?: 1 | 3;
}

function requireImage(bytes: Uint8Array, field: string): ImageKind {
  if (bytes.length === 0) throw new ApiError("invalid_image", `${field}: empty`);
  const kind = sniff(bytes);
  if (!kind) throw new ApiError("unsupported_media_type", `${field}: not a PNG, JPEG or WebP image`);
  return kind;
}

async function checkedMetadata(bytes: Uint8Array, field: string, maxPixels: number) {
  let meta: Metadata;
  try {
    // Header only: the pixel limit is ours to enforce below with a precise error, not sharp's generic one.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ApiError("invalid_image", `${field}: cannot be read (${(e as Error).message})`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > maxPixels)
    throw new ApiError("image_too_large", `${field}: ${width}×${height} exceeds the limit of ${maxPixels} pixels`, {
      width,
      height,
      max_pixels: maxPixels,
    });
  return meta;
}

/**
 * The size an image will decode to (EXIF orientation applied), from its header alone: callers check what a
 * request would cost before any pixel is decoded. Throws like decodeRgb for non-images and the pixel limit.
 */
export async function readImageSize(bytes: Uint8Array, opts: { maxPixels: number; field?: string }): Promise<{ width: number; height: number }> {
  const field = opts.field ?? "image";
  requireImage(bytes, field);
  const { width = 0, height = 0, orientation = 1 } = await checkedMetadata(bytes, field, opts.maxPixels);
  return orientation >= 5 ? { width: height, height: width } : { width, height };
}

/**
 * Decodes to RGB. With `shrinkTo`, an image larger than that box is downscaled as it decodes, so the
 * full-size pixels never reach memory here: by default with its aspect kept and the box covered (sharp's
 * `fit: "outside"`; one not larger than the box in both sides keeps its own size), with `fit: "fill"` to
 * exactly the box.
 */
export async function decodeRgb(
  bytes: Uint8Array,
  opts: { maxPixels: number; field?: string; shrinkTo?: { width: number; height: number; fit?: "outside" | "fill" } },
): Promise<RgbImage> {
  const field = opts.field ?? "image";
  requireImage(bytes, field);
  await checkedMetadata(bytes, field, opts.maxPixels);
  try {
    let s = sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: "error" }).rotate(); // honour EXIF orientation: what the user sees is what we translate
    const box = opts.shrinkTo;
    if (box) s = s.resize(box.width, box.height, { fit: box.fit ?? "outside", withoutEnlargement: box.fit !== "fill" });
    const { data, info } = await s
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError("invalid_image", `${field}: cannot be decoded (${(e as Error).message})`);
  }
}

export async function encodeRgb(img: RgbImage, format: ImageKind, quality = 90): Promise<Uint8Array> {
  const gray = img.channels === 1;
  // libvips would write one-channel data as sRGB; b-w keeps it a grayscale PNG/JPEG.
  const s = gray ? sharp(img.data, { raw: { width: img.width, height: img.height, channels: 1 } }).toColourspace("b-w") : sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const out =
    format === "png"
      ? await s.png({ compressionLevel: 6 }).toBuffer()
      : format === "jpeg"
        ? await s.jpeg({ quality }).toBuffer()
        : await s.webp({ quality }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export async function resizeRgb(img: RgbImage, width: number, height: number, kernel: "cubic" | "nearest" = "cubic"): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: "fill", kernel })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

/**
 * Float NHWC image (network output) → uint8 exactly as the official scripts convert:
 * StyleGAN2 `generate.py`: `(x * 127.5 + 128).clamp(0, 255).to(uint8)`; CycleGAN/SPADE `tensor2im`:
 * `(x + 1) / 2 * 255` then a truncating cast; DCGAN notebooks' `torchvision.utils.save_image(x, normalize=True,
 * value_range=(-1, 1))`: `(x + 1) / 2 * 255 + 0.5` clamped and truncated, i.e. rounded. All truncate toward zero.
 */
export function floatToUint8(data: Float32Array, convention: "stylegan2" | "tanh" | "torchvision"): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = convention === "stylegan2" ? data[i] * 127.5 + 128 : convention === "tanh" ? ((data[i] + 1) / 2) * 255 : ((data[i] + 1) / 2) * 255 + 0.5;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}

/** uint8 RGB → [-1, 1] as the official `ToTensor` + `Normalize(0.5, 0.5)` does. */
export function uint8ToFloat(data: Uint8Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = (data[i] / 255 - 0.5) / 0.5;
  return out;
}
