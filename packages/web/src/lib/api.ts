/**
 * The playground talks to the API through the SDK's browser entry, like any client app would. This module
 * keeps the typed key in localStorage, falls back to the local dev key when the server hands one out, and
 * hands out a client bound to the key in use.
 */
import { Ganserve, GanserveError, imageBytes, PredictionError, type ImageResult, type ModelInfo, type Prediction } from "@ganserve/sdk";

export type { Dataset, DirectionInfo, FineTune, GenerateResponse, ImageResult, ModelInfo, Prediction, TranslateResponse } from "@ganserve/sdk";
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

const ENDED = new Set<Prediction["status"]>(["succeeded", "failed", "canceled"]);

/**
 * Runs `model` on `input` (a generate or translate body without model) as a prediction and reports where it
 * stands as it goes: `starting → processing (3/8) → succeeded`. A slow pass (a cold worker, a big batch)
 * thus shows its status instead of a spinner that times out. Create answers at once (202); the prediction
 * is then followed through its event stream (the SDK polls where the stream does not deliver). Images come
 * back inline. Throws PredictionError when it fails or is canceled.
 */
export async function runPrediction(model: string, input: Record<string, unknown>, onStatus: (text: string) => void): Promise<Prediction> {
  const c = client();
  const trail: string[] = [];
  const note = (p: Prediction) => {
    if (trail[trail.length - 1] !== p.status) trail.push(p.status);
    const progress = p.status === "processing" && p.progress ? ` (${p.progress.completed}/${p.progress.total})` : "";
    onStatus(`${trail.join(" → ")}${progress}`);
  };
  let p = await c.predictions.create({ model, input: { ...input, output: "base64" } }, { wait: 0 });
  note(p);
  if (!ENDED.has(p.status))
    for await (const event of c.predictions.stream(p.id)) {
      p = event.prediction;
      note(p);
    }
  if (p.status !== "succeeded") throw new PredictionError(p);
  return p;
}

/** A file's bytes in base64, as a prediction's input carries files (translate's image, label_map). */
export async function base64Of(file: Blob): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Milliseconds of a prediction metric (seconds), for captions. */
export const metricMs = (seconds: number | undefined) => Math.round((seconds ?? 0) * 1000);

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
