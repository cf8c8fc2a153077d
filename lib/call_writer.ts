/**
 * Writes to a grpc-js server stream and tells when the transport has room.
 *
 * Two signals are honoured. grpc-js `write()` returning `false` (then
 * `'drain'`) is the standard one, and on Node the HTTP/2 stream's
 * `bufferSize` is the bytes it still queues. Deno 2.9.3 gives neither for a
 * subscriber whose HTTP/2 window is shut: every write completes at once, no
 * `'drain'` comes, and `bufferSize` only ever grows (it counts every byte
 * written, measured). What does hold there: no byte leaves before the
 * connection's socket flushes it. So every HTTP/2 connection keeps one
 * ledger, a leaky bucket filled by what its streams write and drained by what
 * its socket flushed (`bytesWritten - writableLength`): a lower bound on the
 * bytes stuck in that connection, which rises one for one with writes once a
 * peer stops reading. Its streams hold back while it exceeds `highWater`
 * times their number, so a connection holds a bounded amount whatever its
 * peer does. Writers held back wait on their connection's one poll timer
 * (`pollMs`), not one timer each. A stream that closes takes what it counted out of the bucket
 * (its bytes are sent or discarded by then); that may take a stalled
 * sibling's share too, so each closed stream can loosen the bound by up to
 * one bucket. The price of one bucket per connection: a peer that stalls one
 * stream holds back its other streams on the same connection too (as a shut
 * connection window would).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";

/** Default bytes per stream that may wait in the transport before writes hold back. */
export const DEFAULT_TRANSPORT_HIGH_WATER = 32 * 1024;

/** Default milliseconds between two looks at a stalled transport. */
export const DEFAULT_STALL_POLL_MS = 50;

/** What a writer needs of an HTTP/2 session. */
type Session = object & {
  readonly socket?: {
    readonly bytesWritten?: number;
    readonly writableLength?: number;
  };
};

/** What a writer needs of an HTTP/2 stream. */
interface Http2StreamLike {
  readonly bufferSize: number;
  readonly session?: Session;
  once(event: "close", listener: () => void): unknown;
}

/** Deno 2.9.3's `bufferSize` counts bytes written, not bytes queued. */
const CUMULATIVE_BUFFER_SIZE = "Deno" in globalThis;

/** One HTTP/2 connection's bucket, shared by the writers of its streams. */
interface Ledger {
  /** The connection. */
  session: Session;
  /** Lower bound on bytes written by its streams and not yet flushed. */
  bucket: number;
  /** Socket bytes flushed at the last look. */
  flushed: number;
  /** Writers whose calls are still open. */
  writers: number;
  /** Writers waiting for the next look at the socket: one timer for them all. */
  waiting: Set<() => void>;
  /** That timer, while some writer waits. */
  timer?: ReturnType<typeof setTimeout>;
}

const ledgers = new WeakMap<object, Ledger>();

/** Options of {@linkcode CallWriter}. */
export interface CallWriterOptions {
  /** Bytes per stream queued in the transport above which writes wait. */
  highWater?: number;
  /** Milliseconds between looks at the queue while waiting. */
  pollMs?: number;
}

