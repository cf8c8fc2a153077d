/**
 * Writes to a grpc-js server stream and tells when the transport has room.
 *
 * Two signals are honoured. grpc-js `write()` returning `false` (then
 * `'drain'`) is the standard one, and on Node the HTTP/2 stream's
 * `bufferSize` is the bytes it still queues. Deno 2.9.3 gives neither for a
 * subscriber whose HTTP/2 window is shut: every write completes at once, no
 * `'drain'` comes, and `bufferSize` only ever grows (it counts every byte
 * written, measured). What does hold there: a stream's bytes cannot have
 * left before the connection's socket wrote them. So the writer keeps a leaky
 * bucket, filled by the stream's written bytes and drained by the bytes the socket
 * flushed (`bytesWritten - writableLength`): a lower bound on the bytes stuck in the transport, which
 * rises one for one with writes once the peer stops reading. Exact for one
 * stream per connection; on a shared connection a busy sibling stream drains
 * the bucket too, and can hide a stalled one.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";

/** Default bytes that may wait in the transport before a writer holds back. */
export const DEFAULT_TRANSPORT_HIGH_WATER = 32 * 1024;

/** Default milliseconds between two looks at a stalled transport. */
export const DEFAULT_STALL_POLL_MS = 50;

/** What a writer needs of an HTTP/2 stream. */
interface Buffered {
  readonly bufferSize: number;
  readonly session?: {
    readonly socket?: {
      readonly bytesWritten?: number;
      readonly writableLength?: number;
    };
  };
}

/** Deno 2.9.3's `bufferSize` counts bytes written, not bytes queued. */
const CUMULATIVE_BUFFER_SIZE = "Deno" in globalThis;

/** Options of {@linkcode CallWriter}. */
export interface CallWriterOptions {
  /** Bytes queued in the transport above which writes wait. */
  highWater?: number;
  /** Milliseconds between looks at the queue while waiting. */
  pollMs?: number;
}

/**
 * A writer over one server-streaming (or bidi) call.
 *
 * @example
 * ```ts ignore
 * const writer = new CallWriter(call);
 * await writer.write({ message: "hi" }, signal); // resolves when there is room again
 * ```
 */
export class CallWriter<M> {
  #call:
    | grpc.ServerWritableStream<unknown, M>
    | grpc.ServerDuplexStream<
      unknown,
      M
    >;
  #stream: Buffered | undefined;
  #highWater: number;
  #pollMs: number;
  #bucket = 0;
  #written = 0;
  #sent = 0;

  /** Wraps `call`; finds its HTTP/2 stream if this grpc-js exposes it. */
  constructor(
    call:
      | grpc.ServerWritableStream<unknown, M>
      | grpc.ServerDuplexStream<
        unknown,
        M
      >,
    options: CallWriterOptions = {},
  ) {
    this.#call = call;
    this.#stream = http2StreamOf(call);
    this.#highWater = options.highWater ?? DEFAULT_TRANSPORT_HIGH_WATER;
    this.#pollMs = options.pollMs ?? DEFAULT_STALL_POLL_MS;
    this.#written = this.#stream?.bufferSize ?? 0;
    this.#sent = this.#socketBytes();
  }

  /**
   * Bytes held in the transport for this call, as far as can be seen (0
   * when nothing is visible). On Deno, a lower bound (see the module doc).
   */
  get backlog(): number {
    const stream = this.#stream;
    if (!stream) return 0;
    if (!CUMULATIVE_BUFFER_SIZE) return stream.bufferSize;
    this.#drain(stream.bufferSize);
    return this.#bucket;
  }

  #blocked(): boolean {
    if (this.#call.writableNeedDrain) return true;
    const stream = this.#stream;
    if (!stream) return false;
    if (!CUMULATIVE_BUFFER_SIZE) return stream.bufferSize > this.#highWater;
    // The bucket rises only by what this stream wrote: until that could pass
    // the mark, skip reading the socket (its bytesWritten walks its queue).
    const written = stream.bufferSize;
    if (this.#bucket + (written - this.#written) <= this.#highWater) {
      return false;
    }
    this.#drain(written);
    return this.#bucket > this.#highWater;
  }

  /** Fills the bucket with bytes written since last time, drains it by bytes flushed. */
  #drain(written: number): void {
    const sent = this.#socketBytes();
    this.#bucket = Math.max(
      0,
      this.#bucket + (written - this.#written) - (sent - this.#sent),
    );
    this.#written = written;
    this.#sent = sent;
  }

  /** Bytes the connection's socket has flushed (not merely queued). */
  #socketBytes(): number {
    const socket = this.#stream?.session?.socket;
    return (socket?.bytesWritten ?? 0) - (socket?.writableLength ?? 0);
  }

  /**
   * Writes `message`, then waits until the transport has room for the next
   * one. Rejects with the signal's reason if it aborts while waiting.
   */
  async write(message: M, signal: AbortSignal): Promise<void> {
    this.#call.write(message);
    while (this.#blocked()) await this.#wait(signal);
  }

  #wait(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const call = this.#call;
      const done = () => {
        cleanup();
        resolve();
      };
      const abort = () => {
        cleanup();
        reject(signal.reason);
      };
      const timer = setTimeout(done, this.#pollMs);
      call.once("drain", done);
      call.once("close", done);
      signal.addEventListener("abort", abort, { once: true });
      function cleanup() {
        clearTimeout(timer);
        call.off("drain", done);
        call.off("close", done);
        signal.removeEventListener("abort", abort);
      }
    });
  }
}

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js keeps it private
 * (1.14: `call.call[.nextCall…].stream`); `undefined` when it moves, and the
 * `'drain'` signal is then the only one.
 */
function http2StreamOf(call: object): Buffered | undefined {
  // deno-lint-ignore no-explicit-any
  let inner: any = (call as any).call;
  for (let depth = 0; inner && depth < 8; depth++) {
    if (typeof inner.stream?.bufferSize === "number") return inner.stream;
    inner = inner.nextCall;
  }
  return undefined;
}
