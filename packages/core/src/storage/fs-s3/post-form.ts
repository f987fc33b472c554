/**
 * Reads S3's browser POST upload (multipart/form-data) without holding the file in memory: the text fields
 * before the `file` part are read into a small map (capped), then the file part is handed out as a stream of
 * its bytes, cut off with EntityTooLarge as soon as it passes the caller's cap. Fields after the file are
 * ignored, as S3 ignores them.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { S3Error } from "./errors.ts";

/** S3 allows 20 KB of form fields; headers of each part are small. */
const MAX_FIELDS_BYTES = 20 * 1024;
const MAX_PART_HEADER_BYTES = 8 * 1024;
const CRLF = Buffer.from("\r\n");
const HEADER_END = Buffer.from("\r\n\r\n");

export interface PostForm {
  /** Every field before the file, names lowercased (S3 matches them case-insensitively). */
  fields: Map<string, string>;
  /** Content-Type of the file part, if it had one. */
  fileContentType?: string;
  /**
   * The file's bytes. Reading it past `max` bytes fails with 400 EntityTooLarge (ProposedSize unknown, so
   * it is left out); a body that ends before the closing boundary fails with 400 IncompleteBody.
   */
  file(max: number): Readable;
}

const malformed = (why: string) => new S3Error(400, "MalformedPOSTRequest", `The body of your POST request is not well-formed multipart/form-data: ${why}`);

/** The boundary of a multipart/form-data Content-Type, or a 400. */
export function boundaryOf(contentType: string | undefined): string {
  const m = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? "");
  if (!m) throw malformed("the Content-Type has no boundary");
  return m[1] ?? m[2];
}

function parsePartHeaders(raw: string): { name: string; filename?: string; contentType?: string } {
  let name: string | undefined;
  let filename: string | undefined;
  let contentType: string | undefined;
  for (const line of raw.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const h = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    if (h === "content-disposition") {
      if (!/^form-data\b/i.test(v)) throw malformed("a part is not form-data");
      name = /(?:^|;)\s*name="([^"]*)"/i.exec(v)?.[1] ?? /(?:^|;)\s*name=([^;\s]+)/i.exec(v)?.[1];
      filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(v)?.[1];
    } else if (h === "content-type") contentType = v;
  }
  if (name === undefined) throw malformed("a part has no name");
  return { name, filename, contentType };
}

/**
 * Reads the form up to the start of the file part. Throws 400 MalformedPOSTRequest when the form is not
 * well-formed, its fields exceed 20 KB, or it has no file.
 */
export async function readPostForm(req: IncomingMessage, boundary: string): Promise<PostForm> {
  const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  // With a CRLF in front, every delimiter (the first included) is CRLF "--" boundary.
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let buf: Buffer = Buffer.from(CRLF);
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const r = await it.next();
    if (r.done) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
    return true;
  };
  /** Index of `needle` in buf, reading more while it is absent and buf stays under `cap`. */
  const find = async (needle: Buffer, cap: number, what: string): Promise<number> => {
    for (;;) {
      const at = buf.indexOf(needle);
      if (at >= 0) return at;
      if (buf.length > cap) throw malformed(what);
      if (!(await more())) throw malformed("the body ended before the closing boundary");
    }
  };
  const need = async (n: number) => {
    while (buf.length < n) if (!(await more())) throw malformed("the body ended before the closing boundary");
  };

  const fields = new Map<string, string>();
  let fieldBytes = 0;
  // The preamble: anything before the first delimiter (normally nothing).
  const first = await find(delimiter, MAX_FIELDS_BYTES, "no boundary found");
  buf = buf.subarray(first + delimiter.length);
  for (;;) {
    await need(2);
    if (buf[0] === 0x2d && buf[1] === 0x2d) throw new S3Error(400, "InvalidArgument", "POST requires exactly one file upload per request.", { ArgumentName: "file", ArgumentValue: "0" });
    // Transport padding, then CRLF.
    const eol = await find(CRLF, 256, "a boundary line is too long");
    if (buf.subarray(0, eol).toString("latin1").trim() !== "") throw malformed("a boundary line has trailing data");
    buf = buf.subarray(eol + 2);
    const headersEnd = await find(HEADER_END, MAX_PART_HEADER_BYTES, "a part's headers are too long");
    const part = parsePartHeaders(buf.subarray(0, headersEnd).toString("utf8"));
    buf = buf.subarray(headersEnd + 4);
    if (part.name.toLowerCase() === "file") {
      return { fields, fileContentType: part.contentType, file: (max) => Readable.from(fileBytes(max)) };
    }
    const end = await find(delimiter, MAX_FIELDS_BYTES - fieldBytes, "the form fields exceed 20 KB");
    fieldBytes += part.name.length + end;
    if (fieldBytes > MAX_FIELDS_BYTES) throw malformed("the form fields exceed 20 KB");
    fields.set(part.name.toLowerCase(), buf.subarray(0, end).toString("utf8"));
    buf = buf.subarray(end + delimiter.length);
  }

  async function* fileBytes(max: number): AsyncGenerator<Buffer> {
    let size = 0;
    const emit = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max)
        throw new S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", { MaxSizeAllowed: String(max) });
      return chunk;
    };
    // Everything but the last delimiter.length - 1 bytes is file data once no delimiter starts before it.
    const keep = delimiter.length - 1;
    for (;;) {
      const at = buf.indexOf(delimiter);
      if (at >= 0) {
        if (at > 0) yield emit(buf.subarray(0, at));
        buf = Buffer.alloc(0);
        return;
      }
      if (buf.length > keep) {
        const out = buf.subarray(0, buf.length - keep);
        // Copy the tail so the large chunk it came from can be freed.
        buf = Buffer.from(buf.subarray(buf.length - keep));
        yield emit(out);
      }
      if (!(await more())) throw new S3Error(400, "IncompleteBody", "The request body ended before the file's closing boundary");
    }
  }
}
