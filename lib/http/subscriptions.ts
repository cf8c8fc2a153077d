/**
 * A hub subscription's life on the HTTP transport, whatever carries it
 * (server-sent events, Connect, gRPC-Web): admitted against its peer,
 * subscribed with an encoding so that the hub's own stream is the response
 * body (one stream from the hub to the wire, written as it comes, with the
 * transport's backpressure), released when it leaves, and cut when the
 * shutdown's grace runs out. Also what opens and ends every such stream:
 * the first message (where it starts) and the goodbye (why it ends, when to
 * come back).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Admission } from "../access/admission.ts";
import type { Hub, SubscribeOptions, Subscription } from "../bus/hub.ts";
import {
  type Cursor,
  endedReason,
  type HubItem,
  type LeaveReason,
  type StreamEncoding,
  type SubscriptionStart,
} from "../bus/hub_items.ts";
import {
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type {
  MethodRecorder,
  TransportRecorder,
} from "../observe/rpc_metrics.ts";
import { type CallRecord, CutError, leaveCode } from "./status.ts";
import { validateName } from "../greetings.ts";
import {
  type FirstGreetingMessage,
  type GoodbyeGreetingMessage,
  greeterDescriptors,
} from "../wire/descriptors.ts";

/** The RPC protocols of the HTTP port (plain gRPC stays on its own port). */
export type RpcProtocol = "connect" | "grpc-web";

/** What carries a subscription: the `transport` label of its logs and metrics. */
export type HttpTransportName = "sse" | RpcProtocol;

/** gRPC status codes a goodbye names. */
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

/** What an HTTP subscription asks for. */
export interface HttpSubscribeRequest {
  /** The subscriber's name (validated here). */
  name: string;
  /** Its topic filter (validated by the hub). */
  topics: readonly string[];
  /** Resume after this cursor. */
  after?: Cursor;
  /** Where it comes from: `HOST:PORT`. */
  peer: string;
  /** What carries it. */
  transport: HttpTransportName;
}

/** Options of {@linkcode HttpSubscriptions}. */
export interface HttpSubscriptionsOptions {
  /** The event bus. */
  hub: Hub<Uint8Array>;
  /** Subscriptions per connection and per peer, shared with every transport. */
  admission: Admission;
  /** The heartbeat cadence announced in the first message (ms). */
  heartbeatIntervalMs: number;
  /** Goodbyes advise coming back after a random delay below this (ms). */
  reconnectJitterMs: number;
}

/**
 * The HTTP transport's hub subscriptions.
 *
 * @example
 * ```ts ignore
 * const subscriptions = new HttpSubscriptions({ hub, admission, heartbeatIntervalMs, reconnectJitterMs });
 * const { readable } = subscriptions.open({ name, topics, peer, transport: "sse" }, encoding);
 * return new Response(readable);
 * ```
 */
export class HttpSubscriptions {
  #hub: Hub<Uint8Array>;
  #admission: Admission;
  #heartbeatIntervalMs: number;
  #reconnectJitterMs: number;
  /** Each open subscription's signal, aborted when the grace runs out. */
  #open = new Set<AbortController>();
  #descriptors = greeterDescriptors();

  /** Subscribes on `options.hub`, admitted by `options.admission`. */
  constructor(options: HttpSubscriptionsOptions) {
    this.#hub = options.hub;
    this.#admission = options.admission;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.#reconnectJitterMs = options.reconnectJitterMs;
  }

