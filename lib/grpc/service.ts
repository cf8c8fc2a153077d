/**
 * The gRPC adapter: grpc-js handlers for `helloworld.Greeter` over the hub.
 * The only module that touches calls. A call's `'cancelled'` becomes an
 * `AbortSignal`; streams are written with backpressure
 * ({@linkcode CallWriter}); typed errors become statuses in
 * {@linkcode toServiceError}, and nowhere else.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { type Clock, systemClock } from "../bus/clock.ts";
import {
  CallWriter,
  type CallWriterOptions,
  FramedMessage,
} from "./call_writer.ts";
import type { BearerTokens } from "./auth.ts";
import {
  CapacityError,
  InvalidArgumentError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import {
  DEFAULT_MAX_PUBLISH_BYTES,
  DEFAULT_RECONNECT_JITTER_MS,
} from "../defaults.ts";
import { helloMessage, validateName } from "../greetings.ts";
import { namePart, type TickPart, tickPart, tickReply } from "./tick_reply.ts";
import {
  type BusEvent,
  type Cursor,
  type Heartbeat,
  type Hub,
  type HubItem,
  type SubscribeOptions,
  type Subscription,
  type SubscriptionInfo,
  validateFilterTopic,
  validateTopic,
} from "../bus/hub.ts";
import type { Logger } from "../log.ts";
import {
  type CursorMessage,
  encodeGreeting,
  type GoodbyeMessage,
  type GreetingMessage,
  type HelloReply,
  type HelloRequest,
  type ListSubscribersReply,
  type ListSubscribersRequest,
  loadGreeterProto,
  type PublishReply,
  type PublishRequest,
  type SubscribeRequest,
} from "./proto.ts";
import type { Buffer } from "node:buffer";

/** How many timer messages `SayHelloStream2` sends between first and goodbye. */
export const STREAM2_TIMERS = 5;

/** The topic of the hub's clock ticks. */
export const TICK_TOPIC = "tick";

/** Most subscribers `ListSubscribers` returns in one reply (and its default). */
export const MAX_LIST_SUBSCRIBERS = 1000;
const DEFAULT_LIST_SUBSCRIBERS = 100;

/** Encoded events and heartbeats kept for the subscribers still to write them. */
const ENCODED_CACHE_SIZE = 256;

/**
 * `cache`'s value for `key`, made by `make(key)` on a miss; only the last
 * {@linkcode ENCODED_CACHE_SIZE} are kept. (`make` is passed the key so that
 * callers in the fan-out loop hand over one function, not a new closure per
 * subscriber.)
 */
function recent<K, V>(cache: Map<K, V>, key: K, make: (key: K) => V): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = make(key);
    cache.set(key, value);
    if (cache.size > ENCODED_CACHE_SIZE) {
      cache.delete(cache.keys().next().value!);
    }
  }
  return value;
}

/** Options of {@linkcode createGreeterService}. */
export interface GreeterServiceOptions {
  /** The event bus behind `Subscribe`, `Publish` and `SayHelloStreamReply`. */
  hub: Hub<Uint8Array>;
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
  /** Heartbeat cadence announced to subscribers (ms); 0 when there are none. */
  heartbeatIntervalMs?: number;
  /** Largest payload `Publish` accepts. Default {@linkcode DEFAULT_MAX_PUBLISH_BYTES}. */
  maxPublishBytes?: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). Default {@linkcode DEFAULT_RECONNECT_JITTER_MS}. */
  reconnectJitterMs?: number;
}

/**
 * Aborts the controllers that follow `source` when it aborts, with one
 * listener on it for them all: an `AbortSignal` with thousands of listeners
 * makes each add and remove cost as much as their number (measured: 13% of
 * the server's CPU while 10,000 subscribed). `follow()` aborts a controller
 * at once if `source` already has; it returns the function that lets go.
 */
function fanOut(source: AbortSignal) {
  const followers = new Set<AbortController>();
  source.addEventListener("abort", () => {
    for (const controller of followers) controller.abort(source.reason);
    followers.clear();
  }, { once: true });
  return {
    follow(controller: AbortController): () => void {
      if (source.aborted) controller.abort(source.reason);
      else followers.add(controller);
      return () => followers.delete(controller);
    },
  };
}

