/**
 * Folder `lib/client/`: the client library (here) and the reconnecting
 * follower (`follow.ts`). May import `lib/wire/`, `lib/bus/clock.ts` and the
 * shared modules of `lib/`; never the server's folders.
 *
 * The client library: `helloworld.Greeter` calls as promises and async
 * iterables, cancellable by `AbortSignal`, failing with {@linkcode RpcError}.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { RpcError } from "../errors.ts";
import { channelCredentials, type ClientTls } from "../wire/tls.ts";
import { isLoopback } from "../wire/address.ts";
import {
  type CursorMessage,
  type GreetingKind,
  type GreetingMessage,
  type HelloReply,
  type HelloRequest,
  type ListSubscribersReply,
  loadGreeterProto,
  type PublishReply,
  type StreamInfoReply,
  type SubscribeRequest,
} from "../wire/proto.ts";

/** Default deadline of a unary call, in milliseconds. */
export const DEFAULT_UNARY_TIMEOUT_MS = 10_000;

/** Options of {@linkcode GreeterClient}. */
export interface GreeterClientOptions {
  /**
   * Extra grpc-js channel options. E.g. `{ "grpc.use_local_subchannel_pool":
   * 1 }` gives this client its own connection instead of sharing one with
   * every other client of the same target in the process.
   */
  channelOptions?: grpc.ChannelOptions;
  /** Bearer token sent as `authorization` metadata on every call. */
  token?: string;
  /** Connect with TLS (mTLS with a certificate); plaintext when unset. */
  tls?: ClientTls;
}

/** A position in the server's event sequence. */
export interface ClientCursor {
  /** Names the sequence; changes when the server restarts. */
  readonly epoch: string;
  /** The last event seen. */
  readonly seq: number;
}

/** What a `Subscribe` stream carries, decoded. */
export type SubscriptionMessage =
  | {
    /** The stream is open: events after `cursor` follow. */
    readonly kind: "subscribed";
    readonly subscriptionId: number;
    readonly cursor: ClientCursor;
    /** A resume was asked for and nothing after its cursor was missed. */
    readonly recovered: boolean;
    /** Why a resume was not recovered ("" otherwise). */
    readonly reason: string;
    /** The server's heartbeat cadence (ms); 0 when it sends none. */
    readonly heartbeatIntervalMs: number;
    /**
     * The last event published when the subscription started: events up
     * to it are replayed, later ones live. Absent from older servers.
     */
    readonly head?: ClientCursor;
  }
  | {
    readonly kind: "event";
    readonly cursor: ClientCursor;
    /** Publish time, ms since the Unix epoch (server clock). */
    readonly timeMs: number;
    readonly topic: string;
    readonly payload: Uint8Array;
    /**
     * Published before the subscription started (a resume, a start
     * position): its age is no delivery latency.
     */
    readonly replayed: boolean;
  }
  | {
    /** Liveness, and a safe resume point. */
    readonly kind: "heartbeat";
    readonly cursor: ClientCursor;
    readonly timeMs: number;
  }
  | {
    /** Events of the subscription's topics in `[fromSeq, toSeq]` were missed. */
    readonly kind: "gap";
    readonly fromSeq: number;
    readonly toSeq: number;
    /** How many; 0 when unknown. */
    readonly missed: number;
    readonly reason: string;
  }
  | {
    /** The server is ending the stream. */
    readonly kind: "goodbye";
    /** The status code the stream ends with. */
    readonly code: number;
    readonly reason: string;
    /** Whether to subscribe again, after `reconnectAfterMs`. */
    readonly reconnect: boolean;
    readonly reconnectAfterMs: number;
  };

/**
 * Where a new subscription starts among the events still held, instead of
 * live: every one (`first`), the last `last` of its topics, or those
 * published at or after `timeMs` (ms since the Unix epoch).
 */
export type StartPosition =
  | { readonly first: true }
  | { readonly last: number }
  | { readonly timeMs: number };

/** Options of {@linkcode GreeterClient.subscribe}. */
export interface SubscribeCallOptions extends CallOptions {
  /** Topics to receive; empty or absent: every topic not starting with `$`. */
  topics?: readonly string[];
  /** Resume after this cursor. */
  after?: ClientCursor;
  /** Or start at this position among the events held (not with `after`). */
  start?: StartPosition;
}