  /** Subscriptions open now. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Subscribes `request` with `encoding`: the name checked, counted against
   * its peer's limits (released when it leaves), labelled with its peer and
   * transport. The stream it returns is meant to be a response body: the
   * peer going away cancels it, which removes the subscription. With
   * `timeoutMs`, the stream ends then, as `encoding.last` says for a
   * `DEADLINE_EXCEEDED` error. `call` learns how it ended. `register`
   * registers it where a token-file reload may revoke it (the access
   * control), and returns what forgets it. Throws the hub's and the
   * admission's typed errors.
   */
  open<U>(
    request: HttpSubscribeRequest,
    encoding: StreamEncoding<Uint8Array, U>,
    options: {
      timeoutMs?: number;
      call?: CallRecord;
      register?: (revoke: (error: Error) => void) => () => void;
    } = {},
  ): Subscription<Uint8Array, U> {
    const cut = new AbortController();
    const { timeoutMs, call, register } = options;
    let unregister: (() => void) | undefined;
    const timer = timeoutMs === undefined
      ? undefined
      : setTimeout(() =>
        cut.abort(
          new ConnectError(
            `The call's deadline (${timeoutMs} ms) passed`,
            Code.DeadlineExceeded,
          ),
        ), timeoutMs);
    const leave = () => {
      clearTimeout(timer);
      this.#open.delete(cut);
      unregister?.();
    };
    try {
      const subscription = this.#subscribe(
        request,
        (name, options) =>
          this.#hub.subscribe(name, {
            ...options,
            encoding,
            signal: cut.signal,
            onLeave: (reason, error) => {
              leave();
              options.onLeave(reason);
              call?.handled(leaveCode(reason, error));
            },
          }),
      );
      this.#open.add(cut);
      unregister = register?.((error) => cut.abort(error));
      return subscription;
    } catch (error) {
      leave();
      throw error;
    }
  }

  /**
   * Subscribes `request` for a handler that reads the items itself (a
   * connect-es one): as {@linkcode HttpSubscriptions.open}, removed when
   * `signal` aborts.
   */
  items(
    request: HttpSubscribeRequest,
    signal: AbortSignal,
  ): Subscription<Uint8Array> {
    return this.#subscribe(
      request,
      (name, options) => this.#hub.subscribe(name, { ...options, signal }),
    );
  }

  /**
   * Checks `request`'s name, admits it (released when it leaves), and
   * subscribes it with `subscribe`, labelled with its peer and transport.
   */
  #subscribe<S>(
    request: HttpSubscribeRequest,
    subscribe: (
      name: string,
      options: SubscribeOptions & { onLeave: (reason: LeaveReason) => void },
    ) => S,
  ): S {
    const name = validateName(request.name);
    const release = this.#admission.admit(request.peer, {
      name,
      topics: request.topics,
    });
    try {
      return subscribe(name, {
        topics: request.topics,
        after: request.after,
        labels: { peer: request.peer, transport: request.transport },
        holder: request.peer, // its share of the stream's reads
        onLeave: release,
      });
    } catch (error) {
      release();
      throw error;
    }
  }

  /** The grace ran out: every open subscription's stream errors (its response is cut). */
  cutAll(): void {
    const reason = new CutError("The server shut down");
    for (const cut of [...this.#open]) cut.abort(reason);
  }

  /** The first message of a subscription's stream: where it starts, whether it recovered. */
  first(start: SubscriptionStart): FirstGreetingMessage {
    return create(this.#descriptors.FirstGreetingMessage, {
      subscriptionId: BigInt(start.id),
      cursor: { epoch: start.cursor.epoch, seq: BigInt(start.cursor.seq) },
      recovered: start.recovered,
      reason: start.reason ?? "",
      heartbeatIntervalMs: this.#heartbeatIntervalMs,
      head: { epoch: start.head.epoch, seq: BigInt(start.head.seq) },
    });
  }

  /**
   * The goodbye of a stream the hub ended: after what it held (`error`
   * undefined; UNAVAILABLE: draining, or a new epoch, which `start` tells),
   * too slow (a `SlowConsumerError`: RESOURCE_EXHAUSTED), or unable to go on
   * (an `UnavailableError`); it advises coming back after a jittered delay.
   * Revoked by a token-file reload (an `UnauthenticatedError` or a
   * `PermissionDeniedError`): its code, and not to come back. Undefined for
   * any other end (a cut: no goodbye).
   */
  ended(
    start: SubscriptionStart,
    error?: unknown,
  ): GoodbyeGreetingMessage | undefined {
    if (error === undefined) {
      return this.#goodbye(
        UNAVAILABLE,
        endedReason(start.cursor, this.#hub.epoch),
      );
    }
    if (error instanceof SlowConsumerError) {
      return this.#goodbye(RESOURCE_EXHAUSTED, error.message);
    }
    if (error instanceof UnavailableError) {
      return this.#goodbye(UNAVAILABLE, error.message);
    }
    // Revoked by a token-file reload: not to come back with that token.
    if (error instanceof UnauthenticatedError) {
      return goodbyeMessage(UNAUTHENTICATED, error.message);
    }
    if (error instanceof PermissionDeniedError) {
      return goodbyeMessage(PERMISSION_DENIED, error.message);
    }
    return undefined;
  }

  /**
   * The goodbye for a subscription refused as unavailable for now (the
   * server drains): code UNAVAILABLE, come back after a jittered delay.
   */
  unavailable(error: Error): GoodbyeGreetingMessage {
    return this.#goodbye(UNAVAILABLE, error.message);
  }

  #goodbye(code: number, reason: string): GoodbyeGreetingMessage {
    return goodbyeMessage(code, reason, this.#reconnectJitterMs);
  }
}

/**
 * A goodbye with gRPC status `code` and `reason`; with `reconnectJitterMs`,
 * it advises coming back after a random delay below it (so that clients do
 * not all return at once), otherwise not to come back.
 *
 * @example
 * ```ts
 * import { goodbyeMessage } from "./subscriptions.ts";
 * goodbyeMessage(0, "The stream is complete").reconnect; // false
 * ```
 */
export function goodbyeMessage(
  code: number,
  reason: string,
  reconnectJitterMs?: number,
): GoodbyeGreetingMessage {
  const { GoodbyeGreetingMessage } = greeterDescriptors();
  return create(GoodbyeGreetingMessage, {
    code,
    reason,
    reconnect: reconnectJitterMs !== undefined,
    reconnectAfterMs: reconnectJitterMs === undefined
      ? 0
      : Math.floor(Math.random() * reconnectJitterMs),
  });
}

/**
 * `encode`, counting each item as a message sent by `calls`, and each
 * event's delivery (from its publish time) on `transport`: once per item a
 * subscriber reads, nothing more.
 *
 * @example
 * ```ts ignore
 * const item = countingItems(items.sse, recorder.method(SUBSCRIBE), recorder);
 * ```
 */
export function countingItems<U>(
  encode: (item: HubItem<Uint8Array>) => U,
  calls: MethodRecorder | undefined,
  transport: Pick<TransportRecorder, "delivered">,
): (item: HubItem<Uint8Array>) => U {
  return (item) => {
    calls?.sent();
    if (item.kind === "event") transport.delivered(item.time);
    return encode(item);
  };
}
