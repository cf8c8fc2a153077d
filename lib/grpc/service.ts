/**
 * Folder `lib/grpc/`: the gRPC adapter, the only code that touches grpc-js
 * calls: the Greeter (here, and one handler per RPC in `handlers/`), a call's
 * life (`call_signal.ts`, `subscription_call.ts`), typed errors as statuses
 * (`status.ts`), health and reflection, the access check as an interceptor,
 * and the Deno and grpc-js workarounds behind `workarounds/mod.ts`. May import
 * `lib/access/`, `lib/observe/`, `lib/bus/`, `lib/wire/` and the shared
 * modules of `lib/`; never `lib/server/` or `lib/cli/`.
 *
 * The gRPC adapter's Greeter: each RPC is its own handler (`handlers/`),
 * built over the shared pieces made here, once per server: each call's one
 * signal ({@linkcode CallSignals}), per-connection {@linkcode Admission},
 * a subscription's life on a call ({@linkcode SubscriptionCalls}) and the
 * encoded-event caches ({@linkcode EncodedEvents}). Typed errors become
 * statuses in {@linkcode toServiceError}, and nowhere else.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { type Clock, systemClock } from "../bus/clock.ts";
import type { CallWriterOptions } from "./workarounds/mod.ts";
import type { Directory } from "../bus/broker.ts";
import type { Hub, SubscriptionInfo } from "../bus/hub.ts";
import type { Logger } from "../log.ts";
import {
  DEFAULT_MAX_PUBLISH_BYTES,
  DEFAULT_RECONNECT_JITTER_MS,
} from "../defaults.ts";
import { Admission } from "../access/admission.ts";
import type { PeerLineBudget } from "../observe/peer_lines.ts";
import { CallSignals } from "./call_signal.ts";
import { EncodedEvents } from "./encoded_events.ts";
import { loadGreeterProto } from "../wire/proto.ts";
import type { GreeterContext } from "./service_context.ts";
import { SubscriptionCalls } from "./subscription_call.ts";
import { sayHello } from "./handlers/say_hello.ts";
import { sayHelloStreamReply } from "./handlers/stream_reply.ts";
import { sayHelloBidiStream } from "./handlers/bidi.ts";
import { sayHelloStream2 } from "./handlers/stream2.ts";
import { subscribe } from "./handlers/subscribe.ts";
import { publish } from "./handlers/publish.ts";
import { listSubscribers } from "./handlers/list_subscribers.ts";

export { toServiceError } from "./status.ts";
export { TICK_TOPIC } from "./service_context.ts";
export { STREAM2_TIMERS } from "./handlers/stream2.ts";
export { MAX_LIST_SUBSCRIBERS } from "./handlers/list_subscribers.ts";

/** Options of {@linkcode createGreeterService}. */
export interface GreeterServiceOptions {
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  hub: Hub<Uint8Array>;
  /** Every instance's subscriptions, on a shared stream. Default: the hub's. */
  directory?: Directory<SubscriptionInfo>;
  /** Where connection events are logged. */
  log: Logger;
  /** Milliseconds between `SayHelloStream2` timers. */
  intervalMs: number;
  /** Aborts when the server shuts down: open `SayHelloStream2` calls say goodbye. */
  shutdown: AbortSignal;
  /** Aborts when calls are forcibly cancelled: every handler stops waiting. */
  forced?: AbortSignal;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /** Transport backpressure settings for every stream. */
  writer?: CallWriterOptions;
  /** Most hub subscriptions one connection may hold. Default: no limit. */
  maxSubscribersPerConnection?: number;
  /** Most hub subscriptions one peer (remote address) may hold. Default: no limit. */
  maxSubscribersPerPeer?: number;
  /** Heartbeat cadence announced to subscribers (ms); 0 when there are none. */
  heartbeatIntervalMs?: number;
  /** Largest payload `Publish` accepts. Default {@linkcode DEFAULT_MAX_PUBLISH_BYTES}. */
  maxPublishBytes?: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). Default {@linkcode DEFAULT_RECONNECT_JITTER_MS}. */
  reconnectJitterMs?: number;
  /** The budget of `disconnected.` lines per peer (shared with the join and leave lines). Default: none. */
  peerLines?: PeerLineBudget;
}

/**
 * Builds the `helloworld.Greeter` implementation.
 *
 * @example
 * ```ts ignore
 * server.addService(loadGreeterProto().service, createGreeterService({ hub, log, intervalMs: 1000, shutdown }));
 * ```
 */
export function createGreeterService(
  options: GreeterServiceOptions,
): grpc.UntypedServiceImplementation {
  const { hub, log } = options;
  const signals = new CallSignals({
    draining: options.shutdown,
    stopped: options.forced ?? new AbortController().signal,
    log,
    peerLines: options.peerLines,
  });
  const context: GreeterContext = {
    hub,
    log,
    clock: options.clock ?? systemClock,
    methods: loadGreeterProto().service,
    signals,
    subscriptions: new SubscriptionCalls({
      hub,
      admission: new Admission({
        perConnection: options.maxSubscribersPerConnection,
        perPeer: options.maxSubscribersPerPeer,
      }),
      signals,
      log,
      writer: options.writer,
    }),
    encoded: new EncodedEvents(hub),
    directory: options.directory,
    writer: options.writer,
    intervalMs: options.intervalMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 0,
    maxPublishBytes: options.maxPublishBytes ?? DEFAULT_MAX_PUBLISH_BYTES,
    reconnectJitterMs: options.reconnectJitterMs ??
      DEFAULT_RECONNECT_JITTER_MS,
  };
  return {
    SayHello: sayHello(),
    SayHelloStreamReply: sayHelloStreamReply(context),
    SayHelloBidiStream: sayHelloBidiStream(context),
    SayHelloStream2: sayHelloStream2(context),
    Subscribe: subscribe(context),
    Publish: publish(context),
    ListSubscribers: listSubscribers(context),
  };
}
