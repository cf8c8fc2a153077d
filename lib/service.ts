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
import { type Clock, systemClock } from "./clock.ts";
import { CallWriter, type CallWriterOptions } from "./call_writer.ts";
import type { BearerTokens } from "./auth.ts";
import {
  CapacityError,
  InvalidArgumentError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.ts";
import { helloMessage, tickMessage, validateName } from "./greetings.ts";
import type { Hub } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { GreetingMessage, HelloReply, HelloRequest } from "./proto.ts";
import type { Tick } from "./ticker.ts";

/** How many timer messages `SayHelloStream2` sends between first and goodbye. */
export const STREAM2_TIMERS = 5;

/** Options of {@linkcode createGreeterService}. */
export interface GreeterServiceOptions {
  /** The hub `SayHelloStreamReply` subscribes to. */
  hub: Hub<Tick>;
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
}

/**
 * Maps any error to the status a caller receives: typed greeter errors to
 * their code and message; anything else to `INTERNAL` with a generic message
 * (the real one is logged, not sent).
 *
 * @example
 * ```ts
 * import { toServiceError } from "./service.ts";
 * import { InvalidArgumentError } from "./errors.ts";
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

  /** A signal that aborts when the caller goes away (cancel, reset, deadline). */
  function callSignal(call: StreamCall<unknown>, name?: string): AbortSignal {
    const controller = new AbortController();
    const onCancel = () => {
      if (name !== undefined) log.info(`client ${name} disconnected.`);
      controller.abort(new Error("The client cancelled the call"));
    };
    // A forced shutdown may leave a connection open on Deno 2.9.3, with no
    // 'cancelled': stop waiting on it all the same.
    const onForced = () => controller.abort(forced.reason);
    forced.addEventListener("abort", onForced, { once: true });
    if (call.cancelled) onCancel();
    else call.once("cancelled", onCancel);
    // Once the call is finished, a late RST_STREAM is not a disconnect.
    const release = () => {
      call.off("cancelled", onCancel);
      forced.removeEventListener("abort", onForced);
    };
    call.once("finish", release);
    call.once("close", release);
    return controller.signal;
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

    async SayHelloStreamReply(
      call: grpc.ServerWritableStream<HelloRequest, HelloReply>,
    ) {
      let release: (() => void) | undefined;
      try {
        const name = validateName(call.request.name);
        const peer = call.getPeer();
        release = admit(peer, name);
        const signal = callSignal(call, name);
        const reader = hub.subscribe(name, { signal, labels: { peer } })
          .readable.getReader();
        const writer = new CallWriter(call, options.writer);
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            const message = tickMessage(name, value.time);
            await writer.write({ message }, signal);
          }
        } finally {
          if (!signal.aborted) await reader.cancel();
          reader.releaseLock();
        }
        if (!call.cancelled) call.end();
      } catch (error) {
        fail(call, error);
      } finally {
        release?.();
      }
    },

    async SayHelloBidiStream(
      call: grpc.ServerDuplexStream<HelloRequest, HelloReply>,
    ) {
      const signal = callSignal(call);
      const writer = new CallWriter(call, options.writer);
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
      try {
        const name = validateName(call.request.name);
        const signal = callSignal(call, name);
        const writer = new CallWriter(call, options.writer);
        const both = AbortSignal.any([signal, shutdown]);
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
        await writer.write({ goodbyeGreetingMessage: {} }, signal);
        call.end();
      } catch (error) {
        fail(call, error);
      }
    },
  };
}
