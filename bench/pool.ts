/**
 * The bench's subscriber load generator: many subscriptions over a few
 * connections, kept lean so that the generator is the limit as rarely as
 * can be: gRPC spoken over `node:http2` directly (no grpc-js: its
 * per-message stream machinery cost the generator more than the server),
 * messages cut from the DATA and left undecoded but for the one field the
 * bench needs (the publish time, or the send time a stamping publisher put
 * in the payload, for delivery latency).
 *
 * Run as a program, it holds `N` subscriptions until killed:
 * `deno run … bench/pool.ts TARGET N CONNECTIONS` prints `ready` once all are
 * live (the death-to-removal figure kills it).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { loadGreeterProto } from "../lib/wire/proto.ts";

/** Which stream the pool subscribes with. */
export type PoolMethod = "Subscribe" | "SayHelloStreamReply";

/** Options of {@linkcode SubscriberPool}. */
export interface PoolOptions {
  /** Subscriptions to open. */
  subscribers: number;
  /** Connections to spread them over (each its own channel). */
  connections: number;
  /** `Subscribe` or the seed's `SayHelloStreamReply`. */
  method: PoolMethod;
  /** `Subscribe`'s topics, or each subscription's by its index. Default `["bench"]`. */
  topics?: string[] | ((index: number) => string[]);
  /** `Subscribe`'s resume cursor: every subscription resumes after it. */
  after?: { epoch: string; seq: number };
  /**
   * Where an event's latency counts from: its `time_ms` (default; the
   * server's publish time, whole ms), or the send time a stamping
   * publisher (`bench/publisher.ts`) wrote at the start of its payload
   * (sub-ms, and taken before the publish call: publish-to-delivery).
   */
  latencyFrom?: "time" | "payload";
}

/** HTTP/2 window the generator gives each stream. */
const STREAM_WINDOW = 1 << 20;

/**
 * HTTP/2 window the generator gives each connection, as grpc-go's
 * BDP-driven windows grow to. At the 64 KiB default (grpc-js's too, unless
 * `grpc-node.flow_control_window` is set), a connection of 100 busy streams
 * was paced by its own window updates: measured at 5,000 subscribers and
 * 125k events/s offered, most subscribers were ~0.2-0.5 s behind and some 5 s
 * (the latency's p99), where with 8 MiB all were within 0.2 s.
 */
const CONNECTION_WINDOW = 8 << 20;

/** Latency histogram buckets per ms: 0.1 ms (JetStream delivers in ~1 ms). */
const PER_MS = 10;

/** Latency histogram: {@linkcode PER_MS} buckets per ms, up to a minute. */
const BUCKETS = 60_000 * PER_MS;

/** Reads a varint at `at`; returns it and the index after it. */
function varint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
}

/**
 * Where the value of the first field tagged `tag` (field number << 3 | wire
 * type) starts in the message in `bytes[from, to)`; -1 when absent.
 */
function findField(
  bytes: Uint8Array,
  from: number,
  to: number,
  tag: number,
): number {
  let at = from;
  while (at < to) {
    let found;
    [found, at] = varint(bytes, at);
    const type = found & 7;
    if (found === tag) return at;
    if (type === 0) at = varint(bytes, at)[1];
    else if (type === 2) {
      let length;
      [length, at] = varint(bytes, at);
      at += length;
    } else if (type === 1) at += 8;
    else if (type === 5) at += 4;
    else return -1;
  }
  return -1;
}

/** Field 3 (varint) of the message in `bytes[from, to)`: `time_ms` of Event and HelloReply. */
function field3(bytes: Uint8Array, from: number, to: number): number {
  const at = findField(bytes, from, to, 0x18);
  return at < 0 ? -1 : varint(bytes, at)[0];
}

/** The `Event` inside a `GreetingMessage`, as `[from, to)`; undefined for other messages. */
function eventRange(bytes: Uint8Array): [number, number] | undefined {
  if (bytes[0] !== 0x22) return undefined; // not GreetingMessage.event (field 4)
  const [length, at] = varint(bytes, 1);
  return [at, at + length];
}