/** The event stream's state, as {@linkcode GreeterClient.streamInfo} returns it. */
export interface StreamInfo {
  /** Names the sequence, as cursors carry it. */
  readonly epoch: string;
  /** Where the events are held: `memory` (the server's window) or `nats`. */
  readonly store: string;
  /** The oldest event held; 0 when none is. */
  readonly firstSeq: number;
  /** The newest event published; 0 before any. */
  readonly lastSeq: number;
  /** Events held. */
  readonly events: number;
  /** Their size in bytes, as the store counts them. */
  readonly bytes: number;
  /** When the oldest held event was published (ms since the Unix epoch); 0 when none is. */
  readonly firstTimeMs: number;
  /** When the newest held event was published; 0 when none is. */
  readonly lastTimeMs: number;
}

/** A subscription as {@linkcode GreeterClient.listSubscribers} returns it. */
export interface SubscriberSummary {
  readonly subscriptionId: number;
  readonly name: string;
  /** When it joined, ms since the Unix epoch. */
  readonly sinceMs: number;
  /** Its first topics (at most 8 are listed). */
  readonly topics: readonly string[];
  /** How many topics it has. */
  readonly topicCount: number;
  readonly delivered: number;
  readonly dropped: number;
}

/**
 * The host of a `host:port` or `[v6]:port` target, without brackets.
 *
 * @example
 * ```ts
 * import { targetHost } from "./client.ts";
 * targetHost("[::1]:50051"); // "::1"
 * ```
 */
export function targetHost(target: string): string {
  const match = target.match(/^\[([^\]]+)\](?::\d+)?$|^([^:]+)(?::\d+)?$/);
  return match?.[1] ?? match?.[2] ?? target;
}

/**
 * A status's details without what grpc-js adds to a connection error and
 * says nothing to a person: an empty "Resolution note:", the time of the
 * last attempt, an "Error: " inside the text.
 *
 * @example
 * ```ts ignore
 * tidyDetails("No connection established. Last error: write EPIPE (2026-12-08T02:50:14.954Z)");
 * // "No connection established. Last error: write EPIPE"
 * ```
 */
function tidyDetails(details: string | undefined): string {
  return (details ?? "")
    .replace(/\.?\s*Resolution note:\s*$/, "")
    .replace(/ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\)/g, "")
    .replace(/Last error: Error: /g, "Last error: ");
}

function cursorOf(message?: CursorMessage | null): ClientCursor {
  return { epoch: message?.epoch ?? "", seq: Number(message?.seq ?? 0) };
}

/**
 * Decodes one `Subscribe` message; undefined for kinds this client does not
 * know. An event is replayed when it is not after `head`, the first
 * message's.
 */
function decodeSubscription(
  message: GreetingMessage,
  head?: ClientCursor,
): SubscriptionMessage | undefined {
  const {
    firstGreetingMessage: first,
    event,
    heartbeat,
    gap,
    goodbyeGreetingMessage: bye,
  } = message;
  switch (message.shape_type) {
    case "firstGreetingMessage":
      return {
        kind: "subscribed",
        subscriptionId: Number(first!.subscription_id ?? 0),
        cursor: cursorOf(first!.cursor),
        recovered: first!.recovered ?? false,
        reason: first!.reason ?? "",
        heartbeatIntervalMs: first!.heartbeat_interval_ms ?? 0,
        ...(first!.head ? { head: cursorOf(first!.head) } : {}),
      };
    case "event": {
      const seq = Number(event!.seq);
      return {
        kind: "event",
        cursor: { epoch: event!.epoch, seq },
        timeMs: Number(event!.time_ms),
        topic: event!.topic,
        payload: event!.payload,
        replayed: head !== undefined && head.epoch === event!.epoch &&
          seq <= head.seq,
      };
    }
    case "heartbeat":
      return {
        kind: "heartbeat",
        cursor: cursorOf(heartbeat!.cursor),
        timeMs: Number(heartbeat!.time_ms),
      };
    case "gap":
      return {
        kind: "gap",
        fromSeq: Number(gap!.from_seq),
        toSeq: Number(gap!.to_seq),
        missed: Number(gap!.missed),
        reason: gap!.reason,
      };
    case "goodbyeGreetingMessage":
      return {
        kind: "goodbye",
        code: bye!.code ?? 0,
        reason: bye!.reason ?? "",
        reconnect: bye!.reconnect ?? false,
        reconnectAfterMs: bye!.reconnect_after_ms ?? 0,
      };
  }
  return undefined;
}

/** Options of one call. */
export interface CallOptions {
  /** Aborting it cancels the call; a stream then just ends. */
  signal?: AbortSignal;
}

