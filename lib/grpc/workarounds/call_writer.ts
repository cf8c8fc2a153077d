/**
 * Writes to a grpc-js server stream and tells when the transport has room.
 * Messages are encoded, framed (once per message shared by many calls:
 * {@linkcode FramedMessage}) and written straight to the call's HTTP/2
 * stream, the connection's socket corked until the next check phase. On
 * Deno 2.9.3 a stalled stream gives no `'drain'` and no usable
 * `bufferSize`, so each connection keeps a ledger of the bytes its writers
 * wrote and its socket has not flushed, and its writers hold back while it
 * is over their share. ARCHITECTURE.md ("the call writer") says why, what
 * was measured, and the ledger's known hole.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { CapacityError } from "../../errors.ts";

/** Bytes an HTTP/2 frame header costs. */
const HTTP2_FRAME_HEADER = 9;

/**
 * Bytes a message surely costs on the wire besides its encoding: its gRPC
 * frame prefix. Not an HTTP/2 DATA frame header each: a stream's batch of
 * messages can leave in one DATA frame, and counting 9 bytes a message left
 * the bucket of a busy connection fuller at every look than its socket could
 * drain (measured at 5,000 subscribers: within ~10 s the bound was all
 * residue, and delivery fell from ~200k to ~57k events/s; ~400k sustained
 * with this count).
 */
const FRAME_OVERHEAD = 5;

/** Default bytes per stream that may wait in the transport before writes hold back. */
export const DEFAULT_TRANSPORT_HIGH_WATER = 32 * 1024;

/**
 * Default bytes a whole connection may have waiting in the transport,
 * however many streams it carries. What a healthy peer takes in is bounded
 * by its HTTP/2 connection window (64 KiB unless it says more) and the
 * kernel's socket buffers; more only queues, adding latency and memory
 * (measured: with 100 streams of 32 KiB each, 5,000 subscribers of an
 * overloaded server held 160 MB in the transport and waited seconds).
 */
export const DEFAULT_CONNECTION_HIGH_WATER = 256 * 1024;

/** Default milliseconds between two looks at a stalled transport. */
export const DEFAULT_STALL_POLL_MS = 10;

/** What a writer needs of an HTTP/2 session. */
type Session = object & {
  readonly socket?: {
    readonly bytesWritten?: number;
    readonly writableLength?: number;
  };
};

/** What `CallWriter` (and the call counting) use of an HTTP/2 stream. */
export interface Http2StreamLike {
  readonly bufferSize: number;
  readonly session?: Session;
  /** Node's and Deno's `Http2Stream` have these; a test double may not. */
  readonly headersSent?: boolean;
  readonly destroyed?: boolean;
  readonly writableEnded?: boolean;
  readonly writableNeedDrain?: boolean;
  /** The headers sent (a trailers-only response's status is here). */
  readonly sentHeaders?: Record<string, unknown>;
  /** The trailers sent, once they were. */
  readonly sentTrailers?: Record<string, unknown>;
  write?(chunk: Buffer): boolean;
  once(event: "close" | "drain", listener: () => void): unknown;
  off?(event: "close" | "drain", listener: () => void): unknown;
}

/**
 * Deno 2.9.3's `bufferSize` is no measure of bytes queued: it grows for a
 * healthy stream too (measured: about 3.4 times the bytes written, with 100
 * streams on one connection).
 */
const UNRELIABLE_BUFFER_SIZE = "Deno" in globalThis;

/** One HTTP/2 connection's bucket, shared by the writers of its streams. */
interface Ledger {
  /** The connection. */
  session: Session;
  /** Estimate of the bytes written by its streams and not yet flushed. */
  bucket: number;
  /** Counts the times the bucket emptied: writers' own counts restart then. */
  emptied: number;
  /** Socket bytes flushed at the last look. */
  flushed: number;
  /** The cork (see `corkUntilImmediate`) that look was made under, if any. */
  lookedUnder?: object;
  /** Writers whose calls are still open. */
  writers: number;
  /** Writers waiting for the next look at the socket: one timer for them all. */
  waiting: Set<() => void>;
  /** That timer, while some writer waits. */
  timer?: ReturnType<typeof setTimeout>;
}

