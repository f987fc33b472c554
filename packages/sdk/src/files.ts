/** File inputs and image outputs, without Node APIs (the Node entry adds paths on top). */
import type { ImageResult } from "./types.ts";

/**
 * Bytes in any of the forms browsers and Node hand out. Buffer is a Uint8Array, so it is accepted too.
 * A ReadableStream is read once into memory before sending: retries must be able to resend it, and a
 * dataset's upload form needs its size before it is created.
 */
export type FileInput = Blob | ArrayBuffer | ArrayBufferView | ReadableStream<Uint8Array>;

/** A file ready to send, with the name multipart needs (Hono treats parts without one as text fields). */
export interface NamedBlob {
  blob: Blob;
  name: string;
}

/** Turns an entry point's extra input forms (Node: path strings) into a blob. */
export type FileResolver = (input: string) => Promise<NamedBlob>;

const SIGNATURES: [string, string, (b: Uint8Array) => boolean][] = [
  ["image/png", "png", (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ["image/jpeg", "jpg", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ["image/webp", "webp", (b) => ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP"],
  ["application/zip", "zip", (b) => b[0] === 0x50 && b[1] === 0x4b && (b[2] === 3 || b[2] === 5) && (b[3] === 4 || b[3] === 6)],
];
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

async function sniff(blob: Blob): Promise<{ type: string; ext: string } | undefined> {
  const head = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
  const hit = SIGNATURES.find(([, , test]) => test(head));
  return hit && { type: hit[0], ext: hit[1] };
}

function viewToBlob(view: ArrayBufferView): Blob {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  // Blob parts must not be SharedArrayBuffer-backed; copy those.
  return new Blob([bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice()]);
}

export async function inputToBlob(input: FileInput): Promise<Blob> {
  if (input instanceof Blob) return input;
  if (input instanceof ArrayBuffer) return new Blob([input]);
  if (ArrayBuffer.isView(input)) return viewToBlob(input);
  if (typeof (input as ReadableStream).getReader === "function") return new Response(input as ReadableStream<Uint8Array>).blob();
  throw new TypeError(`expected a Blob, ArrayBuffer, Uint8Array/Buffer or ReadableStream, got ${describeInput(input)}`);
}

/** A blob with a content type and a file name, sniffed from its first bytes when it came without them. */
export async function toNamedBlob(input: unknown, fallbackName: string, resolve?: FileResolver): Promise<NamedBlob> {
  let named: NamedBlob;
  if (typeof input === "string") {
    if (!resolve)
      throw new TypeError(`'${fallbackName}' is a string: file paths are supported by the Node entry only; pass the bytes (Blob, Uint8Array, ArrayBuffer or ReadableStream)`);
    named = await resolve(input);
  } else {
    const blob = await inputToBlob(input as FileInput);
    const name = typeof File !== "undefined" && blob instanceof File && blob.name ? blob.name : fallbackName;
    named = { blob, name };
  }
  if (named.blob.type && /\.[a-z0-9]+$/i.test(named.name)) return named;
  const kind = await sniff(named.blob);
  if (!kind) return named;
  const blob = named.blob.type ? named.blob : new Blob([named.blob], { type: kind.type });
  return { blob, name: /\.[a-z0-9]+$/i.test(named.name) ? named.name : `${named.name}.${kind.ext}` };
}

function describeInput(v: unknown): string {
  return v === null ? "null" : typeof v === "object" ? (v.constructor?.name ?? "object") : typeof v;
}

/** Base64 → bytes, with the native decoder where the runtime has one. */
/** Bytes → base64 (what JSON bodies carry), without Node's Buffer so it runs in browsers too. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** A latent (w, ws, a direction) as the API sends it in base64 → float32 values (little-endian). */
export function decodeLatent(b64: string): Float32Array {
  const bytes = decodeBase64(b64);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** Float32 values → the base64 latent the API takes (`w`, `ws`, `keyframes.w`). */
export function encodeLatent(values: ArrayLike<number>): string {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return toBase64(bytes);
}

export function decodeBase64(b64: string): Uint8Array {
  const clean = b64.replace(/^data:[^;]+;base64,/, "");
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
  if (native) return native(clean.replace(/\s+/g, ""));
  const bin = atob(clean.replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The encoded image bytes of a result returned inline (`output: "base64"`, the default). */
export function imageBytes(image: ImageResult): Uint8Array {
  if (image.data === undefined)
    throw new TypeError(`this image was returned as a URL (output: "url"): fetch image.url, or use client.download(image)`);
  return decodeBase64(image.data);
}

/** The image as a Blob of its content type, e.g. for URL.createObjectURL or a multipart upload. */
export function toBlob(image: ImageResult): Blob {
  return new Blob([imageBytes(image) as Uint8Array<ArrayBuffer>], { type: image.content_type });
}
