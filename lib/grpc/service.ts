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
 * signal ({@linkcode CallSignals}),
 * a subscription's life on a call ({@linkcode SubscriptionCalls}) and the
 * encoded-event caches ({@linkcode EncodedEvents}). Typed errors become
 * statuses in {@linkcode toServiceError}, and nowhere else.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { Clock } from "../bus/clock.ts";
import type { CallWriterOptions } from "./workarounds/mod.ts";
import type { Directory } from "../bus/broker.ts";
import type { Hub } from "../bus/hub.ts";
import type { SubscriptionInfo } from "../bus/hub_items.ts";
import type { Logger } from "../log.ts";
import type { Admission } from "../access/admission.ts";
import type { AccessControl } from "../access/access.ts";
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
import { streamInfo } from "./handlers/stream_info.ts";

/** Options of {@linkcode createGreeterService}, resolved by the server's core. */
export interface GreeterServiceOptions {
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  hub: Hub<Uint8Array>;
  /** Every instance's subscriptions, on a shared stream; undefined: the hub's. */
  directory: Directory<SubscriptionInfo> | undefined;
  /** Where connection events are logged. */
  log: Logger;
  /** What `SayHelloStream2` waits on. */
  clock: Clock;
  /** Milliseconds between `SayHelloStream2` timers. */
  intervalMs: number;
  /** Aborts when the server shuts down: open `SayHelloStream2` calls say goodbye. */
  shutdown: AbortSignal;
  /** Aborts when calls are forcibly cancelled: every handler stops waiting. */
  forced: AbortSignal;
  /** Transport backpressure settings for every stream. */
  writer: CallWriterOptions;
  /** Subscriptions per connection and per peer (shared with every transport). */
  admission: Admission;
  /** Heartbeat cadence announced to subscribers (ms). */
  heartbeatIntervalMs: number;
  /** Largest payload `Publish` accepts. */
  maxPublishBytes: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). */
  reconnectJitterMs: number;
  /** The budget of `disconnected.` lines per peer (shared with the join and leave lines). */
  peerLines: PeerLineBudget;
  /** Told each event's delivery to a subscriber (its publish time, ms since the Unix epoch). */
  delivered: (time: number) => void;
  /** With tokens: open calls are registered, and a reload may revoke them. */
  access: AccessControl | undefined;
}

/**
 * Builds the `helloworld.Greeter` implementation.
 *
 * @example
 * ```ts ignore
 * server.addService(loadGreeterProto().service, createGreeterService(options));
 * ```
 */
export function createGreeterService(
  options: GreeterServiceOptions,
): grpc.UntypedServiceImplementation {
  const { hub, log } = options;
  const signals = new CallSignals({
    draining: options.shutdown,
    stopped: options.forced,
    log,
    peerLines: options.peerLines,
    access: options.access,
  });
  const context: GreeterContext = {
    hub,
    log,
    clock: options.clock,
    methods: loadGreeterProto().service,
    signals,
    subscriptions: new SubscriptionCalls({
      hub,
      admission: options.admission,
      signals,
      log,
      writer: options.writer,
    }),
    encoded: new EncodedEvents(hub),
    directory: options.directory,
    writer: options.writer,
    intervalMs: options.intervalMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    maxPublishBytes: options.maxPublishBytes,
    reconnectJitterMs: options.reconnectJitterMs,
    delivered: options.delivered,
  };
  return {
    SayHello: sayHello(),
    SayHelloStreamReply: sayHelloStreamReply(context),
    SayHelloBidiStream: sayHelloBidiStream(context),
    SayHelloStream2: sayHelloStream2(context),
    Subscribe: subscribe(context),
    Publish: publish(context),
    ListSubscribers: listSubscribers(context),
    StreamInfo: streamInfo(context),
  };
}