const ledgers = new WeakMap<object, Ledger>();

/** What a call's messages sent are counted into (its method's metrics). */
interface SentCounter {
  sent(): void;
}

/** Where each call's writers count what they send, by its HTTP/2 stream. */
const sentCounters = new WeakMap<object, SentCounter>();

/**
 * Makes the writers of the call on HTTP/2 `stream` count each message they
 * send into `counter` (the call interceptor sets it as the call starts:
 * what a `CallWriter` writes straight to the stream never passes grpc-js's
 * interceptors). One method call per message: the fan-out's cost.
 */
export function countSentMessages(
  stream: Http2StreamLike,
  counter: SentCounter,
): void {
  sentCounters.set(stream, counter);
}

/**
 * A message encoded and framed for gRPC once, then written as it is to any
 * number of calls (a broadcast event costs its subscribers no encoding and
 * no copy of their own).
 *
 * @example
 * ```ts ignore
 * const event = new FramedMessage(encodeGreeting(message));
 * for (const writer of writers) await writer.write(event, signal);
 * ```
 */
export class FramedMessage {
  /** The gRPC frame: uncompressed flag, big-endian length, the encoding. */
  readonly frame: Buffer;

  /** Frames `body`, an encoded message. */
  constructor(body: Uint8Array);
  /**
   * Takes `frame` as a whole frame already (see {@linkcode framePrefix}):
   * no copy, and no second object (a tick reply's).
   */
  constructor(frame: Buffer, framed: true);
  constructor(bytes: Uint8Array, framed = false) {
    this.frame = framed ? bytes as Buffer : frame(bytes);
  }

  /** The encoded message, without its frame (a view, not a copy). */
  get body(): Buffer {
    return this.frame.subarray(5);
  }
}

/** Options of {@linkcode CallWriter}. */
export interface CallWriterOptions {
  /** Bytes per stream queued in the transport above which writes wait. */
  highWater?: number;
  /** Bytes per connection queued in the transport above which its writes wait. */
  connectionHighWater?: number;
  /** Milliseconds between looks at the queue while waiting. */
  pollMs?: number;
  /**
   * Largest message written, in bytes (the server's `--max-message-size`):
   * a larger one fails the write with a {@linkcode CapacityError}
   * (`RESOURCE_EXHAUSTED`), as grpc-js fails a call whose message it
   * would frame over its limit. Default: no limit.
   */
  maxMessageBytes?: number;
}

/** Any server-streaming or bidi call: a `CallWriter` writes it encoded bytes. */
type WritableCall =
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * A writer over one server-streaming (or bidi) call, its only writer while
 * it writes: it asks grpc-js whether it still holds a message only after
 * one of its own went through grpc-js (a last word written to the call
 * after the writer is done is fine).
 *
 * @example
 * ```ts ignore
 * const writer = new CallWriter(call, methods.SayHelloStreamReply.responseSerialize);
 * await writer.write({ message: "hi" }, signal); // resolves when there is room again
 * ```
 */
export class CallWriter<M> {
  #call: WritableCall;
  #serialize: (message: M) => Buffer;
  #stream: Http2StreamLike | undefined;
  #ledger: Ledger | undefined;
  #highWater: number;
  #connectionHighWater: number;
  #pollMs: number;
  #maxMessageBytes: number;
  /** Bytes this stream has put into the bucket since it was last empty. */
  #counted = 0;
  /** The bucket's `emptied` count when `#counted` started. */
  #countedSince = 0;
  /** Told each message sent (see {@linkcode countSentMessages}). */
  #sent: SentCounter | undefined;
  /** Whether the response headers were asked of grpc-js (see `#send`). */
  #askedHeaders = false;
  /** Whether the stream's response headers are out. */
  #headersSent = false;
  /**
   * A message went through grpc-js: it may still hold it, and direct writes
   * wait until it has none (then never ask again: only this writer writes).
   */
  #callMayHold = false;

