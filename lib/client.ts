/**
 * The client library: `helloworld.Greeter` calls as promises and async
 * iterables, cancellable by `AbortSignal`, failing with {@linkcode RpcError}.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { RpcError } from "./errors.ts";
import {
  type GreetingKind,
  type GreetingMessage,
  type HelloReply,
  type HelloRequest,
  loadGreeterProto,
} from "./proto.ts";

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

  /** Opens a plaintext channel to `target` (`host:port`). */
  constructor(target: string, options: GreeterClientOptions = {}) {
    this.target = target;
    this.#token = options.token;
    const { Client } = loadGreeterProto();
    this.#stub = new Client(target, grpc.credentials.createInsecure(), {
      "grpc.enable_channelz": 0,
      ...options.channelOptions,
    });
  }

  /** Unary `SayHello`: resolves to the reply message. */
  sayHello(name: string, options: UnaryOptions = {}): Promise<string> {
    const { signal, timeoutMs = DEFAULT_UNARY_TIMEOUT_MS } = options;
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const call = this.#stub.SayHello(
        { name },
        this.#metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, reply?: HelloReply) => {
          this.#open.delete(call);
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(this.#error(error));
          else resolve(reply!.message);
        },
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#open.add(call);
    });
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
      // grpc-js appends an empty "Resolution note: " to connection errors.
      details?.replace(/\.?\s*Resolution note:\s*$/, "") || "no details",
      this.target,
      { cause: error },
    );
  }
}
