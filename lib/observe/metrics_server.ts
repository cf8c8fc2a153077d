/**
 * The metrics endpoint's HTTP/1.1 server: `GET /metrics`, one request per
 * connection, with a bound on connections (in all, and per peer when an
 * `admit` check is handed in), on the time a request's head may take to
 * arrive (2 s), and on the time each connection may take in all.
 *
 * Why not `Deno.serve`: it has no header or idle timeout, so silent and
 * half-sent requests were kept forever, and when descriptors ran out its
 * `finished` promise rejected unhandled and the process exited 1 (issue 13).
 * `Deno.listen`'s `accept()` reports running out as an error and works again
 * afterwards, so this loop logs it once, backs off and carries on.
 *
 * @module
 */

import {
  GreeterError,
  PermissionDeniedError,
  UnauthenticatedError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatAddress } from "../wire/address.ts";

/** Default most metrics connections open at once. */
export const DEFAULT_MAX_METRICS_CONNECTIONS = 32;

/** Default milliseconds a metrics connection has to send its request and take the reply. */
export const DEFAULT_METRICS_TIMEOUT_MS = 10_000;

/**
 * Default milliseconds a connection has to send its request's head: a
 * scraper sends it at once, and 32 idle connections held each slot for the
 * whole timeout, again and again, so no scrape got in.
 */
export const DEFAULT_METRICS_HEADER_TIMEOUT_MS = 2_000;

/** Largest request head read (a scrape needs a few hundred bytes). */
const MAX_HEAD_BYTES = 8 * 1024;

/** Longest back-off between failed accepts (ms). */
const MAX_ACCEPT_BACKOFF_MS = 1_000;

/** Options of {@linkcode serveMetricsHttp}. */
export interface MetricsServerOptions {
  /** Interface to bind. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** The exposition text, rendered per request. */
  render: () => string | Promise<string>;
  /** Where running out of descriptors is said. */
  log: Logger;
  /** Most connections at once; beyond, new ones are closed at once. Default {@linkcode DEFAULT_MAX_METRICS_CONNECTIONS}. */
  maxConnections?: number;
  /** Each connection is closed after this long (ms), done or not. Default {@linkcode DEFAULT_METRICS_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** A connection whose request head has not come in this long (ms) is closed. Default {@linkcode DEFAULT_METRICS_HEADER_TIMEOUT_MS}. */
  headerTimeoutMs?: number;
  /**
   * Takes a slot for a connection from `peer` (`HOST:PORT`): its release,
   * or why it may not (its peer holds its share); then it is closed at
   * once. Default: every connection within `maxConnections`.
   */
  admit?: (
    peer: string,
  ) => { release?: () => void; refused?: string };
  /**
   * Checks a request from `peer` (`HOST:PORT`) with its `authorization`
   * header: returns to let it through, throws an `UnauthenticatedError`
   * (401) or a `PermissionDeniedError` (403) to refuse it. Default: everyone
   * may read.
   */
  authorize?: (
    caller: { peer: string; authorization?: string },
  ) => void;
}

/** The HTTP refusal of `error`, thrown by `authorize`. */
function refusalOf(error: unknown): { status: string; text: string } {
  const text = error instanceof Error ? error.message : String(error);
  if (error instanceof UnauthenticatedError) {
    return { status: "401 Unauthorized", text };
  }
  if (error instanceof PermissionDeniedError) {
    return { status: "403 Forbidden", text };
  }
  return { status: "500 Internal Server Error", text: "Internal error" };
}

/** Why `authorize` refuses a request, or `undefined` when it may read. */
function refused(
  options: MetricsServerOptions,
  caller: { peer: string; authorization?: string },
): { status: string; text: string } | undefined {
  try {
    options.authorize?.(caller);
    return undefined;
  } catch (error) {
    return refusalOf(error);
  }
}

/** The `authorization` header of a request head, if any. */
function authorizationOf(head: string): string | undefined {
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (line.slice(0, colon).trim().toLowerCase() === "authorization") {
      return line.slice(colon + 1).trim();
    }
  }
  return undefined;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The bound port. */
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, closes every connection, and resolves once all are gone. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");