  /**
   * Wraps `call`, whose method must pass `Buffer`s through as they are (see
   * `loadGreeterProto`): messages are encoded here, with `serialize`, so that
   * their size is known. Finds the call's HTTP/2 stream if this grpc-js
   * exposes it.
   */
  constructor(
    call: WritableCall,
    serialize: (message: M) => Buffer,
    options: CallWriterOptions = {},
  ) {
    this.#call = call;
    this.#serialize = serialize;
    this.#highWater = options.highWater ?? DEFAULT_TRANSPORT_HIGH_WATER;
    this.#connectionHighWater = options.connectionHighWater ??
      DEFAULT_CONNECTION_HIGH_WATER;
    this.#pollMs = options.pollMs ?? DEFAULT_STALL_POLL_MS;
    this.#maxMessageBytes = options.maxMessageBytes ?? Infinity;
    const stream = http2StreamOf(call);
    this.#stream = stream;
    this.#sent = stream && sentCounters.get(stream);
    if (!stream || !UNRELIABLE_BUFFER_SIZE || !stream.session) return;
    const session = stream.session;
    let ledger = ledgers.get(session);
    if (!ledger) {
      ledger = {
        session,
        bucket: 0,
        emptied: 0,
        flushed: flushedBytes(session),
        writers: 0,
        waiting: new Set(),
      };
      ledgers.set(session, ledger);
    }
    ledger.writers++;
    this.#ledger = ledger;
    this.#countedSince = ledger.emptied;
    // Once the HTTP/2 stream is gone, its bytes are sent or discarded: none
    // of them can still be held.
    stream.once("close", () => {
      if (this.#countedSince === ledger.emptied) {
        ledger.bucket -= this.#counted;
        if (ledger.bucket <= 0) {
          ledger.bucket = 0;
          ledger.emptied++; // what others counted before is gone too
        }
      }
      this.#counted = 0;
      this.#stream = undefined;
    });
    call.once("close", () => {
      ledger.writers--;
      this.#ledger = undefined;
    });
  }

  /**
   * Writes `message` (or bytes already encoded); returns a promise that
   * resolves once the transport has room for the next one, or `undefined`
   * when it has room now (a fan-out writes thousands of messages a tick,
   * nearly all with room: a promise each bought nothing). The promise rejects with the
   * signal's reason if it aborts while waiting (seen within `pollMs` when
   * the wait is on the connection's poll).
   */
  write(
    message: M | Buffer | FramedMessage,
    signal: AbortSignal,
  ): Promise<void> | undefined {
    this.#put(message);
    return this.#blocked() ? this.#room(signal) : undefined;
  }

