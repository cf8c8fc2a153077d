/**
 * Failed TLS handshakes, seen from the server and logged: grpc-js keeps its
 * HTTP/2 servers private (1.14: `Server.http2Servers`, a `Map` keyed by the
 * `node:http2` server) and says nothing when a handshake fails. The
 * servers' own `tlsClientError` event does (on Deno 2.9.3 too, with the peer
 * address on the TLS socket's parent).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";
import type { Logger } from "../../log.ts";
import { peerHost } from "../../wire/address.ts";
import { PeerGuard } from "../../access/peer_guard.ts";

interface SocketLike {
  remoteAddress?: string;
  remotePort?: number;
  _parent?: SocketLike;
}

/** `HOST:PORT` of a TLS socket, or `"unknown"`. */
function peerOf(socket?: SocketLike): string {
  const address = socket?.remoteAddress ?? socket?._parent?.remoteAddress;
  const port = socket?.remotePort ?? socket?._parent?.remotePort;
  return address ? `${address}:${port ?? 0}` : "unknown";
}

/**
 * Calls `onFailure(reason, peer)` for each failed TLS handshake on
 * `server`'s bound ports (call after binding); returns the function that
 * stops. Does nothing when grpc-js's internals moved.
 *
 * @example
 * ```ts ignore
 * const stop = watchHandshakes(server, (reason, peer) => console.log(reason, peer));
 * ```
 */
export function watchHandshakes(
  server: grpc.Server,
  onFailure: (reason: string, peer: string) => void,
): () => void {
  const servers = (server as unknown as {
    http2Servers?: Map<unknown, unknown>;
  }).http2Servers;
  const listener = (error: Error, socket?: SocketLike) => {
    onFailure(error?.message ?? String(error), peerOf(socket));
  };
  const watched: EventEmitter[] = [];
  for (const http2Server of servers?.keys() ?? []) {
    const emitter = http2Server as EventEmitter;
    if (typeof emitter?.on !== "function") continue;
    emitter.on("tlsClientError", listener);
    watched.push(emitter);
  }
  return () => {
    for (const emitter of watched) emitter.off("tlsClientError", listener);
  };
}

/**
 * Logs `server`'s failed TLS handshakes: at warn at most once per peer
 * address per 10 s (the next line counts those left out), every one at
 * debug. Returns the function that stops.
 */
export function logHandshakeFailures(
  server: grpc.Server,
  log: Logger,
  guard: PeerGuard = new PeerGuard(),
): () => void {
  return watchHandshakes(server, (reason, peer) => {
    const unlogged = guard.shouldLog(peerHost(peer));
    const fields = {
      peer,
      reason,
      refusedSinceLastLine: unlogged || undefined,
    };
    if (unlogged === undefined) log.debug("Refused a TLS handshake", fields);
    else log.warn("Refused a TLS handshake", fields);
  });
}