/** The `SubscribeRequest.after` cursor, if one was sent. */
function parseCursor(after?: CursorMessage | null): Cursor | undefined {
  if (!after || (after.epoch === "" && Number(after.seq) === 0)) {
    return undefined;
  }
  return { epoch: after.epoch, seq: Number(after.seq) };
}

/** A subscription as `ListSubscribers` shows it (no peer: it is not the caller's business). */
function subscriberMessage(info: SubscriptionInfo) {
  return {
    subscription_id: info.id,
    name: info.name,
    since_ms: info.since,
    topics: [...info.topics],
    delivered: info.delivered,
    dropped: info.dropped,
  };
}

/**
 * Maps any error to the status a caller receives: typed greeter errors to
 * their code and message; anything else to `INTERNAL` with a generic message
 * (the real one is logged, not sent).
 *
 * @example
 * ```ts
 * import { toServiceError } from "./service.ts";
 * import { InvalidArgumentError } from "../errors.ts";
 * toServiceError(new InvalidArgumentError("Name must not be empty")).code; // 3
 * ```
 */
export function toServiceError(error: unknown): grpc.ServiceError {
  const code = error instanceof InvalidArgumentError
    ? grpc.status.INVALID_ARGUMENT
    : error instanceof SlowConsumerError || error instanceof CapacityError
    ? grpc.status.RESOURCE_EXHAUSTED
    : error instanceof UnavailableError
    ? grpc.status.UNAVAILABLE
    : error instanceof UnauthenticatedError
    ? grpc.status.UNAUTHENTICATED
    : grpc.status.INTERNAL;
  const details = code === grpc.status.INTERNAL
    ? "Internal error: the server could not complete the call"
    : (error as Error).message;
  return Object.assign(new Error(details), {
    code,
    details,
    metadata: new grpc.Metadata(),
  });
}

/** Calls to these services need no token: probes must work unauthenticated. */
const OPEN_SERVICE_PREFIXES = ["/grpc.health.v1.Health/"];

/**
 * A grpc-js server interceptor that answers `UNAUTHENTICATED` to any call
 * (health excepted) whose `authorization` metadata carries no accepted
 * bearer token. The token itself is never logged nor echoed.
 *
 * @example
 * ```ts ignore
 * new grpc.Server({ interceptors: [createAuthInterceptor(new BearerTokens(tokens))] });
 * ```
 */
export function createAuthInterceptor(
  tokens: BearerTokens,
): grpc.ServerInterceptor {
  return (method, call) => {
    if (
      OPEN_SERVICE_PREFIXES.some((prefix) => method.path.startsWith(prefix))
    ) {
      return new grpc.ServerInterceptingCall(call); // passes everything on
    }
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, forward) {
            const [value] = metadata.get("authorization");
            if (tokens.accepts(typeof value === "string" ? value : undefined)) {
              forward(metadata);
              return;
            }
            const { code, details } = toServiceError(
              new UnauthenticatedError(
                `Missing or invalid bearer token for ${method.path}: send metadata "authorization: Bearer <token>"`,
              ),
            );
            call.sendStatus({ code, details });
          },
        });
      },
    });
  };
}

