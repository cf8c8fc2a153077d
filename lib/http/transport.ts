/**
 * Folder `lib/http/`: the HTTP adapter on `Deno.serve`, the only code that
 * touches HTTP requests: server-sent events (`events.ts`), Connect and
 * gRPC-Web (`connect.ts`, `subscribe_stream.ts`), the session cookie and
 * where tokens come from (`credentials.ts`), cross-origin requests
 * (`cors.ts`), the console's files (`console_files.ts`), the shared
 * encodings (`encoded_items.ts`), a subscription's life
 * (`subscriptions.ts`), and typed errors as HTTP answers (`status.ts`);
 * assembled here. May import `lib/access/`, `lib/observe/`, `lib/bus/`,
 * `lib/wire/` and the shared modules of `lib/`; never `lib/grpc/`,
 * `lib/server/` or `lib/cli/`.
 *
 * The HTTP transport, as the server's core starts and stops it: one
 * `Deno.serve` listener on `--http-port` (HTTP/1.1 and HTTP/2: by ALPN under
 * TLS, by prior knowledge in plaintext) serving the same hub, tokens,
 * grants, limits and drain as gRPC. `Deno.serve` stops for good when it
 * runs out of descriptors (its `finished` rejects): the transport logs it
 * and listens again on the same port, its open streams going on meanwhile.
 *
 * @module
 */

import type { AccessControl } from "../access/access.ts";
import type { Clock } from "../bus/clock.ts";
import { GreeterError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RpcMethodInfo } from "../observe/rpc_metrics.ts";
import type { ConnectionStats } from "../observe/server_metrics.ts";
import type { Transport, TransportCore } from "../transport.ts";
import { greeterDescriptors } from "../wire/descriptors.ts";
import { formatAddress } from "../wire/address.ts";
import type { ServerTls } from "../wire/tls.ts";
import { ConnectCalls } from "./connect.ts";
import { ConsoleFiles } from "./console_files.ts";
import { Cors } from "./cors.ts";
import { callerOf, session, SESSION_PATH } from "./credentials.ts";
import { EncodedItems } from "./encoded_items.ts";
import { EVENTS_PATH, EventStreams } from "./events.ts";
import { textResponse } from "./status.ts";
import { SUBSCRIBE_PATH, SubscribeStreams } from "./subscribe_stream.ts";
import { HttpSubscriptions } from "./subscriptions.ts";

/** The `transport` label of the HTTP port's connections. */
const TRANSPORT = "http";

/** How long to wait before listening again after the listener failed (ms). */
const RELISTEN_MS = 1000;

/**
 * The settings the HTTP transport reads, resolved (the server core's
 * `ResolvedServerOptions` holds them all; see `ServerOptions` for each).
 */
export interface HttpSettings {
  host: string;
  /** The port to bind; 0 picks one. */
  httpPort: number;
  /** Origins whose pages may call (none: same origin only). */
  httpCorsOrigins: readonly string[];
  heartbeatMs: number;
  intervalMs: number;
  reconnectJitterMs: number;
  maxPublishBytes: number;
  maxMessageBytes: number;
  clock: Clock;
  log: Logger;
  tls: ServerTls | undefined;
  access: AccessControl | undefined;
  /**
   * Share the port with other listeners that ask the same (SO_REUSEPORT:
   * a process's workers, or processes on one stream). `Deno.serve` takes
   * it under `--unstable-net` only.
   */
  reusePort: boolean;
}

