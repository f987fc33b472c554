/**
 * A server-sent events parser over a fetch body, per the WHATWG "event stream interpretation" rules:
 * CR, LF and CRLF line ends (a CRLF may be split across chunks), multi-line `data`, comments, `id` that
 * persists across events, `retry`. EventSource itself cannot send an Authorization header, hence this.
 */

export interface SSEMessage {
  /** `message` when the event named none. */
  event: string;
  data: string;
  /** The stream's last event id at this event (the spec carries it over to events without an `id`). */
  id: string | undefined;
}

export class SSEParser {
  /**
   * The id of the last event dispatched (or id-only block closed): what to send back as Last-Event-ID.
   * An `id:` line of an event cut off mid-way does not count, or a reconnect would skip that event.
   */
  lastEventId: string | undefined;
  #idBuffer: string | undefined;
  /** Reconnection delay in ms, when the server set one with `retry:`. */
  retry: number | undefined;
  #buffer = "";
  #data: string[] = [];
  #event = "";

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId;
    this.#idBuffer = lastEventId;
  }

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SSEMessage[] {
    this.#buffer += text;
    const out: SSEMessage[] = [];
    let start = 0;
    for (;;) {
      let end = -1;
      for (let i = start; i < this.#buffer.length; i++) {
        const ch = this.#buffer.charCodeAt(i);
        if (ch === 10 || ch === 13) {
          end = i;
          break;
        }
      }
      if (end === -1) break;
      // A trailing CR may be the first half of a CRLF split across chunks: wait for the next chunk.
      if (this.#buffer.charCodeAt(end) === 13 && end === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(start, end);
      start = end + (this.#buffer.charCodeAt(end) === 13 && this.#buffer.charCodeAt(end + 1) === 10 ? 2 : 1);
      const message = this.#line(line);
      if (message) out.push(message);
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  /** End of stream: a lone CR still ends a line; an event without its blank line is dropped, as the spec says. */
  end(): SSEMessage[] {
    const out: SSEMessage[] = [];
    if (this.#buffer.endsWith("\r")) {
      const message = this.#line(this.#buffer.slice(0, -1));
      if (message) out.push(message);
    }
    this.#buffer = "";
    this.#data = [];
    this.#event = "";
    this.#idBuffer = this.lastEventId;
    return out;
  }

  #line(line: string): SSEMessage | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return undefined;
  }

  #dispatch(): SSEMessage | undefined {
    this.lastEventId = this.#idBuffer;
    const event = this.#event || "message";
    const data = this.#data;
    this.#data = [];
    this.#event = "";
    if (data.length === 0) return undefined;
    return { event, data: data.join("\n"), id: this.lastEventId };
  }
}

/**
 * Events of a byte stream. Stopping early (break, return, throw in the loop) cancels the stream, which
 * closes the connection.
 */
export async function* parseSSE(body: ReadableStream<Uint8Array>, parser: SSEParser = new SSEParser()): AsyncGenerator<SSEMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parser.push(decoder.decode());
    yield* parser.end();
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