/** Publish time of a Subscribe event or a SayHelloStreamReply reply; -1 for other messages. */
export function publishTime(method: PoolMethod, bytes: Uint8Array): number {
  if (method === "SayHelloStreamReply") return field3(bytes, 0, bytes.length);
  const range = eventRange(bytes);
  return range ? field3(bytes, ...range) : -1;
}

/**
 * The send time (ms since the Unix epoch, fractional) a stamping publisher
 * wrote in the first 8 bytes of a Subscribe event's payload (float64,
 * little-endian); -1 for other messages.
 */
export function stampedTime(bytes: Uint8Array): number {
  const range = eventRange(bytes);
  if (!range) return -1;
  let at = findField(bytes, range[0], range[1], 0x2a); // Event.payload
  if (at < 0) return -1;
  let length;
  [length, at] = varint(bytes, at);
  if (length < 8) return -1;
  return new DataView(bytes.buffer, bytes.byteOffset + at, 8)
    .getFloat64(0, true);
}

/** Now, in ms since the Unix epoch with a fraction (comparable across processes). */
export const preciseNow = (): number =>
  performance.timeOrigin + performance.now();

/** Many subscriptions, counted and timed as their messages arrive. */
export class SubscriberPool {
  /** Messages received (all kinds). */
  received = 0;
  /** Events received (messages with a publish time: not gaps, heartbeats…). */
  events = 0;
  /** Subscriptions that have received their first message. */
  live = 0;
  /**
   * Events received whose publish time (or stamped send time) falls in the
   * window {@linkcode SubscriberPool.openWindow} opened: what was offered
   * in it and delivered, whenever it arrives, never a backlog from before.
   */
  windowEvents = 0;
  /** The latest publish time (or stamped send time) received, ms since the Unix epoch. */
  latestTime = -Infinity;
  #windowFrom = Infinity;
  #windowTo = Infinity;
  /** Delivery latency histogram ({@linkcode PER_MS} buckets per ms), events only. */
  readonly latency: Uint32Array = new Uint32Array(BUCKETS + 1);
  #sessions: http2.ClientHttp2Session[];
  #streams: http2.ClientHttp2Stream[] = [];
  #method: PoolMethod;
  #options: PoolOptions;
  #allLive?: () => void;