  async #room(signal: AbortSignal): Promise<void> {
    do await this.#wait(signal); while (this.#blocked());
  }

  /**
   * Writes `message`, the call's last, without waiting for room, and ends
   * the call with OK: its trailers follow what the stream holds.
   */
  end(message: M | Buffer | FramedMessage): void {
    this.#put(message);
    this.#call.end();
  }

  /**
   * Encodes `message` unless it is already, and sends it; throws a
   * {@linkcode CapacityError} for a message over `maxMessageBytes`.
   * (Messages are framed here, where grpc-js's own check never sees them.)
   */
  #put(message: M | Buffer | FramedMessage): void {
    if (message instanceof FramedMessage) {
      this.#check(message.frame.length - 5);
      this.#send(message);
    } else {
      const body = Buffer.isBuffer(message)
        ? message
        : this.#serialize(message as M);
      this.#check(body.length);
      this.#send(body);
    }
  }

  #check(size: number): void {
    if (size > this.#maxMessageBytes) {
      throw new CapacityError(
        `Cannot send a message of ${size} bytes: the server's limit is ${this.#maxMessageBytes} bytes (--max-message-size)`,
      );
    }
  }

  /**
   * Hands `bytes` to the transport. Once grpc-js has sent the response
   * headers and holds no message of this call, the message is framed here
   * and written straight to the HTTP/2 stream: grpc-js writes one message
   * at a time per call, each waiting for the last one's callback, while the
   * stream itself queues what arrives meanwhile and flushes it in one
   * `writev`. Otherwise (headers not sent, grpc-js still holding a message,
   * no stream found) grpc-js writes it, so order is kept either way. Ending
   * the call stays grpc-js's: its trailers follow what the stream holds.
   */
  #send(message: Buffer | FramedMessage): void {
    const framed = message instanceof FramedMessage;
    const stream = this.#stream;
    if (stream?.write && this.#direct(stream)) {
      // A closed stream: the call is over, and grpc-js would drop it too.
      if (!stream.destroyed && !stream.writableEnded) {
        stream.write(framed ? message.frame : frame(message));
        corkUntilImmediate(stream.session);
      }
    } else {
      this.#call.write(framed ? message.body : message);
      this.#callMayHold = true;
    }
    this.#count(
      framed ? message.frame.length : message.length + FRAME_OVERHEAD,
    );
    this.#sent?.sent();
  }

  /** Whether `stream` may be written directly now (asks grpc-js for the headers once). */
  #direct(stream: Http2StreamLike): boolean {
    if (!this.#headersSent) {
      // Asked once; sent for good once sent (a getter on Deno's streams).
      if (!this.#askedHeaders && !stream.headersSent) {
        this.#call.sendMetadata(new grpc.Metadata());
      }
      this.#askedHeaders = true;
      this.#headersSent = stream.headersSent === true;
    }
    if (!this.#headersSent) return false;
    // A getter of Deno's Writable: 1.75% of the fan-out's CPU when asked
    // for every message.
    if (this.#callMayHold) {
      if (this.#call.writableLength !== 0) return false;
      this.#callMayHold = false;
    }
    return true;
  }

  /** Adds `n` written bytes to the connection's bucket. */
  #count(n: number): void {
    const ledger = this.#ledger;
    if (!ledger || !this.#stream) return;
    if (this.#countedSince !== ledger.emptied) {
      this.#countedSince = ledger.emptied;
      this.#counted = 0;
    }
    ledger.bucket += n;
    this.#counted += n;
  }

  #blocked(): boolean {
    if (this.#call.writableNeedDrain) return true;
    const stream = this.#stream;
    if (!stream) return false;
    if (stream.writableNeedDrain) return true;
    const ledger = this.#ledger;
    if (!ledger) {
      return !UNRELIABLE_BUFFER_SIZE && stream.bufferSize > this.#highWater;
    }
    const limit = Math.min(
      this.#highWater * Math.max(1, ledger.writers),
      Math.max(this.#highWater, this.#connectionHighWater),
    );
    // Reading the socket walks its queue: only near the mark.
    if (ledger.bucket <= limit) return false;
    this.#drain();
    return ledger.bucket > limit;
  }

  /**
   * Takes what the socket flushed since the last look out of the bucket,
   * once per cork of the socket: the socket's `bytesWritten` walks its whole
   * queue of unsent chunks, and when a connection's writers are over the
   * mark, every one of them asked (at 5,000 subscribers over 8 connections:
   * 22% of the server's CPU, all in that walk). A corked socket sends
   * nothing new, so a second look under the same cork would find (almost
   * always) what the first found; a writer held back then looks again at the
   * connection's next poll.
   */
  #drain(): void {
    const ledger = this.#ledger;
    if (!ledger) return;
    const cork = corks.get(ledger.session);
    if (cork !== undefined && ledger.lookedUnder === cork) return;
    ledger.lookedUnder = cork;
    const flushed = flushedBytes(ledger.session);
    const bucket = ledger.bucket - (flushed - ledger.flushed);
    ledger.flushed = flushed;
    if (bucket > 0) ledger.bucket = bucket;
    else {
      ledger.bucket = 0;
      ledger.emptied++;
    }
  }

  #wait(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const ledger = this.#ledger;
    if (ledger) {
      // The connection's one poll is the only wake-up: a closed call or an
      // aborted signal is seen at the next look (`pollMs`), as `write`
      // checks both before waiting again. Listeners added and removed per
      // wait cost more than the writes when thousands of streams wait.
      return new Promise((resolve) => {
        ledger.waiting.add(resolve);
        ledger.timer ??= setTimeout(() => wakeAll(ledger), this.#pollMs);
      });
    }
    return new Promise((resolve, reject) => {
      const call = this.#call;
      const stream = this.#stream;
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
      stream?.once("drain", done);
      signal.addEventListener("abort", abort, { once: true });
      function cleanup() {
        clearTimeout(timer);
        call.off("drain", done);
        call.off("close", done);
        stream?.off?.("drain", done);
        signal.removeEventListener("abort", abort);
      }
    });
  }
}

