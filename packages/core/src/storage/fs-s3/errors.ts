/** S3-style errors: an HTTP status, an S3 error code and message, rendered as S3's XML error document. */
export class S3Error extends Error {
  override name = "S3Error";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** extra elements of the error document (e.g. Condition) */
    readonly extra: Record<string, string> = {},
    /** extra response headers (e.g. Retry-After) */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const xmlEscape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");

export function errorXml(err: S3Error, resource: string, requestId: string): string {
  const extra = Object.entries(err.extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>${extra}<Resource>${xmlEscape(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`;
}

/**
 * A filesystem failure as the client should see it: the store is unavailable for now (503, or 507 when the
 * disk is full), never a crash and never a 500 that hides the cause from the logs.
 */
export function storageFailure(e: unknown): S3Error {
  const code = (e as NodeJS.ErrnoException)?.code ?? "EIO";
  if (code === "ENOSPC" || code === "EDQUOT")
    return new S3Error(507, "InsufficientStorage", `The store has no space left (${code})`, {}, { "Retry-After": "30" });
  return new S3Error(503, "ServiceUnavailable", `The store cannot complete the request (${code})`, {}, { "Retry-After": "5" });
}
