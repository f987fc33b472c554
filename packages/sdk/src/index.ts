/**
 * @ganserve/sdk for browsers, Deno, Bun, workers and Node: only fetch, Blob, FormData and streams.
 * Node gets `./node.ts` instead (same API, plus file paths wherever a file is taken).
 */
import { GanserveClient } from "./client.ts";
import type { FileInput } from "./files.ts";

export class Ganserve extends GanserveClient<FileInput> {}
export default Ganserve;

export { GanserveClient, type GenerateFunction } from "./client.ts";
export {
  DatasetFailedError,
  FineTuneCanceledError,
  FineTuneFailedError,
  FineTuneTimeoutError,
  GanserveConnectionError,
  GanserveError,
  GanserveTimeoutError,
  type ClientErrorCode,
  type GanserveErrorCode,
} from "./errors.ts";
export { decodeBase64, decodeLatent, encodeLatent, imageBytes, toBlob, type FileInput } from "./files.ts";
export { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, type ClientOptions, type FetchLike, type RequestOptions } from "./http.ts";
export { UPLOAD_TIMEOUT_MS } from "./resources/datasets.ts";
export type { EventsOptions, WaitOptions } from "./resources/fine-tunes.ts";
export { PredictionError, type CreatePredictionOptions, type PredictionWaitOptions } from "./resources/predictions.ts";
export { parseSSE, SSEParser, type SSEMessage } from "./sse.ts";
export type * from "./types.ts";