/**
 * Charges headers or trailers a call is about to send to its `connection`'s
 * bucket (a frame header: a lower bound, see the module doc), and corks the
 * connection's socket until the next check phase, so that what its streams
 * flush meanwhile leaves in one socket write.
 */
export function chargeHeaders(connection: object | undefined): void {
  corkUntilImmediate(connection);
  charge(connection, HTTP2_FRAME_HEADER);
}

/**
 * Charges a message of `bytes` encoded that a call sends outside a
 * `CallWriter` (which counts its own) to its `connection`'s bucket, with
 * its frame prefix.
 */
export function chargeMessage(
  connection: object | undefined,
  bytes: number,
): void {
  charge(connection, bytes + FRAME_OVERHEAD);
}

function charge(connection: object | undefined, bytes: number): void {
  // Looked up each time: the first CallWriter on a connection makes it.
  const ledger = connection && ledgers.get(connection);
  if (ledger) ledger.bucket += bytes;
}

/** `body` as one gRPC message frame: uncompressed flag, length, bytes. */
function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + 5);
  out.set(body, 5);
  return framePrefix(out);
}

/**
 * Writes the gRPC frame prefix (uncompressed, big-endian length) into the
 * first 5 bytes of `out`, whose message starts after them.
 */
export function framePrefix(out: Buffer): Buffer {
  out[0] = 0;
  out.writeUInt32BE(out.length - 5, 1);
  return out;
}

/** Sessions whose socket is corked until the next check phase, each with a token of that cork. */
const corks = new WeakMap<object, object>();

/**
 * Corks `session`'s socket until the next check phase (`setImmediate`), so
 * that what its streams flush meanwhile (headers, messages, trailers) leaves
 * in one socket write rather than one each (Deno's `node:http2` writes its
 * socket once per frame it flushes; measured: unary h2load 15-25% more
 * calls/s, and under fan-out overload the socket writes fell from about 38%
 * of the server's CPU to 5%). A stream's own write completes
 * in an immediate queued when it was written, before this one: call it
 * after the write, so that the batch the stream sends then is covered too.
 */
function corkUntilImmediate(session: Session | undefined): void {
  if (!session || corks.has(session)) return;
  // Both taken now, bound to the socket itself: once the session lets go of
  // its socket (the peer is gone), its `socket` throws on every property.
  let cork, uncork;
  try {
    ({ cork, uncork } = session.socket as {
      cork?: () => void;
      uncork?: () => void;
    });
  } catch {
    return;
  }
  if (!cork || !uncork) return;
  cork();
  corks.set(session, {});
  setImmediate(() => {
    corks.delete(session);
    uncork();
  });
}

