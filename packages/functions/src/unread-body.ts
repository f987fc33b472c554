/**
 * Answers sent before the request body was read: 401, 415, a 413 from the Content-Length header, or any
 * route that answers without reading what was uploaded. Left to Node, such an answer either leaves the rest
 * of the body on a keep-alive connection or, when it says `Connection: close`, ends the socket the moment the
 * answer is written; the kernel then finds unread bytes in its receive buffer and sends a reset, and a client
 * still uploading loses the answer with it (EPIPE / ECONNRESET instead of the 4xx).
 *
 * One mechanism for every route, at the Node request listener, so no middleware has to remember it:
 * - when the status line of an answer goes out before the body has fully arrived, the connection is kept
 *   only if what was declared is small enough to drain (Content-Length up to `keepAliveDrainBytes`);
 *   otherwise the answer says `Connection: close`;
 * - once the answer is written, the rest of the body is read and thrown away;
 * - the connection's close becomes a lingering close: our side is shut (FIN) but the rest of the upload is
 *   still read until the client closes, so nothing is left unread when the socket goes; bounded in bytes
 *   and time, after which the socket is destroyed anyway.
 */
import http, { type IncomingMessage, type RequestListener, type ServerOptions, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface UnreadBodyLimits {
  /** An early answer keeps the connection when the declared body is at most this; the rest is drained. */
  keepAliveDrainBytes: number;
  /** A body still arriving after its answer is discarded up to this many bytes, then the socket is destroyed. */
  discardBytes: number;
  /** A lingering close waits at most this long in all for the client to finish and close... */
  lingerMs: number;
  /** ...and this long without any data from it. */
  lingerIdleMs: number;
}

export const DEFAULT_UNREAD_BODY_LIMITS: Readonly<UnreadBodyLimits> = Object.freeze({
  keepAliveDrainBytes: 1024 * 1024,
  discardBytes: 64 * 1024 * 1024,
  lingerMs: 30_000,
  lingerIdleMs: 5_000,
});

/** `http.createServer` with the listener wrapped by answerBeforeBodyCleanly: what the server is built with. */
export const createServer = ((options?: ServerOptions | RequestListener, listener?: RequestListener) =>
  typeof options === "function"
    ? http.createServer(answerBeforeBodyCleanly(options))
    : http.createServer(options ?? {}, listener && answerBeforeBodyCleanly(listener))) as typeof http.createServer;

/** Wraps a request listener so that answers given before the body was read end cleanly (see above). */
export function answerBeforeBodyCleanly(listener: RequestListener, limits: UnreadBodyLimits = DEFAULT_UNREAD_BODY_LIMITS): RequestListener {
  return (req, res) => {
    const writeHead = res.writeHead;
    // Every way of starting an answer (writeHead, or write/end that imply it) goes through writeHead; this is
    // the last moment the answer's Connection header can still be chosen.
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      res.writeHead = writeHead;
      if (!req.complete) beforeEarlyAnswer(req, res, limits);
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse["writeHead"];
    listener(req, res);
  };
}

function beforeEarlyAnswer(req: IncomingMessage, res: ServerResponse, limits: UnreadBodyLimits) {
  lingerOnClose(req.socket, limits);
  const length = req.headers["content-length"];
  const declared = length !== undefined && /^\d+$/.test(length) ? Number(length) : Infinity;
  // A large (or chunked, so unknown) body may be the very reason for the answer (413): not worth waiting for
  // on a connection that is to carry the next request.
  if (declared > limits.keepAliveDrainBytes) res.setHeader("Connection", "close");
  res.once("finish", () => discardRest(req, limits));
}

/** Reads what is left of the body and drops it; the socket goes once more than `discardBytes` came. */
function discardRest(req: IncomingMessage, limits: UnreadBodyLimits) {
  if (req.complete || req.destroyed) return;
  let bytes = 0;
  // The app's readers are done with this request; their listeners would only buffer what is thrown away.
  req.removeAllListeners("data");
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.discardBytes) req.socket.destroy();
  });
  req.resume();
}

const lingering = new WeakSet<Socket>();

/**
 * Node ends a closing connection with socket.destroySoon(): FIN, then destroy as soon as it is written,
 * with the client's upload possibly still arriving. This socket's destroySoon instead shuts our side and
 * keeps reading (the HTTP parser discards the rest of the body) until the client closes or a limit passes.
 */
function lingerOnClose(socket: Socket, limits: UnreadBodyLimits) {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  const s = socket as Socket & { destroySoon?: () => void };
  s.destroySoon = () => {
    if (socket.destroyed) return;
    socket.end();
    const stop = () => socket.destroy();
    const total = setTimeout(stop, limits.lingerMs);
    total.unref();
    socket.setTimeout(limits.lingerIdleMs, stop);
    socket.once("end", stop);
    socket.once("close", () => clearTimeout(total));
    socket.resume();
  };
}
