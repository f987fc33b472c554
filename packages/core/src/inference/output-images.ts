/**
 * Network output to response images: float tensors to 8-bit pixels, encoded as PNG/JPEG/WebP, returned
 * inline as base64 or stored and returned as a presigned URL. The only part of inference that writes to
 * storage, so the service itself never touches it.
 */
import { randomUUID } from "node:crypto";
import type { ImageResult } from "../api/inference.ts";
import { CONTENT_TYPES, encodeRgb, floatToUint8, type ImageKind, type RgbImage } from "../images/codec.ts";
import { outputKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";

export interface OutputFormat {
  format: ImageKind;
  quality?: number;
  output: "base64" | "url";
}

export class OutputImages {
  constructor(
    private readonly storage: Storage,
    /** lifetime of presigned output URLs */
    private readonly urlExpirySeconds = 3600,
  ) {}

  /** n images of h×w×channels laid out one after another in `out`, each with its own `label` fields (seed, frame). */
  async encodeMany(
    out: Float32Array,
    n: number,
    h: number,
    w: number,
    convention: "stylegan2" | "tanh" | "torchvision",
    p: OutputFormat,
    tenant: string | undefined,
    label: (i: number) => Partial<ImageResult>,
    channels: 1 | 3 = 3,
  ): Promise<ImageResult[]> {
    const per = h * w * channels;
    return Promise.all(
      Array.from({ length: n }, async (_, i) => ({
        ...label(i),
        ...(await this.encodeOne({ data: floatToUint8(out.subarray(i * per, (i + 1) * per), convention), width: w, height: h, channels }, p, tenant)),
      })),
    );
  }

  async encodeOne(img: RgbImage, p: OutputFormat, tenant: string | undefined): Promise<ImageResult> {
    const bytes = await encodeRgb(img, p.format, p.quality);
    const base = { content_type: CONTENT_TYPES[p.format], width: img.width, height: img.height };
    return { ...base, ...(await this.deliver(bytes, base.content_type, p.format === "jpeg" ? "jpg" : p.format, p.output, tenant)) };
  }

  /** Encoded bytes (an image, an animation) inline as base64 or stored and handed out as a presigned URL. */
  async deliver(
    bytes: Uint8Array,
    contentType: string,
    ext: string,
    output: "base64" | "url",
    tenant: string | undefined,
  ): Promise<{ data: string } | { url: string; expires_at: string }> {
    if (output === "base64") return { data: Buffer.from(bytes).toString("base64") };
    const day = new Date().toISOString().slice(0, 10);
    const key = outputKeys.image(tenant, day, randomUUID(), ext);
    await this.storage.put(key, bytes, { contentType });
    const expires = this.urlExpirySeconds;
    return { url: await this.storage.presignGet(key, expires), expires_at: new Date(Date.now() + expires * 1000).toISOString() };
  }
}
