/**
 * One error model for the whole service. Domain code throws `ApiError` with a stable machine-readable
 * `code`; the HTTP layer renders it as `{ error: { code, message, details?, requestId } }` with the status
 * the code implies. Clients (and the SDK) branch on `code`, never on the message.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  validation_failed: 400,
  invalid_image: 400,
  invalid_label_map: 400,
  invalid_archive: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  model_not_found: 404,
  version_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  wrong_model_family: 422,
  unsupported_parameter: 422,
  unprocessable: 422,
  rate_limited: 429,
  queue_full: 429,
  internal: 500,
  storage_unavailable: 503,
  queue_unavailable: 503,
  overloaded: 503,
  deadline_exceeded: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Seconds a client should wait before retrying (429/503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

export const isApiError = (e: unknown): e is ApiError => e instanceof ApiError;