/** Ends a connection's poll: every waiting writer looks again. */
function wakeAll(ledger: Ledger): void {
  ledger.timer = undefined;
  const waiting = ledger.waiting;
  ledger.waiting = new Set();
  for (const wake of waiting) wake();
}

/** Bytes a connection's socket has flushed (not merely queued). */
function flushedBytes(session: Session): number {
  try {
    const socket = session.socket;
    return (socket?.bytesWritten ?? 0) - (socket?.writableLength ?? 0);
  } catch {
    // The session let go of its socket: nothing can still be held there.
    return Number.MAX_SAFE_INTEGER;
  }
}

/** What {@linkcode connectionClosed} reads of a connection. */
type SessionState = {
  readonly closed?: boolean;
  readonly destroyed?: boolean;
  once?(event: "goaway", listener: () => void): unknown;
};

/** Connections whose peer sent GOAWAY: it closed them on purpose. */
const saidGoodbye = new WeakSet<object>();
/** Connections whose GOAWAY is listened for (one listener each). */
const listened = new WeakSet<object>();

/**
 * Whether a call ended because its HTTP/2 connection went (`disconnected`)
 * rather than because its client cancelled it, asked of the connection as
 * it was when the call started (taken now). grpc-js says `'cancelled'` both
 * when a client cancels its call (RST_STREAM) and when its connection goes
 * (a killed process, a cut network), and Deno 2.9.3 gives both streams the
 * same `rstCode` (8, CANCEL). Measured on Deno 2.9.3, at the stream's
 * `'aborted'` and at its close:
 *
 * - a cancel: the connection open at both;
 * - a cancel and the channel closed at once (`GreeterClient` disposed
 *   right after a `break`): open when aborted, closed with the peer's
 *   GOAWAY by the close (the close alone said `disconnected`);
 * - a killed peer: open when aborted, closed without GOAWAY by the close;
 * - a connection closed under the call without a cancel: already closing
 *   (GOAWAY received) when aborted.
 *
 * Once the stream is closed, Deno no longer links it to its connection:
 * hence the connection taken at the start.
 *
 * @example
 * ```ts ignore
 * const closed = connectionClosed(call); // when the call starts
 * call.once("cancelled", () => closed() ? "disconnected" : "client-cancelled");
 * ```
 */
export function connectionClosed(call: object): () => boolean {
  const stream = http2StreamOf(call) as
    | (Http2StreamLike & {
      once(event: "aborted", listener: () => void): unknown;
    })
    | undefined;
  const session = stream?.session as SessionState | undefined;
  const isClosed = () =>
    session?.closed === true || session?.destroyed === true;
  if (!stream || !session) return isClosed;
  if (!listened.has(session)) {
    listened.add(session);
    session.once?.("goaway", () => saidGoodbye.add(session));
  }
  let resetOnOpen: boolean | undefined; // known once the stream is aborted
  stream.once("aborted", () => resetOnOpen = !isClosed());
  return () => {
    if (resetOnOpen === undefined) return isClosed();
    if (!resetOnOpen) return true; // the connection was going first
    return isClosed() && !saidGoodbye.has(session);
  };
}

/**
 * The HTTP/2 stream under a grpc-js server call (or intercepting call).
 * Exported for the call counting (`sent_status.ts`), which reads the status
 * grpc-js sent without telling the interceptors.
 * grpc-js keeps it private (1.14: `call.call[.nextCall…].stream`);
 * `undefined` when it moves, and the `'drain'` signal is then the only one.
 */
export function http2StreamOf(call: object): Http2StreamLike | undefined {
  // deno-lint-ignore no-explicit-any
  let inner: any = call;
  for (let depth = 0; inner && depth < 10; depth++) {
    if (typeof inner.stream?.bufferSize === "number") return inner.stream;
    inner = inner.call ?? inner.nextCall;
  }
  return undefined;
}