/** The Greeter's methods, as the metrics register them. */
function greeterMethods(): RpcMethodInfo[] {
  const { Greeter } = greeterDescriptors();
  return Greeter.methods.map((method) => ({
    path: `/${Greeter.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" ||
      method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" ||
      method.methodKind === "bidi_streaming",
  }));
}

/**
 * The HTTP port's connections as the metrics show them: those with a
 * request in flight (`Deno.serve` tells of requests, not connections, so an
 * idle keep-alive connection is not seen); no cap, none refused.
 */
class OpenConnections implements ConnectionStats {
  /** Requests in flight per peer (`HOST:PORT`: one connection). */
  #requests = new Map<string, number>();
  readonly maxConnections = Infinity;
  readonly refused = 0;

  get connections(): number {
    return this.#requests.size;
  }

  /** A request from `peer` came; it is done when `completed` settles. */
  opened(peer: string, completed: Promise<void>): void {
    const requests = this.#requests;
    requests.set(peer, (requests.get(peer) ?? 0) + 1);
    const done = () => {
      const left = requests.get(peer)! - 1;
      if (left === 0) requests.delete(peer);
      else requests.set(peer, left);
    };
    completed.then(done, done);
  }
}

/** A `Deno.serve` server bound where the transport listens. */
type HttpServer = Deno.HttpServer<Deno.NetAddr>;

const utf8 = new TextDecoder();

/**
 * Starts the HTTP transport over `core`; resolves once it listens. Rejects
 * with a `GreeterError` naming the address when it cannot bind.
 *
 * @example
 * ```ts ignore
 * const http = await startHttpTransport(settings, core);
 * http.drain();
 * await http.close();
 * ```
 */
export async function startHttpTransport(
  settings: HttpSettings,
  core: TransportCore,
): Promise<Transport> {
  const { host, log, tls, access } = settings;
  const cors = new Cors(settings.httpCorsOrigins);
  const files = await ConsoleFiles.load();
  const subscriptions = new HttpSubscriptions({
    hub: core.hub,
    admission: core.admission,
    heartbeatIntervalMs: settings.heartbeatMs,
    reconnectJitterMs: settings.reconnectJitterMs,
  });
  const items = new EncodedItems(() => core.hub.epoch);
  core.rpc.register(greeterMethods());
  const recorders = {
    connect: core.rpc.recorder("connect"),
    "grpc-web": core.rpc.recorder("grpc-web"),
  };
  const events = new EventStreams({
    subscriptions,
    items,
    access,
    cors,
    reconnectJitterMs: settings.reconnectJitterMs,
    recorder: core.rpc.recorder("sse"),
    log,
  });
  const subscribe = new SubscribeStreams({
    subscriptions,
    items,
    access,
    cors,
    maxMessageBytes: settings.maxMessageBytes,
    recorders,
    log,
  });
  const calls = new ConnectCalls({
    hub: core.hub,
    directory: core.directory,
    subscriptions,
    access,
    cors,
    clock: settings.clock,
    intervalMs: settings.intervalMs,
    maxPublishBytes: settings.maxPublishBytes,
    maxMessageBytes: settings.maxMessageBytes,
    reconnectJitterMs: settings.reconnectJitterMs,
    draining: core.draining,
    stopped: core.stopped,
    recorders,
    log,
  });
  const connections = new OpenConnections();
  core.connections(TRANSPORT, connections);
  const debug = log.enabled("debug");

  const route = (
    request: Request,
    url: URL,
    peer: string,
  ): Response | Promise<Response> => {
    const path = url.pathname;
    if (path === EVENTS_PATH) return events.answer(request, url, peer);
    if (path === SUBSCRIBE_PATH) return subscribe.answer(request, peer);
    const call = calls.answer(request, peer);
    if (call) return call;
    if (path === SESSION_PATH) {
      return session(request, callerOf(request.headers, peer), {
        access,
        cors,
        secure: tls !== undefined,
      });
    }
    if (request.method === "GET" || request.method === "HEAD") {
      const file = files.answer(request, path);
      if (file) return file;
    }
    return textResponse(404, `Not found: ${request.method} ${path}`);
  };

  const handler = async (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> => {
    const { hostname, port } = info.remoteAddr;
    const peer = formatAddress(hostname, port);
    connections.opened(peer, info.completed);
    const url = new URL(request.url);
    const response = request.method === "OPTIONS"
      ? cors.preflight(request)
      : cors.decorate(request, await route(request, url, peer));
    // Never the query: it may hold a token.
    if (debug) {
      log.debug("HTTP request", {
        method: request.method,
        path: url.pathname,
        status: response.status,
        peer,
      });
    }
    return response;
  };

  const options: Deno.ServeTcpOptions & Partial<Deno.TlsCertifiedKeyPem> = {
    hostname: host,
    port: settings.httpPort,
    reusePort: settings.reusePort || undefined,
    onListen: () => {},
    onError: (error) => {
      log.error("HTTP request failed", { error: String(error) });
      return textResponse(500, "Internal error: the server could not answer");
    },
  };
  if (tls) {
    options.cert = utf8.decode(tls.cert);
    options.key = utf8.decode(tls.key);
  }

  /** Every server this transport ran: one per listen (the earlier ones' streams may still run). */
  const servers: HttpServer[] = [];
  let closing = false;
  let relistenTimer: ReturnType<typeof setTimeout> | undefined;
  const listen = (port: number): HttpServer => {
    const server = Deno.serve({ ...options, port }, handler);
    servers.push(server);
    server.finished.catch((error) => {
      if (closing) return;
      port = server.addr.port; // the one bound, when 0 was asked for
      log.error(
        "The HTTP listener stopped: listening again (open streams go on)",
        { error: String(error), port },
      );
      const retry = () => {
        relistenTimer = undefined;
        if (closing) return;
        try {
          listen(port);
          log.info("The HTTP listener accepts again", { port });
        } catch {
          relistenTimer = setTimeout(retry, RELISTEN_MS);
        }
      };
      relistenTimer = setTimeout(retry, RELISTEN_MS);
    });
    return server;
  };

  let first: HttpServer;
  try {
    first = listen(settings.httpPort);
  } catch (error) {
    const unstable = /--unstable-net/.test(String(error))
      ? " (sharing the port takes Deno's --unstable-net flag, which deno task serve gives)"
      : "";
    throw new GreeterError(
      `Cannot serve HTTP on "${formatAddress(host, settings.httpPort)}": ${
        (error as Error).message
      }${unstable}`,
      { cause: error },
    );
  }
  const port = first.addr.port;
  return {
    address: formatAddress(host, port),
    port,
    serving: () => {},
    drain: () => {},
    close: async () => {
      closing = true;
      clearTimeout(relistenTimer);
      // Waits for every response, event streams included: the hub has
      // closed, so each ends once its reader has taken what it held.
      await Promise.all(
        servers.map((server) => server.shutdown().catch(() => {})),
      );
    },
    force: () => subscriptions.cutAll(),
  };
}
