/**
 * What every Greeter handler may use: the hub, the shared pieces (call
 * signals, subscription calls, encoded events) and the service's settings.
 * One per server, made by `createGreeterService`.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { CallWriterOptions } from "./workarounds/mod.ts";
import type { CallSignals } from "./call_signal.ts";
import type { EncodedEvents } from "./encoded_events.ts";
import type { SubscriptionCalls } from "./subscription_call.ts";
import type { Clock } from "../bus/clock.ts";
import type { Directory } from "../bus/broker.ts";
import type { Hub } from "../bus/hub.ts";
import type { SubscriptionInfo } from "../bus/hub_items.ts";
import type { Logger } from "../log.ts";

/** The shared state and settings of the Greeter handlers. */
export interface GreeterContext {
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  readonly hub: Hub<Uint8Array>;
  /** Every instance's subscriptions, on a shared stream; this hub's otherwise. */
  readonly directory?: Directory<SubscriptionInfo>;
  /** Where calls' failures and leaves are logged. */
  readonly log: Logger;
  /** What `SayHelloStream2` waits on. */
  readonly clock: Clock;
  /** Each method's definition (its serializer passes `Buffer`s through). */
  readonly methods: grpc.ServiceDefinition;
  /** Each call's one signal. */
  readonly signals: CallSignals;
  /** A subscription's life on a call. */
  readonly subscriptions: SubscriptionCalls;
  /** Events, heartbeats and ticks, encoded once for every subscriber. */
  readonly encoded: EncodedEvents;
  /** Transport backpressure settings for every stream. */
  readonly writer?: CallWriterOptions;
  /** Milliseconds between `SayHelloStream2` timers. */
  readonly intervalMs: number;
  /** Heartbeat cadence announced to subscribers (ms); 0 when there are none. */
  readonly heartbeatIntervalMs: number;
  /** Largest payload `Publish` accepts. */
  readonly maxPublishBytes: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). */
  readonly reconnectJitterMs: number;
  /**
   * An event published at `time` (ms since the Unix epoch) is being written
   * to a subscriber now (the delivery latency metric).
   */
  readonly delivered: (time: number) => void;
}
