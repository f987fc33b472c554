/**
 * Everything the SDK throws (except a caller's own abort, which rethrows the signal's reason as fetch does)
 * is a GanserveError. Branch on `code`, never on `message`: server codes are stable, messages are not.
 */
import type { ApiErrorCode, Dataset, ErrorBody, FineTune, Rejection } from "./types.ts";

/** Codes the SDK itself produces, for failures that never got (or never were) an HTTP error response. */
export type ClientErrorCode =
  | "connection_error"
  | "timeout"
  | "invalid_response"
  | "dataset_failed"
  | "fine_tune_failed"
  | "fine_tune_canceled"
  | "wait_timeout";

// `string & {}` keeps the union open for codes a newer server may add, without losing autocompletion.
export type GanserveErrorCode = ApiErrorCode | ClientErrorCode | (string & {});

export interface GanserveErrorInit {
  message: string;
  code: GanserveErrorCode;
  status?: number;
  requestId?: string;
  details?: unknown;
  retryAfter?: number;
  cause?: unknown;
}

export class GanserveError extends Error {
  override name = "GanserveError";
  /** HTTP status; undefined when no response was received or the failure is the SDK's own verdict. */
  readonly status: number | undefined;
  readonly code: GanserveErrorCode;
  /** The server's request id: quote it when reporting a problem. */
  readonly requestId: string | undefined;
  readonly details: unknown;
  /** Seconds the server asked to wait (Retry-After) on 429/503. */
  readonly retryAfter: number | undefined;

  constructor(init: GanserveErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.details = init.details;
    this.retryAfter = init.retryAfter;
  }
}

/** No usable response: DNS, refused or reset connection, a stream cut mid-way. */
export class GanserveConnectionError extends GanserveError {
  override name = "GanserveConnectionError";
  constructor(message: string, cause?: unknown, code: GanserveErrorCode = "connection_error") {
    super({ message, code, cause });
  }
}

/** A single request ran past `timeoutMs` (after any retries). */
export class GanserveTimeoutError extends GanserveConnectionError {
  override name = "GanserveTimeoutError";
  constructor(message: string, cause?: unknown) {
    super(message, cause, "timeout");
  }
}

/** `datasets.upload` finalized a dataset the server rejected; `reason` is the archive-level cause (e.g. zip_bomb). */
export class DatasetFailedError extends GanserveError {
  override name = "DatasetFailedError";
  readonly dataset: Dataset | undefined;
  readonly reason: string | undefined;
  readonly rejected: Rejection[];
  constructor(init: { message: string; dataset?: Dataset; reason?: string; cause?: GanserveError }) {
    super({
      message: init.message,
      code: "dataset_failed",
      status: init.cause?.status,
      requestId: init.cause?.requestId,
      details: init.cause?.details,
      cause: init.cause,
    });
    this.dataset = init.dataset;
    this.reason = init.reason ?? init.dataset?.error?.code;
    this.rejected = init.dataset?.rejected ?? [];
  }
}

abstract class FineTuneError extends GanserveError {
  /** The fine-tune as last seen. */
  readonly fineTune: FineTune | undefined;
  constructor(code: ClientErrorCode, message: string, fineTune: FineTune | undefined) {
    super({ message, code, details: fineTune?.error });
    this.fineTune = fineTune;
  }
}

export class FineTuneFailedError extends FineTuneError {
  override name = "FineTuneFailedError";
  constructor(fineTune: FineTune) {
    const why = fineTune.error ? `${fineTune.error.code}: ${fineTune.error.message}` : "no error recorded";
    super("fine_tune_failed", `fine-tune ${fineTune.id} failed (${why})`, fineTune);
  }
}

export class FineTuneCanceledError extends FineTuneError {
  override name = "FineTuneCanceledError";
  constructor(fineTune: FineTune) {
    super("fine_tune_canceled", `fine-tune ${fineTune.id} was canceled`, fineTune);
  }
}

/** `fineTunes.wait` gave up; the fine-tune itself keeps running. */
export class FineTuneTimeoutError extends FineTuneError {
  override name = "FineTuneTimeoutError";
  constructor(id: string, timeoutMs: number, fineTune: FineTune | undefined) {
    super("wait_timeout", `fine-tune ${id} did not finish within ${timeoutMs} ms (it keeps running)`, fineTune);
  }
}

// Mirrors the server's fallback mapping, for error responses that are not in its shape (proxies, S3).
const STATUS_CODES: Record<number, ApiErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable",
  429: "rate_limited",
  503: "overloaded",
};

export function codeForStatus(status: number): ApiErrorCode {
  return STATUS_CODES[status] ?? (status >= 500 ? "internal" : "bad_request");
}

/** Retry-After as seconds (the header may also be an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

const isErrorBody = (v: unknown): v is ErrorBody =>
  typeof v === "object" && v !== null && typeof (v as ErrorBody).error?.code === "string";

/** Builds the error for a non-2xx response from its status, headers and body text. */
export function errorFromResponse(status: number, headers: Headers, text: string): GanserveError {
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (isErrorBody(json)) {
    const { code, message, details, requestId } = json.error;
    return new GanserveError({ status, code, message, details, requestId: requestId ?? headers.get("x-request-id") ?? undefined, retryAfter });
  }
  // S3 (presigned uploads) answers in XML; its Code/Message say why far better than the status does.
  const s3Code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const s3Message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  const summary = s3Code ? `${s3Code}${s3Message ? `: ${s3Message}` : ""}` : text.trim().slice(0, 200);
  return new GanserveError({
    status,
    code: codeForStatus(status),
    message: `HTTP ${status}${summary ? ` ${summary}` : ""}`,
    details: text ? { body: text.slice(0, 2000) } : undefined,
    requestId: headers.get("x-request-id") ?? headers.get("x-amz-request-id") ?? undefined,
    retryAfter,
  });
}
