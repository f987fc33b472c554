/**
 * The playground talks to the API through the SDK's browser entry, like any client app would. This module
 * only keeps the key in localStorage and hands out a client bound to it.
 */
import { Ganserve, GanserveError, imageBytes, type ImageResult } from "@ganserve/sdk";

export type { Dataset, FineTune, GenerateResponse, ModelInfo, TranslateResponse } from "@ganserve/sdk";
export { GanserveError };

const KEY_STORAGE = "ganserve.apiKey";
export const getApiKey = () => localStorage.getItem(KEY_STORAGE) ?? "";
export const setApiKey = (key: string) => localStorage.setItem(KEY_STORAGE, key.trim());

/** A client for the current key (cheap to make; the key can change at any time in the header). */
export const client = () => new Ganserve({ baseUrl: location.origin, apiKey: getApiKey() });

/** An image result as something an <img> can show. */
export function imageSrc(img: ImageResult): string {
  if (img.url) return img.url;
  return URL.createObjectURL(new Blob([imageBytes(img) as BlobPart], { type: img.content_type }));
}