type WritableCall<M> =
  | grpc.ServerWritableStream<unknown, M>
  | grpc.ServerDuplexStream<unknown, M>;

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
  #call: WritableCall<M>;
  #stream: Http2StreamLike | undefined;
  #ledger: Ledger | undefined;
  #highWater: number;
  #pollMs: number;
  /** This stream's `bufferSize` when last folded into the ledger. */
  #written = 0;
  /** Bytes this stream has put into the ledger's bucket. */
  #counted = 0;

  /** Wraps `call`; finds its HTTP/2 stream if this grpc-js exposes it. */
  constructor(call: WritableCall<M>, options: CallWriterOptions = {}) {
    this.#call = call;
    this.#highWater = options.highWater ?? DEFAULT_TRANSPORT_HIGH_WATER;
    this.#pollMs = options.pollMs ?? DEFAULT_STALL_POLL_MS;
    const stream = http2StreamOf(call);
    this.#stream = stream;
    if (!stream || !CUMULATIVE_BUFFER_SIZE || !stream.session) return;
    const session = stream.session;
    let ledger = ledgers.get(session);
    if (!ledger) {
      ledger = {
        session,
        bucket: 0,
        flushed: flushedBytes(session),
        writers: 0,
        waiting: new Set(),
      };
      ledgers.set(session, ledger);
    }
    ledger.writers++;
    this.#ledger = ledger;
    this.#written = stream.bufferSize;
    // Once the HTTP/2 stream is gone, its bytes are sent or discarded: none
    // of them can still be held. (Its bufferSize drops to 0 then: folding
    // that drop would credit the bucket with everything it ever wrote.)
    stream.once("close", () => {
      ledger.bucket = Math.max(0, ledger.bucket - this.#counted);
      this.#counted = 0;
      this.#stream = undefined;
    });
    call.once("close", () => {
      ledger.writers--;
      this.#ledger = undefined;
    });
  }

  /**
   * Writes `message`, then waits until the transport has room for the next
   * one. Rejects with the signal's reason if it aborts while waiting.
   */
  async write(message: M, signal: AbortSignal): Promise<void> {
    this.#call.write(message);
    while (this.#blocked()) await this.#wait(signal);
  }

  #blocked(): boolean {
    if (this.#call.writableNeedDrain) return true;
    const stream = this.#stream;
    if (!stream) return false;
    const ledger = this.#ledger;
    if (!ledger) {
      return !CUMULATIVE_BUFFER_SIZE && stream.bufferSize > this.#highWater;
    }
    this.#fold();
    const limit = this.#highWater * Math.max(1, ledger.writers);
    // Reading the socket walks its queue: only near the mark.
    if (ledger.bucket <= limit) return false;
    this.#drain();
    return ledger.bucket > limit;
  }

  /** Adds what this stream wrote since last time to its connection's bucket. */
  #fold(): void {
    const ledger = this.#ledger;
    const stream = this.#stream;
    if (!ledger || !stream) return;
    const written = stream.bufferSize;
    const added = written - this.#written;
    this.#written = written;
    if (added <= 0) return; // bufferSize only falls when the stream closes
    ledger.bucket += added;
    this.#counted += added;
  }

  /** Takes what the socket flushed since the last look out of the bucket. */
  #drain(): void {
    const ledger = this.#ledger;
    if (!ledger) return;
    const flushed = flushedBytes(ledger.session);
    ledger.bucket = Math.max(0, ledger.bucket - (flushed - ledger.flushed));
    ledger.flushed = flushed;
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
      // One poll per connection, however many of its streams wait on it.
      const ledger = this.#ledger;
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (ledger) {
        ledger.waiting.add(done);
        ledger.timer ??= setTimeout(() => wakeAll(ledger), this.#pollMs);
      } else timer = setTimeout(done, this.#pollMs);
      call.once("drain", done);
      call.once("close", done);
      signal.addEventListener("abort", abort, { once: true });
      function cleanup() {
        clearTimeout(timer);
        if (ledger) {
          ledger.waiting.delete(done);
          if (ledger.waiting.size === 0) {
            clearTimeout(ledger.timer);
            ledger.timer = undefined;
          }
        }
        call.off("drain", done);
        call.off("close", done);
        signal.removeEventListener("abort", abort);
      }
    });
  }
}

/** Ends a connection's poll: every waiting writer looks again. */
function wakeAll(ledger: Ledger): void {
  ledger.timer = undefined;
  for (const wake of [...ledger.waiting]) wake();
}

/** Bytes a connection's socket has flushed (not merely queued). */
function flushedBytes(session: Session): number {
  const socket = session.socket;
  return (socket?.bytesWritten ?? 0) - (socket?.writableLength ?? 0);
}

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js keeps it private
 * (1.14: `call.call[.nextCall…].stream`); `undefined` when it moves, and the
 * `'drain'` signal is then the only one.
 */
function http2StreamOf(call: object): Http2StreamLike | undefined {
  // deno-lint-ignore no-explicit-any
  let inner: any = (call as any).call;
  for (let depth = 0; inner && depth < 8; depth++) {
    if (typeof inner.stream?.bufferSize === "number") return inner.stream;
    inner = inner.nextCall;
  }
  return undefined;
}
