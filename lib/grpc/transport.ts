/**
 * The gRPC transport, as the server's core starts and stops it: a grpc-js
 * server (channel settings, the interceptors, the header list bound),
 * health and reflection, the Greeter, and the listener that hands it
 * connections; drained and closed in the core's order.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { AccessControl } from "../access/access.ts";
import type { Clock } from "../bus/clock.ts";
import type { Logger } from "../log.ts";
import type { TransportRecorder } from "../observe/rpc_metrics.ts";
import type { Transport, TransportCore } from "../transport.ts";
import { formatAddress } from "../wire/address.ts";
import { loadGreeterProto } from "../wire/proto.ts";
import { serverCredentials, type ServerTls } from "../wire/tls.ts";
import { accessInterceptor } from "./access_interceptor.ts";
import {
  addHealthAndReflection,
  DEFAULT_MAX_HEALTH_WATCHES,
} from "./health.ts";
import { createGreeterService } from "./service.ts";
import { toServiceError } from "./status.ts";
import {
  callInterceptor,
  type CallWriterOptions,
  ConnectionListener,
  limitHeaderList,
  logHandshakeFailures,
  MAX_HEADER_LIST_BYTES,
  metadataLimitInterceptor,
  redactGrpcLogs,
} from "./workarounds/mod.ts";

/**
 * The settings the gRPC transport reads, resolved (the server core's
 * `ResolvedServerOptions` holds them all; see `ServerOptions` for each).
 * Those that may be off are `undefined` then, never absent.
 */
export interface GrpcSettings {
  host: string;
  port: number;
  intervalMs: number;
  heartbeatMs: number;
  clock: Clock;
  log: Logger;
  maxSubscribers: number;
  maxPublishBytes: number;
  reconnectJitterMs: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxConnectionIdleMs: number;
  maxConnectionAgeMs: number | undefined;
  maxConnectionAgeGraceMs: number | undefined;
  maxConnections: number;
  maxConcurrentStreams: number;
  maxMessageBytes: number;
  reusePort: boolean;
  tls: ServerTls | undefined;
  access: AccessControl | undefined;
  writer: WriterSettings;
}

/** The stream backpressure settings (`maxMessageBytes` comes from the settings). */
export type WriterSettings = Omit<CallWriterOptions, "maxMessageBytes">;

/** The `transport` label of what the gRPC transport reports. */
const TRANSPORT = "grpc";

/**
 * Most health watches open at once: the default, or fewer if fewer
 * subscribers are allowed.
 *
 * @example
 * ```ts ignore
 * healthWatches(settings); // 1000
 * ```
 */
export function healthWatches(settings: { maxSubscribers: number }): number {
  return Math.min(settings.maxSubscribers, DEFAULT_MAX_HEALTH_WATCHES);
}

/** The grpc-js channel options of `settings`: lifetimes set, channelz off. */
function channelOptions(settings: GrpcSettings): grpc.ServerOptions {
  const set: Record<string, number | undefined> = {
    "grpc.enable_channelz": 0, // costs on every call; nobody reads it here
    "grpc.keepalive_time_ms": settings.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": settings.keepaliveTimeoutMs,
    "grpc.max_connection_idle_ms": settings.maxConnectionIdleMs,
    "grpc.max_connection_age_ms": settings.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": settings.maxConnectionAgeGraceMs,
    "grpc.max_concurrent_streams": settings.maxConcurrentStreams,
    "grpc.max_receive_message_length": settings.maxMessageBytes,
    "grpc.max_send_message_length": settings.maxMessageBytes,
  };
  return Object.fromEntries(
    Object.entries(set).filter(([, value]) => value !== undefined),
  );
}

/** The grpc-js server with its interceptors, innermost first. */
function grpcServer(
  settings: GrpcSettings,
  recorder: TransportRecorder,
): grpc.Server {
  const { log, access } = settings;
  const debug = log.enabled("debug");
  const server = new grpc.Server({
    ...channelOptions(settings),
    interceptors: [
      // Innermost: it then sees what authentication refuses.
      callInterceptor({
        counters: (path) => recorder.method(path),
        // --log-level debug: one line per call once it ends.
        onEnd: debug
          ? ({ method, code, ms, peer }) =>
            log.debug("Call ended", {
              method,
              peer,
              code,
              ms: Math.round(ms * 10) / 10,
            })
          : undefined,
        peers: debug,
      }),
      ...(access ? [accessInterceptor(access)] : []),
      // Outermost: an oversized header list is refused before anything else.
      metadataLimitInterceptor(MAX_HEADER_LIST_BYTES, toServiceError),
    ],
  });
  limitHeaderList(server);
  return server;
}

/**
 * Starts the gRPC transport over `core`: the server, health and reflection,
 * the Greeter, then the listener; resolves once it accepts connections.
 * Rejects with a `GreeterError` naming the address when it cannot bind.
 *
 * @example
 * ```ts ignore
 * const grpc = await startGrpcTransport(settings, { hub, directory, peerLines, admission, draining, stopped, rpc, connections });
 * grpc.drain();
 * await grpc.close();
 * ```
 */
export async function startGrpcTransport(
  settings: GrpcSettings,
  core: TransportCore,
): Promise<Transport> {
  const { host, log } = settings;
  const credentials = serverCredentials(settings.tls);
  redactGrpcLogs(); // GRPC_TRACE would log bearer tokens otherwise
  const recorder = core.rpc.recorder(TRANSPORT);
  const server = grpcServer(settings, recorder);
  // Every method served is counted, its series shown at zero from the start.
  const services: Pick<grpc.Server, "addService"> = {
    addService(service, implementation) {
      core.rpc.register(Object.values(service));
      server.addService(service, implementation);
    },
  };
  const health = await addHealthAndReflection(services, {
    maxWatches: healthWatches(settings),
    slots: core.healthWatches,
  });
  services.addService(
    loadGreeterProto().service,
    createGreeterService({
      hub: core.hub,
      directory: core.directory,
      log,
      clock: settings.clock,
      intervalMs: settings.intervalMs,
      shutdown: core.draining,
      forced: core.stopped,
      writer: { ...settings.writer, maxMessageBytes: settings.maxMessageBytes },
      admission: core.admission,
      heartbeatIntervalMs: settings.heartbeatMs,
      maxPublishBytes: settings.maxPublishBytes,
      reconnectJitterMs: settings.reconnectJitterMs,
      peerLines: core.peerLines,
      delivered: recorder.delivered,
      access: settings.access,
    }),
  );
  // Our own listener: it caps connections and survives running out of
  // descriptors, which grpc-js's bindAsync listener does not on Deno.
  const injector = server.createConnectionInjector(credentials);
  const listener = await ConnectionListener.listen({
    host,
    port: settings.port,
    maxConnections: settings.maxConnections,
    shares: core.connectionShares,
    reusePort: settings.reusePort,
    log,
    slots: core.connectionSlots,
    onConnection: (socket) => injector.injectConnection(socket),
  });
  core.connections(TRANSPORT, listener);
  if (settings.tls) logHandshakeFailures(server, log);
  return {
    address: formatAddress(host, listener.port),
    port: listener.port,
    serving: (up) => health.serving(up),
    drain: () => health.notServing(),
    close: async () => {
      health.endWatches(); // after NOT_SERVING was sent
      // Done when grpc-js says so and every socket has closed: on Deno a
      // session may report itself closed before its last frames are out.
      await Promise.all([
        listener.close(),
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
      ]);
    },
    force: () => server.forceShutdown(),
  };
}