/** Options of {@linkcode GreeterClient.sayHello}. */
export interface UnaryOptions extends CallOptions {
  /** Deadline in milliseconds. Default {@linkcode DEFAULT_UNARY_TIMEOUT_MS}. */
  timeoutMs?: number;
}

type Stream<T> =
  | grpc.ClientReadableStream<T>
  | grpc.ClientDuplexStream<
    HelloRequest,
    T
  >;

/**
 * A connection to a greeter server. Close it (or `using` it) when done.
 *
 * @example
 * ```ts ignore
 * import { GreeterClient } from "./client.ts";
 * using client = new GreeterClient("localhost:50051");
 * console.log(await client.sayHello("you")); // "Hello, you!"
 * for await (const kind of client.stream2("you")) console.log(kind);
 * ```
 */
export class GreeterClient implements Disposable {
  /** The `host:port` this client talks to. */
  readonly target: string;
  // deno-lint-ignore no-explicit-any
  #stub: any;
  /** Calls in flight, cancelled by close(). */
  #open = new Set<{ cancel(): void }>();
  #token?: string;

  /** Opens a channel to `target` (`host:port`), plaintext unless `options.tls`. */
  constructor(target: string, options: GreeterClientOptions = {}) {
    this.target = target;
    this.#token = options.token;
    const { Client } = loadGreeterProto();
    const host = targetHost(target);
    this.#stub = new Client(
      target,
      channelCredentials(options.tls, host),
      {
        "grpc.enable_channelz": 0,
        // A connection that dies silently fails its calls within 40 s, instead
        // of holding them (and every retry on it) until TCP gives up.
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 10_000,
        // grpc-js tunnels even a loopback target through a proxy named in
        // the environment (grpc_proxy, https_proxy, http_proxy) unless
        // no_proxy covers it: the proxy's own loopback is not this machine,
        // and a token the CLI lets go in plaintext because the target is
        // local would cross the network to it.
        ...(isLoopback(host) ? { "grpc.enable_http_proxy": 0 } : {}),
        ...options.channelOptions,
      },
    );
  }

  /** Unary `SayHello`: resolves to the reply message. */
  async sayHello(name: string, options: UnaryOptions = {}): Promise<string> {
    return (await this.#unary<HelloReply>("SayHello", { name }, options))
      .message;
  }

  /** `SayHelloStreamReply`: the hub's messages until the stream ends. */
  async *streamReply(
    name: string,
    options: CallOptions = {},
  ): AsyncGenerator<string> {
    const stream = this.#messages<HelloReply>(
      this.#stub.SayHelloStreamReply({ name }, this.#metadata()),
      options.signal,
    );
    for await (const reply of stream) yield reply.message;
  }

  /** `SayHelloStream2`: the kind of each polymorphic message, in order. */
  async *stream2(
    name: string,
    options: CallOptions = {},
  ): AsyncGenerator<GreetingKind | "unknown"> {
    const stream = this.#messages<GreetingMessage>(
      this.#stub.SayHelloStream2({ name }, this.#metadata()),
      options.signal,
    );
    for await (const message of stream) yield message.shape_type ?? "unknown";
  }

  /**
   * `Subscribe`: one stream, decoded (no reconnect: see `follow()` in
   * `follow.ts` for that). Messages of unknown kinds are skipped.
   */
  async *subscribe(
    name: string,
    options: SubscribeCallOptions = {},
  ): AsyncGenerator<SubscriptionMessage> {
    const { topics = [], after, start } = options;
    const request: SubscribeRequest = { name, topics: [...topics], after };
    if (start) {
      request.start = "first" in start
        ? { first: true }
        : "last" in start
        ? { last: start.last }
        : { time_ms: start.timeMs };
    }
    const stream = this.#messages<GreetingMessage>(
      this.#stub.Subscribe(request, this.#metadata()),
      options.signal,
    );
    let head: ClientCursor | undefined;
    for await (const message of stream) {
      const decoded = decodeSubscription(message, head);
      if (decoded?.kind === "subscribed") head = decoded.head;
      if (decoded) yield decoded;
    }
  }

  /**
   * `StreamInfo`: the event stream's state (epoch, the oldest and newest
   * events held, how many and how big), without subscribing.
   */
  async streamInfo(options: UnaryOptions = {}): Promise<StreamInfo> {
    const reply = await this.#unary<StreamInfoReply>("StreamInfo", {}, options);
    return {
      epoch: reply.epoch,
      store: reply.store,
      firstSeq: Number(reply.first_seq),
      lastSeq: Number(reply.last_seq),
      events: Number(reply.events),
      bytes: Number(reply.bytes),
      firstTimeMs: Number(reply.first_time_ms),
      lastTimeMs: Number(reply.last_time_ms),
    };
  }

  /** `Publish`: resolves to the event's cursor and publish time. */
  async publish(
    topic: string,
    payload: Uint8Array,
    options: UnaryOptions & {
      /**
       * Names this publish: retried with the same key (after an
       * `UNAVAILABLE` or a deadline, when it may or may not have been
       * stored), it is one event, and the retry gets its cursor.
       */
      idempotencyKey?: string;
    } = {},
  ): Promise<{ cursor: ClientCursor; timeMs: number }> {
    const reply = await this.#unary<PublishReply>(
      "Publish",
      { topic, payload, idempotency_key: options.idempotencyKey ?? "" },
      options,
    );
    return { cursor: cursorOf(reply.cursor), timeMs: Number(reply.time_ms) };
  }

  /**
   * `ListSubscribers`: who is subscribed (to `topic`, when given), one page:
   * pass a reply's `nextPageToken` as `pageToken` for the next (empty on
   * the last page).
   */
  async listSubscribers(
    options: UnaryOptions & {
      topic?: string;
      limit?: number;
      pageToken?: string;
    } = {},
  ): Promise<
    { subscribers: SubscriberSummary[]; total: number; nextPageToken: string }
  > {
    const { topic = "", limit = 0, pageToken = "" } = options;
    const reply = await this.#unary<ListSubscribersReply>(
      "ListSubscribers",
      { topic, limit, page_token: pageToken },
      options,
    );
    return {
      total: reply.total,
      nextPageToken: reply.next_page_token ?? "",
      subscribers: reply.subscribers.map((s) => ({
        subscriptionId: Number(s.subscription_id),
        name: s.name,
        sinceMs: Number(s.since_ms),
        topics: s.topics,
        topicCount: s.topic_count || s.topics.length,
        delivered: Number(s.delivered),
        dropped: Number(s.dropped),
      })),
    };
  }

  /** `SayHelloBidiStream`: sends each name, yields each reply in order. */
  async *bidi(
    names: Iterable<string>,
    options: CallOptions = {},
  ): AsyncGenerator<string> {
    const call: grpc.ClientDuplexStream<HelloRequest, HelloReply> = this
      .#stub.SayHelloBidiStream(this.#metadata());
    for (const name of names) call.write({ name });
    call.end();
    const stream = this.#messages<HelloReply>(call, options.signal);
    for await (const reply of stream) yield reply.message;
  }

  /** Cancels the calls still open (they fail with `CANCELLED`), then closes the channel. */
  close(): void {
    for (const call of this.#open) call.cancel();
    this.#open.clear();
    this.#stub.close();
  }

  /** Same as {@linkcode GreeterClient.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  async *#messages<T>(
    call: Stream<T>,
    signal?: AbortSignal,
  ): AsyncGenerator<T> {
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) call.cancel();
    this.#open.add(call);
    let ended = false;
    try {
      for await (const message of call as AsyncIterable<T>) yield message;
      ended = true;
    } catch (error) {
      ended = true;
      const status = (error as grpc.ServiceError).code;
      if (signal?.aborted && status === grpc.status.CANCELLED) return;
      throw this.#error(error);
    } finally {
      this.#open.delete(call);
      signal?.removeEventListener("abort", onAbort);
      if (!ended) {
        // The consumer stopped early: cancel, and absorb the CANCELLED status.
        call.on("error", () => {});
        call.cancel();
      }
    }
  }

  #unary<R>(
    method: string,
    request: unknown,
    options: UnaryOptions,
  ): Promise<R> {
    const { signal, timeoutMs = DEFAULT_UNARY_TIMEOUT_MS } = options;
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const call = this.#stub[method](
        request,
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, reply?: R) => {
          this.#open.delete(call);
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(this.#error(error));
          else resolve(reply!);
        },
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#open.add(call);
    });
  }

  #metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.#token) metadata.set("authorization", `Bearer ${this.#token}`);
    return metadata;
  }

  #error(error: unknown): RpcError {
    const { code, details } = error as Partial<grpc.ServiceError>;
    if (typeof code !== "number") {
      return new RpcError("UNKNOWN", String(error), this.target, {
        cause: error,
      });
    }
    return new RpcError(
      grpc.status[code] ?? String(code),
      tidyDetails(details) || "no details",
      this.target,
      { cause: error },
    );
  }
}
