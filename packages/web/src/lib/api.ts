/**
 * The playground's view of the API: a fetch wrapper that adds the key and turns error bodies into
 * `ApiFailure`s carrying the server's code and request id, so every page can show a readable message.
 * Types come from the core zod schemas (type-only imports: nothing from core runs in the browser).
 */
import type { GenerateRequest, GenerateResponse, ModelInfo, TranslateRequest, TranslateResponse } from "@ganserve/core/api/inference";
import type { CreateFineTuneRequest, Dataset, FineTune } from "@ganserve/core/api/finetune";

export type { GenerateResponse, ModelInfo, TranslateResponse, Dataset, FineTune };

const KEY_STORAGE = "ganserve.apiKey";
export const getApiKey = () => localStorage.getItem(KEY_STORAGE) ?? "";
export const setApiKey = (key: string) => localStorage.setItem(KEY_STORAGE, key.trim());

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${getApiKey()}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiFailure(0, "network_error", `cannot reach the server: ${(e as Error).message}`);
  }
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = json?.error ?? {};
    throw new ApiFailure(res.status, err.code ?? "http_error", err.message ?? res.statusText, err.requestId ?? res.headers.get("x-request-id") ?? undefined);
  }
  return json as T;
}

export const api = {
  models: () => call<{ models: ModelInfo[] }>("GET", "/v1/models").then((r) => r.models),
  generate: (req: GenerateRequest) => call<GenerateResponse>("POST", "/v1/generate", req),
  translate: (req: TranslateRequest) => call<TranslateResponse>("POST", "/v1/translate", req),
  createDataset: (layout: string, name: string) => call<Dataset>("POST", "/v1/datasets", { layout, name }),
  finalizeDataset: (id: string) => call<Dataset>("POST", `/v1/datasets/${id}/finalize`),
  createFineTune: (req: CreateFineTuneRequest) => call<FineTune>("POST", "/v1/fine-tunes", req),
  fineTune: (id: string) => call<FineTune>("GET", `/v1/fine-tunes/${id}`),
  cancelFineTune: (id: string) => call<FineTune>("POST", `/v1/fine-tunes/${id}/cancel`),
  /** EventSource cannot send headers, so the key goes in the query (accepted on GET only). */
  eventsUrl: (id: string) => `/v1/fine-tunes/${id}/events?api_key=${encodeURIComponent(getApiKey())}`,
};

export async function uploadTo(upload: NonNullable<Dataset["upload"]>, file: Blob) {
  const res = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: file });
  if (!res.ok) throw new ApiFailure(res.status, "upload_failed", `the upload was refused (${res.status})`);
}

export const dataUrl = (img: { content_type: string; data?: string; url?: string }) => img.url ?? `data:${img.content_type};base64,${img.data}`;

export async function fileToBase64(file: Blob): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