/** Where `\r\n\r\n` starts in the first `length` bytes of `bytes`; -1 if not there. */
function headEnd(bytes: Uint8Array, length: number): number {
  outer: for (let i = 0; i + 4 <= length; i++) {
    for (let j = 0; j < 4; j++) {
      if (bytes[i + j] !== HEAD_END[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** A complete HTTP/1.1 response that closes the connection. */
function response(
  status: string,
  body: string,
  head: boolean,
  contentType = "text/plain; charset=utf-8",
  extraHeaders = "",
): Uint8Array {
  const payload = encoder.encode(body);
  const header = encoder.encode(
    `HTTP/1.1 ${status}\r\ncontent-type: ${contentType}\r\ncontent-length: ${payload.length}\r\n${extraHeaders}connection: close\r\n\r\n`,
  );
  if (head) return header;
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

/** Closes `conn`, which may be closed already (by the deadline or a stop). */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** The reply to a request whose head is `text`. */
async function replyTo(
  text: string,
  conn: Deno.Conn,
  options: MetricsServerOptions,
): Promise<Uint8Array> {
  const line = text.split("\r\n", 1)[0];
  const [method, target, version] = line.split(" ");
  const isHead = method === "HEAD";
  const remote = conn.remoteAddr as Deno.NetAddr;
  const refusal = target && version?.startsWith("HTTP/1.")
    ? refused(options, {
      peer: formatAddress(remote.hostname, remote.port),
      authorization: authorizationOf(text),
    })
    : undefined;
  let reply: Uint8Array;
  if (!target || !version?.startsWith("HTTP/1.")) {
    reply = response(
      "400 Bad Request",
      "Bad request: expected GET /metrics HTTP/1.1\n",
      false,
    );
  } else if (refusal) {
    reply = response(
      refusal.status,
      refusal.text + "\n",
      isHead,
      undefined,
      refusal.status.startsWith("401")
        ? 'www-authenticate: Bearer realm="greeter"\r\n'
        : "",
    );
  } else if (target.split("?", 1)[0] !== "/metrics") {
    reply = response(
      "404 Not Found",
      "Not found: metrics are at /metrics\n",
      isHead,
    );
  } else if (method !== "GET" && !isHead) {
    reply = response("405 Method Not Allowed", "Use GET\n", false);
  } else {
    reply = response(
      "200 OK",
      await options.render(),
      isHead,
      "text/plain; version=0.0.4; charset=utf-8",
    );
  }
  return reply;
}

/** Answers one request on `conn`, then closes it; never throws. */
async function exchange(
  conn: Deno.Conn,
  options: MetricsServerOptions,
  timeoutMs: number,
): Promise<void> {
  // One deadline for the whole exchange: a peer that sends half a
  // request, or reads the reply slowly, is cut off; and a shorter one for
  // the request's head, which a scraper sends at once.
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  const headTimer = setTimeout(
    () => closeQuietly(conn),
    Math.min(
      timeoutMs,
      options.headerTimeoutMs ?? DEFAULT_METRICS_HEADER_TIMEOUT_MS,
    ),
  );
  try {
    const buffer = new Uint8Array(MAX_HEAD_BYTES);
    let length = 0;
    let end = -1;
    while (end < 0) {
      if (length === buffer.length) {
        await writeAll(
          conn,
          response(
            "431 Request Header Fields Too Large",
            "Request head over 8 KiB\n",
            false,
          ),
        );
        return;
      }
      const n = await conn.read(buffer.subarray(length));
      if (n === null) return; // the peer left
      length += n;
      end = headEnd(buffer, length);
    }
    clearTimeout(headTimer);
    const head = new TextDecoder().decode(buffer.subarray(0, end));
    await writeAll(conn, await replyTo(head, conn, options));
  } catch {
    // Reset, timed out or closed by stop(): nothing to answer.
  } finally {
    clearTimeout(timer);
    clearTimeout(headTimer);
    closeQuietly(conn);
  }
}

/**
 * Serves `render()` at `http://HOST:PORT/metrics` until `stop()`. Throws a
 * {@linkcode GreeterError} naming the address when it cannot bind.
 *
 * @example
 * ```ts
 * import { serveMetricsHttp } from "./metrics_server.ts";
 * import { Logger } from "../log.ts";
 * const server = serveMetricsHttp({
 *   host: "127.0.0.1",
 *   port: 0,
 *   render: () => "up 1\n",
 *   log: new Logger({ write: () => {} }),
 * });
 * server.connections; // 0
 * await server.stop();
 * ```
 */
export function serveMetricsHttp(options: MetricsServerOptions): MetricsServer {
  const { host, port, log } = options;
  const maxConnections = options.maxConnections ??
    DEFAULT_MAX_METRICS_CONNECTIONS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_METRICS_TIMEOUT_MS;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: host, port });
  } catch (error) {
    throw new GreeterError(
      `Cannot serve metrics on "${formatAddress(host, port)}": ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  const open = new Map<Deno.Conn, Promise<void>>();
  let stopped = false;
  /** Wakes the accept loop's back-off early on stop. */
  let wake: (() => void) | undefined;

  const accepting = (async () => {
    let backoffMs = 0;
    let exhausted = false;
    let lastRefusalLine = -Infinity;
    while (!stopped) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopped) return;
        backoffMs = Math.min(
          MAX_ACCEPT_BACKOFF_MS,
          Math.max(10, backoffMs * 2),
        );
        if (!exhausted) {
          exhausted = true;
          log.error("The metrics listener cannot accept: backing off", {
            error: String(error),
            connections: open.size,
          });
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        continue;
      }
      if (exhausted) {
        exhausted = false;
        backoffMs = 0;
        log.info("The metrics listener accepts again");
      }
      const remote = conn.remoteAddr as Deno.NetAddr;
      const share = open.size < maxConnections
        ? options.admit?.(formatAddress(remote.hostname, remote.port))
        : undefined;
      if (open.size >= maxConnections || share?.refused !== undefined) {
        conn.close();
        if (Date.now() - lastRefusalLine >= 10_000) {
          lastRefusalLine = Date.now();
          log.warn(
            share?.refused !== undefined
              ? `Refused a metrics connection: ${share.refused}`
              : `Metrics connection limit of ${maxConnections} reached: refusing new connections`,
          );
        }
        continue;
      }
      open.set(
        conn,
        exchange(conn, options, timeoutMs).finally(() => {
          open.delete(conn);
          share?.release?.();
        }),
      );
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return open.size;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      listener.close();
      wake?.();
      for (const conn of open.keys()) closeQuietly(conn);
      await accepting;
      await Promise.all(open.values());
    },
  };
}