  /** Opens the connections (no call yet). */
  constructor(target: string, options: PoolOptions) {
    this.#options = options;
    this.#method = options.method;
    this.#sessions = Array.from({ length: options.connections }, () => {
      const session = http2.connect(`http://${target}`, {
        settings: { initialWindowSize: STREAM_WINDOW },
      });
      session.on("error", () => {}); // closed at close()
      session.once(
        "connect",
        () => session.setLocalWindowSize(CONNECTION_WINDOW),
      );
      return session;
    });
  }

  /**
   * Subscribes everyone; resolves when each has received a first message,
   * rejects when they have not within `timeoutMs`.
   */
  start(timeoutMs = 120_000): Promise<void> {
    const definition = loadGreeterProto().service[this.#method];
    const live = new Promise<void>((resolve) => this.#allLive = resolve);
    // A server that dies or never answers must not hang the bench.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = Promise.race([
      live,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `Cannot start the subscriber pool: ${this.live} of ${this.#options.subscribers} subscriptions live after ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const stamped = this.#options.latencyFrom === "payload";
    for (let i = 0; i < this.#options.subscribers; i++) {
      const request = this.#method === "Subscribe"
        ? {
          name: `b${i}`,
          topics: typeof this.#options.topics === "function"
            ? this.#options.topics(i)
            : this.#options.topics ?? ["bench"],
          after: this.#options.after,
        }
        : { name: `s${i}` };
      const stream = this.#sessions[i % this.#sessions.length].request({
        ":method": "POST",
        ":path": definition.path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const body = definition.requestSerialize(request);
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      stream.end(frame);
      let first = true;
      const messages = new MessageSplitter((bytes, from, to) => {
        this.received++;
        if (first) {
          first = false;
          if (++this.live === this.#options.subscribers) this.#allLive?.();
        }
        const message = bytes.subarray(from, to);
        const time = stamped
          ? stampedTime(message)
          : publishTime(this.#method, message);
        if (time >= 0) {
          this.events++;
          if (time >= this.#windowFrom && time < this.#windowTo) {
            this.windowEvents++;
          }
          if (time > this.latestTime) this.latestTime = time;
          const now = stamped ? preciseNow() : Date.now();
          const bucket = Math.round((now - time) * PER_MS);
          this.latency[Math.min(BUCKETS, Math.max(0, bucket))]++;
        }
      });
      stream.on("data", (chunk: Buffer) => messages.push(chunk));
      stream.on("error", () => {}); // cancelled at close
      this.#streams.push(stream);
    }
    return done;
  }

  /**
   * Starts counting {@linkcode SubscriberPool.windowEvents} from zero: events
   * published from `fromMs` (ms since the Unix epoch) on.
   */
  openWindow(fromMs: number): void {
    this.windowEvents = 0;
    this.#windowFrom = fromMs;
    this.#windowTo = Infinity;
  }

  /** Ends the window: events published from `toMs` on no longer count. */
  closeWindow(toMs: number): void {
    this.#windowTo = toMs;
  }

  /** Forgets the latencies recorded so far. */
  resetLatency(): void {
    this.latency.fill(0);
  }

  /** The `p` quantile (0..1) of the recorded latencies, in ms. */
  percentile(p: number): number {
    let total = 0;
    for (const n of this.latency) total += n;
    let seen = 0;
    for (let bucket = 0; bucket <= BUCKETS; bucket++) {
      seen += this.latency[bucket];
      if (seen > 0 && seen >= total * p) return bucket / PER_MS;
    }
    return NaN;
  }

  /** The largest recorded latency, in ms (a minute or more reads 60000). */
  max(): number {
    for (let bucket = BUCKETS; bucket >= 0; bucket--) {
      if (this.latency[bucket]) return bucket / PER_MS;
    }
    return NaN;
  }

  /** Cancels every call and closes the connections. */
  close(): void {
    for (const stream of this.#streams) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    for (const session of this.#sessions) session.destroy();
  }
}

/**
 * Cuts a stream's DATA into gRPC messages (5-byte prefix, then the body),
 * however the chunks fall, handing each to `onMessage` as a range of bytes.
 */
class MessageSplitter {
  #pending: Buffer | undefined;
  #onMessage: (bytes: Buffer, from: number, to: number) => void;

  constructor(onMessage: (bytes: Buffer, from: number, to: number) => void) {
    this.#onMessage = onMessage;
  }

  push(chunk: Buffer): void {
    const bytes = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    let at = 0;
    while (bytes.length - at >= 5) {
      const end = at + 5 + bytes.readUInt32BE(at + 1);
      if (end > bytes.length) break;
      this.#onMessage(bytes, at + 5, end);
      at = end;
    }
    // A copy: the chunk's memory may be reused for the next read.
    this.#pending = at < bytes.length
      ? Buffer.from(bytes.subarray(at))
      : undefined;
  }
}

if (import.meta.main) {
  // TARGET SUBSCRIBERS CONNECTIONS [Subscribe TOPIC]: tick replies by default.
  const [target, n, connections, method, topic] = Deno.args;
  const pool = new SubscriberPool(target, {
    subscribers: Number(n),
    connections: Number(connections),
    method: method === "Subscribe" ? "Subscribe" : "SayHelloStreamReply",
    topics: topic === undefined ? undefined : [topic],
  });
  await pool.start();
  console.log("ready");
  setInterval(() => {}, 1 << 30); // held until killed
}
