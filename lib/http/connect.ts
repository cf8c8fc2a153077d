/**
 * The Greeter's methods over Connect and gRPC-Web (JSON and binary), served
 * by connect-es's universal handlers inside `Deno.serve`, all but
 * `Subscribe` (written by hand: `subscribe_stream.ts`): they are low-rate,
 * or one message per caller, and connect-es handles their protocols whole
 * (errors, timeouts, limits). The same checks as gRPC: the token before the
 * body is read (its request gate), the grants once the request is read
 * (an interceptor), the message size limits, the per-peer subscriber limits,
 * the drain.
 *
 * @module
 */

import {
  Code,
  ConnectError,
  type ContextValues,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import {
  type UniversalHandler,
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus,
  codeFromString,
} from "@connectrpc/connect/protocol-connect";
import type { Permissions } from "../access/permissions.ts";
import type { Clock } from "../bus/clock.ts";
import type { Directory } from "../bus/broker.ts";
import { type Hub, publishId, validatePublish } from "../bus/hub.ts";
import { type SubscriptionInfo, TICK_TOPIC } from "../bus/hub_items.ts";
import { LISTED_TOPICS, listingPage } from "../bus/listing.ts";
import {
  helloMessage,
  STREAM2_TIMERS,
  tickMessage,
  validateName,
} from "../greetings.ts";
import type { Logger } from "../log.ts";
import type { TransportRecorder } from "../observe/rpc_metrics.ts";
import { greeterDescriptors } from "../wire/descriptors.ts";
import {
  authenticate,
  type CallerCheck,
  callerOf,
  type HttpCaller,
} from "./credentials.ts";
import { CallRecord, connectCodeOf, toConnectError } from "./status.ts";
import { MAX_TIMEOUT_MS } from "./subscribe_stream.ts";
import {
  goodbyeMessage,
  type HttpSubscriptions,
  type RpcProtocol,
} from "./subscriptions.ts";

/** What grpc-js clients take by default: the largest listing reply (bytes). */
const MAX_LISTING_REPLY_BYTES = 4 * 1024 * 1024;

/** gRPC statuses a goodbye names. */
const OK = 0;
const UNAVAILABLE = 14;

/** The caller's `HOST:PORT`, handed to each call. */
const PEER = createContextKey("", { description: "the caller's HOST:PORT" });

/** Each call's record in the metrics, made by the request gate. */
const CALL = createContextKey<CallRecord | undefined>(undefined, {
  description: "the call's record in the metrics",
});

/** What the request gate learnt of the caller, for the grants' check. */
const CALLER = createContextKey<
  { caller: HttpCaller; permissions: Permissions } | undefined
>(undefined, { description: "the authenticated caller" });

/** Options of {@linkcode ConnectCalls}. */
export interface ConnectCallsOptions extends CallerCheck {
  /** The event bus. */
  hub: Hub<Uint8Array>;
  /** Every instance's subscriptions, on a shared stream; undefined: the hub's. */
  directory: Directory<SubscriptionInfo> | undefined;
  /** The HTTP transport's subscriptions (`SayHelloStreamReply`). */
  subscriptions: HttpSubscriptions;
  /** What `SayHelloStream2` waits on. */
  clock: Clock;
  /** Milliseconds between `SayHelloStream2` timers. */
  intervalMs: number;
  /** Largest payload `Publish` accepts. */
  maxPublishBytes: number;
  /** Largest message either way. */
  maxMessageBytes: number;
  /** Goodbyes advise coming back after a random delay below this (ms). */
  reconnectJitterMs: number;
  /** Aborts when the drain starts: `SayHelloStream2` says goodbye early. */
  draining: AbortSignal;
  /** Aborts when the grace runs out: every call stops. */
  stopped: AbortSignal;
  /** Where each protocol's calls are counted. */
  recorders: Readonly<Record<RpcProtocol, TransportRecorder>>;
  /** Where failures are logged. */
  log: Logger;
}

/** `messages`, each counted as received by `call`. */
async function* receiving<T>(
  messages: AsyncIterable<T>,
  call: CallRecord,
): AsyncIterable<T> {
  for await (const message of messages) {
    call.received();
    yield message;
  }
}

/**
 * `messages`, each counted as sent by `call`, which is handled when they
 * end: OK, the error's code, or CANCELLED when the caller stopped reading.
 */
async function* sending<T>(
  messages: AsyncIterable<T>,
  call: CallRecord,
): AsyncIterable<T> {
  let code: number = Code.Canceled;
  try {
    for await (const message of messages) {
      call.sent();
      yield message;
    }
    code = 0;
  } catch (error) {
    code = connectCodeOf(error);
    throw error;
  } finally {
    call.handled(code);
  }
}

/**
 * The code of an answer connect-es made on its own (an error): Connect's
 * in its JSON body (or from its HTTP status), gRPC-Web's in its headers.
 */
async function refusedCode(response: Response): Promise<number> {
  const status = response.headers.get("grpc-status");
  if (status !== null) return Number(status);
  if (response.status === 200) return Code.Unknown;
  try {
    const { code } = await response.clone().json();
    return codeFromString(String(code)) ?? codeFromHttpStatus(response.status);
  } catch {
    return codeFromHttpStatus(response.status);
  }
}

/** The transport label of a call's protocol. */
function transportOf(context: HandlerContext): RpcProtocol {
  return context.protocolName === "grpc-web" ? "grpc-web" : "connect";
}

/**
 * The Greeter over Connect and gRPC-Web, but `Subscribe`.
 *
 * @example
 * ```ts ignore
 * const calls = new ConnectCalls(options);
 * const response = await calls.answer(request, peer); // undefined: not one of its paths
 * ```
 */
export class ConnectCalls {
  #handlers: ReadonlyMap<string, UniversalHandler>;

  /** Serves the Greeter with `options`. */
  constructor(options: ConnectCallsOptions) {
    const { hub, subscriptions, clock, intervalMs, log } = options;
    const { Greeter } = greeterDescriptors();
    const gate = (context: HandlerContext) => {
      const path = `/${context.service.typeName}/${context.method.name}`;
      const call = new CallRecord(
        options.recorders[transportOf(context)].method(path),
      );
      context.values.set(CALL, call);
      try {
        const caller = callerOf(
          context.requestHeader,
          context.values.get(PEER),
        );
        const permissions = authenticate(
          options,
          context.requestHeader,
          context.url,
          caller,
          path,
        );
        if (permissions) context.values.set(CALLER, { caller, permissions });
      } catch (error) {
        const refusal = toConnectError(error, log);
        call.handled(refusal.code);
        throw refusal;
      }
    };
    // The grants, once the request is read, and the call's counts.
    const checks: Interceptor = (next) => async (request) => {
      const call = request.contextValues.get(CALL)!;
      call.claimed = true;
      try {
        const checked = request.contextValues.get(CALLER);
        if (!request.stream) {
          call.received();
          if (checked) {
            options.access!.authorize(
              checked.permissions,
              checked.caller,
              `/${request.service.typeName}/${request.method.name}`,
              request.message,
            );
          }
        }
        const response = await next(
          request.stream
            ? { ...request, message: receiving(request.message, call) }
            : request,
        );
        if (response.stream) {
          return { ...response, message: sending(response.message, call) };
        }
        call.sent();
        call.handled(0);
        return response;
      } catch (error) {
        const refusal = toConnectError(error, log);
        call.handled(refusal.code);
        throw refusal;
      }
    };
    const listingSource = options.directory ?? hub;
    const maxListingBytes = Math.min(
      options.maxMessageBytes,
      MAX_LISTING_REPLY_BYTES,
    );
    const router = createConnectRouter({
      connect: true,
      grpcWeb: true,
      grpc: false, // Deno.serve sends no trailers: gRPC stays on its own port
      readMaxBytes: options.maxMessageBytes,
      writeMaxBytes: options.maxMessageBytes,
      maxTimeoutMs: MAX_TIMEOUT_MS,
      shutdownSignal: options.stopped,
      requestGate: gate,
      interceptors: [checks],
    });
    /** A call's failure as its caller gets it; one the caller ended is not logged. */
    const fail = (error: unknown, context?: HandlerContext): never => {
      if (context?.signal.aborted) {
        throw new ConnectError("The call was cancelled", Code.Canceled);
      }
      throw toConnectError(error, log);
    };
    router.service(Greeter, {
      sayHello(request) {
        try {
          return { message: helloMessage(validateName(request.name)) };
        } catch (error) {
          return fail(error);
        }
      },
      async *sayHelloStreamReply(request, context) {
        const recorder = options.recorders[transportOf(context)];
        // A token-file reload that refuses it ends it.
        const revoked = new AbortController();
        const checked = context.values.get(CALLER);
        const unregister = checked &&
          options.access!.register({
            caller: checked.caller,
            method: "/helloworld.Greeter/SayHelloStreamReply",
            request,
            revoke: (error) => revoked.abort(error),
          });
        try {
          const subscription = subscriptions.items({
            name: request.name,
            topics: [TICK_TOPIC],
            peer: context.values.get(PEER),
            transport: transportOf(context),
          }, AbortSignal.any([context.signal, revoked.signal]));
          const epoch = hub.epoch;
          for await (const item of subscription.readable) {
            // This seed message has no room for gaps or heartbeats.
            if (item.kind !== "event") continue;
            recorder.delivered(item.time);
            yield {
              message: tickMessage(subscription.name, item.time),
              cursor: { epoch, seq: BigInt(item.seq) },
              timeMs: BigInt(item.time),
            };
          }
        } catch (error) {
          fail(error, context);
        } finally {
          unregister?.();
        }
      },
      async *sayHelloBidiStream(requests, context) {
        try {
          for await (const request of requests) {
            yield { message: helloMessage(validateName(request.name)) };
          }
        } catch (error) {
          fail(error, context);
        }
      },
      async *sayHelloStream2(request, context) {
        try {
          validateName(request.name);
        } catch (error) {
          fail(error);
        }
        // Stops at the drain: a shutdown cuts the timers short.
        const signal = AbortSignal.any([context.signal, options.draining]);
        yield { shapeType: { case: "firstGreetingMessage", value: {} } };
        let draining = false;
        try {
          for (let i = 0; i < STREAM2_TIMERS; i++) {
            await clock.sleep(intervalMs, signal);
            yield { shapeType: { case: "timerGreetingMessage", value: {} } };
          }
        } catch (error) {
          if (!options.draining.aborted) fail(error, context);
          draining = true; // the caller still gets its goodbye, then OK
        }
        yield {
          shapeType: {
            case: "goodbyeGreetingMessage",
            value: draining
              ? goodbyeMessage(
                UNAVAILABLE,
                "The server is shutting down",
                options.reconnectJitterMs,
              )
              : goodbyeMessage(OK, "The stream is complete"),
          },
        };
      },
      async publish(request) {
        try {
          const { topic, payload } = request;
          validatePublish(topic, payload.length, options.maxPublishBytes);
          // A copy: the request's bytes are a view into its whole body,
          // which the replay window would keep alive uncharged.
          const event = await hub.publish(topic, payload.slice(), {
            id: publishId(request.idempotencyKey),
          });
          return {
            cursor: { epoch: hub.epoch, seq: BigInt(event.seq) },
            timeMs: BigInt(event.time),
          };
        } catch (error) {
          return fail(error);
        }
      },
      async listSubscribers(request, context) {
        try {
          const json = /json/.test(
            context.requestHeader.get("content-type") ?? "",
          );
          const page = await listingPage(
            listingSource,
            request,
            json ? maxListingBytes / 2 : maxListingBytes,
          );
          return {
            subscribers: page.entries.map((info) => ({
              subscriptionId: BigInt(info.id),
              name: info.name,
              sinceMs: BigInt(info.since),
              topics: info.topics.slice(0, LISTED_TOPICS),
              delivered: BigInt(info.delivered),
              dropped: BigInt(info.dropped),
              topicCount: info.topics.length,
            })),
            total: page.total,
            nextPageToken: page.nextPageToken,
          };
        } catch (error) {
          return fail(error);
        }
      },
    });
    this.#handlers = new Map(
      router.handlers.map((handler) => [handler.requestPath, handler]),
    );
  }

  /**
   * The answer to `request` from `peer`, or undefined when its path is no
   * method served here.
   */
  answer(request: Request, peer: string): Promise<Response> | undefined {
    const handler = this.#handlers.get(new URL(request.url).pathname);
    if (!handler) return undefined;
    return this.#call(handler, request, peer);
  }

  async #call(
    handler: UniversalHandler,
    request: Request,
    peer: string,
  ): Promise<Response> {
    const universal = universalServerRequestFromFetch(request, {});
    const values: ContextValues = createContextValues().set(PEER, peer);
    universal.contextValues = values;
    const response = universalServerResponseToFetch(await handler(universal));
    // Refused by connect-es between the gate and the interceptor (a body it
    // cannot read, over the limit): the call ends here, with the code its
    // caller reads in the answer.
    const call = values.get(CALL);
    if (call && !call.claimed) call.handled(await refusedCode(response));
    return response;
  }
}