type StreamCall<M> =
  | grpc.ServerWritableStream<HelloRequest, M>
  | grpc.ServerDuplexStream<HelloRequest, M>;

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
  const { hub, log, intervalMs, shutdown, clock = systemClock } = options;
  /** Each method's serializer (Buffers pass through), for the writers. */
  const methods = loadGreeterProto().service;
  const maxPublishBytes = options.maxPublishBytes ?? DEFAULT_MAX_PUBLISH_BYTES;
  const jitterMs = options.reconnectJitterMs ?? DEFAULT_RECONNECT_JITTER_MS;
  /**
   * Events and heartbeats are shared by every subscriber: encoded once each.
   * Only the most recent are kept (readers far behind encode again), so the
   * cache does not double what the replay window holds.
   */
  const encoded = new Map<
    BusEvent<Uint8Array> | Heartbeat,
    FramedMessage
  >();
  /** The same for the clock's ticks, as `SayHelloStreamReply` writes them. */
  const tickParts = new Map<BusEvent<Uint8Array>, TickPart>();

  /** An event or heartbeat as `Subscribe` sends it, encoded. */
  function encodeShared(
    item: BusEvent<Uint8Array> | Heartbeat,
  ): FramedMessage {
    return new FramedMessage(encodeGreeting(
      item.kind === "event"
        ? {
          event: {
            seq: item.seq,
            epoch: hub.epoch,
            time_ms: item.time,
            topic: item.topic,
            payload: item.data,
          },
        }
        : {
          heartbeat: {
            cursor: { epoch: hub.epoch, seq: item.seq },
            time_ms: item.time,
          },
        },
    ));
  }

  /** What a tick adds to every `SayHelloStreamReply` reply, encoded. */
  function encodeTick(item: BusEvent<Uint8Array>): TickPart {
    return tickPart(hub.epoch, item.seq, item.time);
  }

  /** The Subscribe message for `item`: shared items encoded once. */
  function greeting(
    item: HubItem<Uint8Array>,
  ): FramedMessage | GreetingMessage {
    if (item.kind === "gap") {
      return {
        gap: {
          from_seq: item.from,
          to_seq: item.to,
          missed: item.missed,
          reason: item.reason,
        },
      };
    }
    return recent(encoded, item, encodeShared);
  }

  /** A Goodbye advising (or not) a reconnect after a jittered delay. */
  function goodbye(
    code: number,
    reason: string,
    reconnect: boolean,
  ): GreetingMessage {
    const message: GoodbyeMessage = { code, reason, reconnect };
    if (reconnect) {
      message.reconnect_after_ms = Math.floor(Math.random() * jitterMs);
    }
    return { goodbyeGreetingMessage: message };
  }
  const forced = options.forced ?? new AbortController().signal;
  const perConnection = options.maxSubscribersPerConnection ?? Infinity;
  /** Live subscriptions per connection (peer address:port). */
  const byPeer = new Map<string, number>();

  /** Counts a subscription against its connection (`peer`); the returned function uncounts it. */
  function admit(peer: string, name: string) {
    const count = byPeer.get(peer) ?? 0;
    if (count >= perConnection) {
      throw new CapacityError(
        `Cannot subscribe "${name}": this connection holds ${count} subscriptions, the limit; open another connection or close one`,
      );
    }
    byPeer.set(peer, count + 1);
    return () => {
      const left = byPeer.get(peer)! - 1;
      if (left === 0) byPeer.delete(peer);
      else byPeer.set(peer, left);
    };
  }

  /** Open calls, stopped together on a forced shutdown. */
  const forcedCalls = fanOut(forced);
  /** Open `SayHelloStream2` calls, told together when the server shuts down. */
  const stream2Calls = fanOut(shutdown);

  /** A signal that aborts when the caller goes away (cancel, reset, deadline). */
  function callSignal(call: StreamCall<unknown>, name?: string): AbortSignal {
    const controller = new AbortController();
    const onCancel = () => {
      if (name !== undefined) log.info(`client ${name} disconnected.`);
      controller.abort(new Error("The client cancelled the call"));
    };
    // A forced shutdown may leave a connection open on Deno 2.9.3, with no
    // 'cancelled': stop waiting on it all the same.
    const unfollow = forcedCalls.follow(controller);
    if (call.cancelled) onCancel();
    else call.once("cancelled", onCancel);
    // Once the call is finished, a late RST_STREAM is not a disconnect.
    const release = () => {
      call.off("cancelled", onCancel);
      unfollow();
    };
    call.once("finish", release);
    call.once("close", release);
    return controller.signal;
  }

  /**
   * Reads `readable` to its end, handing each item to `write`; cancels it
   * when leaving early (unless `signal`, which already removed it, aborted).
   */
  async function drain<T>(
    readable: ReadableStream<T>,
    signal: AbortSignal,
    write: (item: T) => Promise<void>,
  ): Promise<void> {
    const reader = readable.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        await write(value);
      }
    } finally {
      if (!signal.aborted) await reader.cancel();
      reader.releaseLock();
    }
  }

  /**
   * Serves one hub subscription on `call`: validates `rawName`, counts it
   * against its connection's limit, subscribes (the caller's disconnect
   * removes it), and hands `body` the subscription and a writer. The
   * subscription's stream is cancelled if `body` leaves it unread; a failure
   * ends the call with its status, after `lastWord` (unless the caller is
   * gone); the connection's count is always released.
   */
  async function withSubscription<M>(
    call: StreamCall<unknown>,
    rawName: string,
    subscribe: Pick<SubscribeOptions, "topics" | "after">,
    serialize: (message: M) => Buffer,
    body: (
      subscription: Subscription<Uint8Array>,
      writer: CallWriter<M>,
      signal: AbortSignal,
    ) => Promise<void>,
    lastWord?: (error: unknown) => void,
  ): Promise<void> {
    let release: (() => void) | undefined;
    try {
      const name = validateName(rawName);
      const peer = call.getPeer();
      release = admit(peer, name);
      const signal = callSignal(call, name);
      const subscription = hub.subscribe(name, {
        ...subscribe,
        signal,
        labels: { peer },
      });
      const writer = new CallWriter<M>(
        call,
        serialize,
        options.writer,
      );
      try {
        await body(subscription, writer, signal);
      } finally {
        // Unread (the body failed early): leave the hub now. Read to its
        // end or errored: cancelling is a no-op.
        if (!signal.aborted && !subscription.readable.locked) {
          await subscription.readable.cancel().catch(() => {});
        }
      }
    } catch (error) {
      if (!call.cancelled) lastWord?.(error);
      fail(call, error);
    } finally {
      release?.();
    }
  }

  /** Ends a stream with an error status, unless the caller is already gone. */
  function fail(call: StreamCall<unknown>, error: unknown): void {
    if (call.cancelled) return;
    const status = toServiceError(error);
    if (status.code === grpc.status.INTERNAL) {
      log.error("Call failed", { error: String(error) });
    }
    call.emit("error", status);
  }

  return {
    SayHello(
      call: grpc.ServerUnaryCall<HelloRequest, HelloReply>,
      callback: grpc.sendUnaryData<HelloReply>,
    ) {
      try {
        const name = validateName(call.request.name);
        callback(null, { message: helloMessage(name) });
      } catch (error) {
        callback(toServiceError(error));
      }
    },

    SayHelloStreamReply(
      call: grpc.ServerWritableStream<HelloRequest, HelloReply>,
    ) {
      return withSubscription(
        call,
        call.request.name,
        { topics: [TICK_TOPIC] },
        methods.SayHelloStreamReply.responseSerialize,
        async ({ name, readable }, writer, signal) => {
          const prefix = namePart(name);
          await drain(readable, signal, async (item) => {
            // This seed message has no room for gaps or heartbeats.
            if (item.kind !== "event") return;
            const tick = recent(tickParts, item, encodeTick);
            await writer.write(tickReply(prefix, tick), signal);
          });
          if (!call.cancelled) call.end();
        },
      );
    },

    Subscribe(
      call: grpc.ServerWritableStream<SubscribeRequest, GreetingMessage>,
    ) {
      const { request } = call;
      return withSubscription<GreetingMessage>(
        call,
        request.name,
        { topics: request.topics, after: parseCursor(request.after) },
        methods.Subscribe.responseSerialize,
        async (subscription, writer, signal) => {
          await writer.write({
            firstGreetingMessage: {
              subscription_id: subscription.id,
              cursor: subscription.cursor,
              recovered: subscription.recovered,
              reason: subscription.reason ?? "",
              heartbeat_interval_ms: options.heartbeatIntervalMs ?? 0,
            },
          }, signal);
          await drain(
            subscription.readable,
            signal,
            (item) => writer.write(greeting(item), signal),
          );
          // The hub closed: the server is draining.
          await writer.write(
            goodbye(
              grpc.status.UNAVAILABLE,
              "The server is shutting down; resume from your last cursor",
              true,
            ),
            signal,
          );
          call.end();
        },
        (error) => {
          if (error instanceof SlowConsumerError) {
            // Queued without waiting: this reader is known to be slow.
            call.write(
              goodbye(grpc.status.RESOURCE_EXHAUSTED, error.message, true),
            );
          }
        },
      );
    },

    async Publish(
      call: grpc.ServerUnaryCall<PublishRequest, PublishReply>,
      callback: grpc.sendUnaryData<PublishReply>,
    ) {
      try {
        const topic = validateTopic(call.request.topic); // never a "$" one
        const { payload } = call.request;
        if (payload.length > maxPublishBytes) {
          throw new InvalidArgumentError(
            `Payload is ${payload.length} bytes: at most ${maxPublishBytes} are accepted; publish a reference to large data instead`,
          );
        }
        const event = await hub.publish(topic, payload);
        callback(null, {
          cursor: { epoch: hub.epoch, seq: event.seq },
          time_ms: event.time,
        });
      } catch (error) {
        callback(toServiceError(error));
      }
    },

    ListSubscribers(
      call: grpc.ServerUnaryCall<ListSubscribersRequest, ListSubscribersReply>,
      callback: grpc.sendUnaryData<ListSubscribersReply>,
    ) {
      try {
        const { topic, limit } = call.request;
        if (topic !== "") validateFilterTopic(topic);
        if (limit > MAX_LIST_SUBSCRIBERS) {
          throw new InvalidArgumentError(
            `Limit ${limit} is over ${MAX_LIST_SUBSCRIBERS}: ask for fewer`,
          );
        }
        const chosen = topic || undefined;
        callback(null, {
          subscribers: hub.subscriptions(
            chosen,
            limit || DEFAULT_LIST_SUBSCRIBERS,
          ).map(subscriberMessage),
          total: hub.count(chosen),
        });
      } catch (error) {
        callback(toServiceError(error));
      }
    },

    async SayHelloBidiStream(
      call: grpc.ServerDuplexStream<HelloRequest, HelloReply>,
    ) {
      const signal = callSignal(call);
      const writer = new CallWriter<HelloReply>(
        call,
        methods.SayHelloBidiStream.responseSerialize,
        options.writer,
      );
      try {
        // The default iterator destroys the duplex on exit, losing queued replies.
        const requests = call.iterator({ destroyOnReturn: false });
        for await (const request of requests as AsyncIterable<HelloRequest>) {
          const name = validateName(request.name);
          await writer.write({ message: helloMessage(name) }, signal);
        }
        if (!call.cancelled) call.end();
      } catch (error) {
        fail(call, error);
      }
    },

    async SayHelloStream2(
      call: grpc.ServerWritableStream<HelloRequest, GreetingMessage>,
    ) {
      let unfollow: (() => void) | undefined;
      try {
        const name = validateName(call.request.name);
        const signal = callSignal(call, name);
        const writer = new CallWriter<GreetingMessage>(
          call,
          methods.SayHelloStream2.responseSerialize,
          options.writer,
        );
        const stopping = new AbortController();
        unfollow = stream2Calls.follow(stopping);
        const both = AbortSignal.any([signal, stopping.signal]);
        await writer.write({ firstGreetingMessage: {} }, signal);
        try {
          for (let i = 0; i < STREAM2_TIMERS; i++) {
            await clock.sleep(intervalMs, both);
            await writer.write({ timerGreetingMessage: {} }, both);
          }
        } catch (error) {
          if (signal.aborted || !shutdown.aborted) throw error;
          // Shutting down: the caller still gets its goodbye, then OK.
        }
        await writer.write(
          shutdown.aborted
            ? goodbye(
              grpc.status.UNAVAILABLE,
              "The server is shutting down",
              true,
            )
            : goodbye(grpc.status.OK, "The stream is complete", false),
          signal,
        );
        call.end();
      } catch (error) {
        fail(call, error);
      } finally {
        unfollow?.();
      }
    },
  };
}
