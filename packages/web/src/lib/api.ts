/**
 * The playground talks to the API through the SDK's browser entry, like any client app would. This module
 * keeps the typed key in localStorage, falls back to the local dev key when the server hands one out, and
 * hands out a client bound to the key in use.
 */
import { Ganserve, GanserveError, imageBytes, type ImageResult, type ModelInfo } from "@ganserve/sdk";

export type { Dataset, DirectionInfo, FineTune, GenerateResponse, ImageResult, ModelInfo, TranslateResponse } from "@ganserve/sdk";
export { GanserveError };

/** An example input of a model, as /v1/models lists it. */
export type ModelExample = NonNullable<ModelInfo["examples"]>[number];

const KEY_STORAGE = "ganserve.apiKey";
/** Served by `npm start` only outside production (packages/functions/src/dev-key.ts). */
const DEV_KEY_PATH = "/playground/dev-key";
let devKey = "";

export const getTypedKey = () => localStorage.getItem(KEY_STORAGE) ?? "";
/** The key requests use: the one typed in the header, else the local dev key. */
export const getApiKey = () => getTypedKey() || devKey;
export const setApiKey = (key: string) => localStorage.setItem(KEY_STORAGE, key.trim());

/**
 * The dev key of a local server, when this page is served by it; undefined in production or when the server
 * uses configured keys (the route does not exist there, so the answer is a 404).
 */
export async function loadDevKey(): Promise<string | undefined> {
  try {
    const res = await fetch(DEV_KEY_PATH, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { api_key?: unknown };
    if (typeof body.api_key !== "string" || !body.api_key) return undefined;
    devKey = body.api_key;
    return devKey;
  } catch {
    return undefined;
  }
}

/** A client for the current key (cheap to make; the key can change at any time in the header). */
export const client = () => new Ganserve({ baseUrl: location.origin, apiKey: getApiKey() });

/** An image result as something an <img> can show. */
export function imageSrc(img: ImageResult): string {
  if (img.url) return img.url;
  return URL.createObjectURL(new Blob([imageBytes(img) as BlobPart], { type: img.content_type }));
}

/** An example's input file (short-lived URL from /v1/models) as a File the SDK can send. */
export async function exampleFile(ex: ModelExample): Promise<File> {
  if (!ex.url) throw new Error(`example "${ex.caption}" has no file`);
  // Not from the cache: a thumbnail <img> may have stored the same URL from a no-CORS request, which a
  // CORS fetch cannot read.
  const res = await fetch(ex.url, { cache: "no-store" });
  if (!res.ok) throw new Error(`example "${ex.caption}": HTTP ${res.status}`);
  return new File([await res.blob()], "example.png", { type: "image/png" });
}
