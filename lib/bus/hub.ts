/**
 * Folder `lib/bus/`: the event bus: the hub (here), its subscribers, the
 * brokers (`broker.ts`: the interface and the memory broker; NATS
 * JetStream in `nats/`), the replay window (`replay_log.ts`; held once for
 * a process's workers: `shared_window.ts`, written by `sequencer.ts`, read
 * through `relay_broker.ts`), the ticker and the clock. It knows web
 * streams, `AbortSignal` and shared memory, no transport.
 * May import the shared modules of `lib/` (`errors.ts`, `defaults.ts`) only.
 *
 * The hub (the seed's "CustomerCenter", grown into an event bus): fans the
 * broker's events out to its subscriptions, one `ReadableStream` each, with
 * topic filters, a bounded buffer and slow-consumer policy per subscription,
 * gap reports, heartbeats, and resume from a replay window. It knows web
 * streams and `AbortSignal`, nothing of gRPC.
 *
 * @module
 */

import {
  type Broker,
  type BrokerChange,
  type BusEvent,
  type DirectoryPage,
  type DirectoryQuery,
  type PublishOptions,
  type StreamState,
} from "./broker.ts";
import {
  CallerLeftError,
  CapacityError,
  InvalidArgumentError,
  SlowConsumerError,
  UnavailableError,
} from "../errors.ts";
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_REPLAY_AGE_MS,
  DEFAULT_REPLAY_SIZE,
  type SlowConsumerPolicy,
} from "../defaults.ts";
import { SubscriptionIndex } from "./subscription_index.ts";
import { type EventWindow, ReplayLog } from "./replay_log.ts";
import {
  hasEmptyToken,
  isPattern,
  MAX_TOPIC_LENGTH,
  TOPIC_CHARACTERS,
  TopicPattern,
} from "./topic_pattern.ts";
import {
  ALL_TOPICS,
  type Cursor,
  type Gap,
  type Heartbeat,
  type HubItem,
  type LeaveReason,
  PRESENCE_TOPIC,
  type StartPosition,
  type StreamEncoding,
  type SubscriptionInfo,
  type SubscriptionStart,
  TICK_TOPIC,
} from "./hub_items.ts";
import {
  Subscriber,
  type SubscriberHost,
  topicMatcher,
  wants,
} from "./subscriber.ts";
import { type Slots, totalSlots } from "./slots.ts";
import { quote } from "../escape.ts";

/**
 * Default most subscriptions read from the broker's log at once: each holds
 * a consumer on the engine and up to 16 events in flight.
 */
export const DEFAULT_MAX_BROKER_REPLAYS = 64;

/**
 * Default longest a read from the broker's log holds its slot waiting for
 * its reader (ms), once another resume wants the slot (or a heartbeat
 * passes): then what it had not read is a gap, and it goes on from the
 * hub's window.
 */
export const DEFAULT_BROKER_REPLAY_IDLE_MS = 30_000;

/** Default events of the server's own (`$`) topics kept for resume. */
export const DEFAULT_SERVER_REPLAY_SIZE = 1_000;

/** Most bytes of the server's own (`$`) topics kept for resume. */
export const SERVER_REPLAY_BYTES = 4 * 1024 * 1024;

/** A join or a leave, as {@linkcode HubOptions.presence} turns it into an event. */
export interface PresenceChange {
  /** What happened. */
  readonly action: "join" | "leave";
  /** Who. */
  readonly subscription: SubscriptionInfo;
  /** Why it left (leaves only). */
  readonly reason?: LeaveReason;
}

/**
 * A live subscription, as returned by {@linkcode Hub.subscribe}; its stream
 * carries `U`, the items themselves unless an encoding was given.
 */
export interface Subscription<T, U = HubItem<T>> extends SubscriptionStart {
  /** The subscriber's events, gaps and heartbeats, in sequence order. */
  readonly readable: ReadableStream<U>;
}

/** Counters over the hub's life, for logs and metrics. */
export interface HubStats {
  /**
   * Events this hub published and the broker took (its callers', its
   * ticks, its `$presence`): with a shared log, this instance's alone.
   */
  readonly published: number;
  /**
   * Events received from the broker and fanned out: with a shared log,
   * every instance's.
   */
  readonly received: number;
  /** Events handed to readers (all subscriptions). */
  readonly delivered: number;
  /** Events dropped under `drop-oldest` (all subscriptions). */
  readonly dropped: number;
  /** Subscriptions removed under the `disconnect` policy. */
  readonly slowConsumerDisconnects: number;
  /** Resumes that were complete. */
  readonly resumesRecovered: number;
  /** Resumes that were not (other epoch, too old, ahead). */
  readonly resumesMissed: number;
}

/** Options of {@linkcode Hub}. */
export interface HubOptions<T> {
  /** Events a subscription may hold unread. Default {@linkcode DEFAULT_BUFFER_SIZE}. */
  bufferSize?: number;
  /** What to do when that buffer is full. Default `"drop-oldest"`. */
  policy?: SlowConsumerPolicy;
  /** Most live subscriptions at once. Default: no limit. */
  maxSubscribers?: number;
  /**
   * Where `maxSubscribers` is counted, when not in this hub alone: hubs of
   * one process's workers take their subscriptions from one count. `take`
   * says whether there was room (and takes it); `give` hands it back.
   */
  capacity?: { take(): boolean; give(): void };
  /**
   * Most subscriptions read from the broker's log at once (resumes older
   * than the window); beyond, a resume is refused with a retryable
   * {@linkcode UnavailableError}. Default {@linkcode DEFAULT_MAX_BROKER_REPLAYS}.
   * Ignored when `brokerReplaySlots` is given.
   */
  maxBrokerReplays?: number;
  /**
   * The slots of those reads, taken by each subscription's `holder` (a
   * peer's share of them: `lib/access/peer_shares.ts`). Default: at most
   * `maxBrokerReplays`, whoever holds them.
   */
  brokerReplaySlots?: Slots;
  /** Default {@linkcode DEFAULT_BROKER_REPLAY_IDLE_MS}. */
  brokerReplayIdleMs?: number;
  /**
   * The first subscription's id (then one more each). Default 1. Instances
   * sharing a sequence start far apart, so that ids are unique across them.
   */
  firstId?: number;
  /**
   * Numbers each new subscription instead (`firstId` is then unused): hubs
   * of one process's workers draw from one counter, so that ids are unique
   * and in join order across them.
   */
  nextId?: () => number;
  /**
   * Makes the replay windows (of ordinary topics, and of the server's own),
   * empty after `after`, instead of the hub's own {@linkcode ReplayLog}s
   * (sized by the options below): hubs of one process's workers read one
   * window held for all of them.
   */
  windows?: (after: number) => HubWindows<T>;
  /** Events kept for resume. Default {@linkcode DEFAULT_REPLAY_SIZE}. */
  replaySize?: number;
  /** Age beyond which events are not replayed (ms). Default {@linkcode DEFAULT_REPLAY_AGE_MS}. */
  replayAgeMs?: number;
  /** Most bytes the replay window holds, as `sizeOf` counts them. Default: no bound. */
  replayBytes?: number;
  /**
   * Events of the server's own topics (`$presence`) kept for resume, in a
   * window of their own so that joins and leaves never push other events
   * out. Default {@linkcode DEFAULT_SERVER_REPLAY_SIZE}; at most
   * {@linkcode SERVER_REPLAY_BYTES} bytes (or `replayBytes`, if less).
   */
  serverReplaySize?: number;
  /** What one event's data weighs, for `replayBytes`. */
  sizeOf?: (data: T) => number;
  /** Time source for join, heartbeat and expiry times. Default `Date.now`. */
  now?: () => number;
  /** When set, every join and leave is published on {@linkcode PRESENCE_TOPIC} as this data. */
  presence?: (change: PresenceChange) => T;
  /** Called when a subscription joins. */
  onJoin?: (info: SubscriptionInfo) => void;
  /** Called once when a subscription leaves, whatever the path. */
  onLeave?: (info: SubscriptionInfo, reason: LeaveReason) => void;
  /** Called when a subscription is handed a gap: once per run of losses. */
  onGap?: (info: SubscriptionInfo, gap: Gap) => void;
}

/** A hub's two replay windows. */
export interface HubWindows<T> {
  /** Of ordinary topics. */
  ordinary: EventWindow<T>;
  /** Of the server's own (`$`) topics. */
  own: EventWindow<T>;
}

/** Options of {@linkcode Hub.subscribe}. */
export interface SubscribeOptions {
  /** Topics to receive; empty or absent: {@linkcode ALL_TOPICS}. */
  topics?: readonly string[];
  /**
   * Resume: replay what the hub still holds after this cursor. A cursor of
   * this epoch older than everything held starts with the oldest event held
   * (not recovered: the reason says what is gone).
   */
  after?: Cursor;
  /**
   * `after` is where a start position ({@linkcode Hub.startAfter}) put the
   * subscription, not a resume: not counted among resumes.
   */
  started?: boolean;
  /** Aborting it removes the subscription at once and errors its stream. */
  signal?: AbortSignal;
  /** Opaque labels kept with the subscription (e.g. `{ peer }`). */
  labels?: Record<string, string>;
  /**
   * Called once when this subscription leaves, whatever the path (after the
   * hub's `onLeave`), with the error it was removed with, if any.
   */
  onLeave?: (reason: LeaveReason, error?: unknown) => void;
  /** Who holds it (the peer, `HOST:PORT`), for shares of bounded pools. Default `""`. */
  holder?: string;
}

/** Options of {@linkcode Hub.subscribe} for a stream written as it comes. */
export interface EncodedSubscribeOptions<T, U> extends SubscribeOptions {
  /** What the stream carries in place of each item, and first and last. */
  encoding: StreamEncoding<T, U>;
}

const TOPIC = new RegExp(`^[${TOPIC_CHARACTERS}]{1,${MAX_TOPIC_LENGTH}}$`);

/**
 * Checks a topic a client may publish on: 1 to 128 letters, digits or
 * `. _ - / :`, in `.`-separated tokens none of which is empty (as NATS
 * asks). Topics starting with `$` are the server's own. Throws
 * {@linkcode InvalidArgumentError} otherwise, quoting the topic escaped.
 */
export function validateTopic(topic: string): string {
  if (!TOPIC.test(topic) || hasEmptyToken(topic)) {
    throw new InvalidArgumentError(
      `Invalid topic ${
        quote(topic.slice(0, MAX_TOPIC_LENGTH + 12))
      }: use 1 to ${MAX_TOPIC_LENGTH} letters, digits or . _ - / : in "."-separated tokens, none empty (topics starting with "$" are reserved)`,
    );
  }
  return topic;
}

/**
 * Checks what a client publishes: a topic it may publish on (never the
 * clock's {@linkcode TICK_TOPIC}, nor a `$` one) and a payload of at most
 * `maxBytes`; returns the topic, or throws {@linkcode InvalidArgumentError}
 * naming what is wrong.
 *
 * @example
 * ```ts
 * import { validatePublish } from "./hub.ts";
 * validatePublish("news", 5, 16384); // "news"
 * ```
 */
export function validatePublish(
  topic: string,
  bytes: number,
  maxBytes: number,
): string {
  validateTopic(topic);
  if (topic === TICK_TOPIC) {
    throw new InvalidArgumentError(
      `Cannot publish on "${TICK_TOPIC}": it is the server's clock; publish on another topic`,
    );
  }
  if (bytes > maxBytes) {
    throw new InvalidArgumentError(
      `Payload is ${bytes} bytes: at most ${maxBytes} are accepted; publish a reference to large data instead`,
    );
  }
  return topic;
}

/** Longest idempotency key of a publish, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

/**
 * The broker id of a publish whose client named it `key` (its idempotency
 * key: publishes with one id within the broker's duplicate window are one
 * event), apart from the server's own ids (ticks on a shared stream); or
 * undefined when it named none. Throws {@linkcode InvalidArgumentError},
 * quoting it escaped, unless it is 1 to 128 printable ASCII characters
 * (what a NATS header value may hold).
 *
 * @example
 * ```ts
 * import { publishId } from "./hub.ts";
 * publishId("3f2a9c0d-11e4-4b7a"); // "publish:3f2a9c0d-11e4-4b7a"
 * publishId(""); // undefined
 * ```
 */
export function publishId(key: string | undefined): string | undefined {
  if (!key) return undefined;
  if (
    key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)
  ) {
    throw new InvalidArgumentError(
      `Invalid idempotency key ${
        quote(key.slice(0, MAX_IDEMPOTENCY_KEY_LENGTH + 12))
      }: use 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters, no spaces (a UUID, say)`,
    );
  }
  return `publish:${key}`;
}

/**
 * Checks one entry of a topic filter: {@linkcode ALL_TOPICS},
 * {@linkcode PRESENCE_TOPIC}, a valid topic or a pattern
 * ({@linkcode TopicPattern}: `news.*`, `news.>`). Throws
 * {@linkcode InvalidArgumentError} on anything else.
 */
export function validateFilterTopic(topic: string): string {
  if (topic === ALL_TOPICS || topic === PRESENCE_TOPIC) return topic;
  if (isPattern(topic)) return new TopicPattern(topic).text;
  return validateTopic(topic);
}

/**
 * Normalises a subscription's topic filter: empty means every ordinary topic;
 * entries are {@linkcode ALL_TOPICS}, {@linkcode PRESENCE_TOPIC} or valid
 * topics. Throws {@linkcode InvalidArgumentError} on anything else.
 */
export function normalizeTopics(topics: readonly string[] = []): string[] {
  if (topics.length > 64) {
    throw new InvalidArgumentError(
      `Too many topics (${topics.length}): subscribe to at most 64`,
    );
  }
  const set = new Set(topics.length === 0 ? [ALL_TOPICS] : topics);
  for (const topic of set) validateFilterTopic(topic);
  if (set.has(ALL_TOPICS)) {
    for (const topic of set) {
      if (topic !== ALL_TOPICS && !topic.startsWith("$")) set.delete(topic);
    }
  }
  return [...set];
}

/** The events `window` holds, oldest first. */
function* heldIn<T>(window: EventWindow<T>): Generator<BusEvent<T>> {
  for (let e = window.next(window.lost); e; e = window.next(e.seq)) yield e;
}

/**
 * Fans events out to subscriptions.
 *
 * Contract:
 * - **Ordering.** Each subscription reads its topics' events in sequence
 *   order, each at most once. `seq` grows by one per event, over all topics,
 *   so a filtered subscription sees holes in `seq` that are not losses; real
 *   losses are always reported as a {@linkcode Gap}.
 * - **Identity.** A subscription is its `id`, not its name.
 * - **Buffering.** Events a subscriber has not read yet wait in its own ring
 *   buffer of `bufferSize` events (the stream itself queues nothing: its high
 *   water mark is 0). When the buffer is full, `drop-oldest` discards the
 *   oldest event and reports it in a gap read before the events that follow;
 *   `disconnect` removes the subscription and errors its stream with
 *   {@linkcode SlowConsumerError}. Memory is bounded whatever readers do.
 * - **Resume.** Subscribing `after` a cursor of this epoch replays the held
 *   events after it (read straight from the replay window, not buffered),
 *   then continues live, with no duplicate and no hole; `recovered` says so.
 *   The server's own topics (`$presence`) have a window of their own, so
 *   joins and leaves never push other events out of theirs.
 *   Otherwise the subscription starts live and `recovered` is false with a
 *   `reason`. A cursor older than the window but in the broker's log is
 *   read from the log first, holding one of a bounded number of slots
 *   (`brokerReplaySlots`: a share per holder); one whose reader has not
 *   asked for `brokerReplayIdleMs` gives its slot back when another resume
 *   wants it, or at a heartbeat, and what it had not read of the log is a
 *   `slow-consumer` gap.
 * - **Heartbeats.** {@linkcode Hub.heartbeat} hands each idle subscription
 *   (its reader waiting, nothing held) the current seq: a safe resume point.
 * - **Leaving.** Cancelling the stream or aborting the signal removes the
 *   subscription at once; `onLeave` is called exactly once.
 * - **Closing.** {@linkcode Hub.close} refuses new subscriptions and
 *   publishes; each live stream ends normally once its reader has taken what
 *   its buffer held (a replay in progress stops where it is).
 * - **Encoding.** A transport that writes a subscription's stream as it
 *   comes (the stream is its response body) gives an
 *   {@linkcode StreamEncoding}: the stream then carries what it makes of
 *   each item, opens with its first chunk, and where the hub ends the stream
 *   (closing, a new sequence, a slow consumer removed, an abort) closes
 *   after its last chunk rather than erroring, unless the encoding has none
 *   for that end. Buffering, backpressure and leaving are the same.
 *
 * @example
 * ```ts
 * import { Hub } from "./hub.ts";
 * import { MemoryBroker } from "./broker.ts";
 * const hub = new Hub(new MemoryBroker<string>());
 * const { readable } = hub.subscribe("you", { topics: ["news"] });
 * await hub.publish("news", "hello");
 * const reader = readable.getReader();
 * const { value } = await reader.read();
 * value?.kind === "event" && value.data; // "hello"
 * hub.close();
 * ```
 */
export class Hub<T> {
  #broker: Broker<T>;
  #detach: () => void;
  /** The replay window of ordinary topics. */
  #log!: EventWindow<T>;
  /** The replay window of the server's own (`$`) topics. */
  #serverLog!: EventWindow<T>;
  /** Sequence number of the last event fanned out. */
  #seq!: number;
  /** Makes both windows anew, empty after `seq` (a broker's skip or reset). */
  #restart: (seq: number) => void;
  #subscribers = new SubscriptionIndex<Subscriber<T>>();
  /** What each subscriber may ask of this hub. */
  #host: SubscriberHost<T>;
  #bufferSize: number;
  #policy: SlowConsumerPolicy;
  #maxSubscribers: number;
  #brokerReplaySlots: Slots;
  #brokerReplayIdleMs: number;
  /** Subscriptions reading from the broker's log now, with their slot's release. */
  #brokerReaders = new Map<Subscriber<T>, () => void>();
  #capacity?: { take(): boolean; give(): void };
  #now: () => number;
  /** What one event's data weighs (the window's bound; `StreamInfo`'s bytes). */
  #sizeOf: (data: T) => number;
  #presence?: (change: PresenceChange) => T;
  #onJoin?: (info: SubscriptionInfo) => void;
  #onLeave?: (info: SubscriptionInfo, reason: LeaveReason) => void;
  #onGap?: (info: SubscriptionInfo, gap: Gap) => void;
  #nextId: () => number;
  #closed = false;
  #stats = {
    published: 0,
    received: 0,
    delivered: 0,
    dropped: 0,
    slowConsumerDisconnects: 0,
    resumesRecovered: 0,
    resumesMissed: 0,
  };

  /** Creates an empty, open hub attached to `broker`, where its events come from. */
  constructor(broker: Broker<T>, options: HubOptions<T> = {}) {
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(
        `Cannot create hub: buffer size must be a positive integer, got ${bufferSize}`,
      );
    }
    this.#bufferSize = bufferSize;
    this.#policy = options.policy ?? "drop-oldest";
    this.#maxSubscribers = options.maxSubscribers ?? Infinity;
    this.#brokerReplaySlots = options.brokerReplaySlots ??
      totalSlots(
        options.maxBrokerReplays ?? DEFAULT_MAX_BROKER_REPLAYS,
        "reads of the event stream",
      );
    this.#brokerReplayIdleMs = options.brokerReplayIdleMs ??
      DEFAULT_BROKER_REPLAY_IDLE_MS;
    this.#capacity = options.capacity;
    let nextId = options.firstId ?? 1;
    this.#nextId = options.nextId ?? (() => nextId++);
    this.#now = options.now ?? Date.now;
    this.#sizeOf = options.sizeOf ?? (() => 0);
    this.#presence = options.presence;
    this.#onJoin = options.onJoin;
    this.#onLeave = options.onLeave;
    this.#onGap = options.onGap;
    this.#broker = broker;
    const windows = options.windows ?? ((after) => ({
      ordinary: new ReplayLog<T>({
        size: options.replaySize ?? DEFAULT_REPLAY_SIZE,
        maxAgeMs: options.replayAgeMs ?? DEFAULT_REPLAY_AGE_MS,
        maxBytes: options.replayBytes,
        sizeOf: options.sizeOf,
        after,
      }),
      own: new ReplayLog<T>({
        size: options.serverReplaySize ?? DEFAULT_SERVER_REPLAY_SIZE,
        maxAgeMs: options.replayAgeMs ?? DEFAULT_REPLAY_AGE_MS,
        maxBytes: Math.min(
          options.replayBytes ?? Infinity,
          SERVER_REPLAY_BYTES,
        ),
        sizeOf: options.sizeOf,
        after,
      }),
    }));
    this.#restart = (after) => {
      ({ ordinary: this.#log, own: this.#serverLog } = windows(after));
      this.#seq = after;
    };
    this.#restart(this.#broker.seq);
    this.#host = {
      policy: this.#policy,
      windows: (ordinary, own) => this.#windows(ordinary, own),
      brokerReplay: (after, through, signal) =>
        this.#broker.replay!(after, through, signal),
      brokerReplayEnded: (subscriber) => {
        this.#brokerReaders.get(subscriber)?.();
        this.#brokerReaders.delete(subscriber);
      },
      now: () => this.#now(),
      delivered: () => {
        this.#stats.delivered++;
      },
      gapped: (subscriber, gap) => this.#onGap?.(subscriber.info(), gap),
      overflow: (subscriber, what) => this.#overflow(subscriber, what),
      remove: (subscriber, reason, error) =>
        this.#remove(subscriber, reason, error),
    };
    const unlisten = this.#broker.listen((event) => this.#fanOut(event));
    const unwatch = this.#broker.watch?.((change) => this.#changed(change));
    this.#detach = () => {
      unlisten();
      unwatch?.();
    };
  }

  /** Names the event sequence; cursors from another epoch are not resumed. */
  get epoch(): string {
    return this.#broker.epoch;
  }

  /** Number of live subscriptions, exact at every moment. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** Sequence number of the last event fanned out (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /** Counters over the hub's life. */
  get stats(): HubStats {
    return { ...this.#stats };
  }

  /** Events the replay window of ordinary topics holds now. */
  get held(): number {
    return this.#log.length;
  }

  /** Whether {@linkcode Hub.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds a subscription named `name` to `options.topics` and returns its
   * stream: the replayed events when resuming, then every event from now on.
   * Throws {@linkcode UnavailableError} once the hub is closed or while its
   * broker is pending (its engine not reached yet),
   * {@linkcode CapacityError} when it holds `maxSubscribers` already,
   * {@linkcode InvalidArgumentError} for a bad topic, and the signal's reason
   * if it has already aborted.
   *
   * With an `encoding`, the stream carries what it makes of each item, opens
   * with its first chunk and, where the hub ends the stream, closes after
   * its last ({@linkcode StreamEncoding}).
   */
  subscribe(name: string, options?: SubscribeOptions): Subscription<T>;
  subscribe<U>(
    name: string,
    options: EncodedSubscribeOptions<T, U>,
  ): Subscription<T, U>;
  subscribe(
    name: string,
    options: SubscribeOptions & { encoding?: StreamEncoding<T, unknown> } = {},
  ): Subscription<T, unknown> {
    const { signal, after } = options;
    signal?.throwIfAborted();
    const topics = normalizeTopics(options.topics);
    if (this.#closed) {
      throw new UnavailableError(
        `Cannot subscribe ${
          quote(name)
        }: the server is shutting down; retry on another instance or after a restart`,
      );
    }
    const pending = this.#broker.pending;
    if (pending !== undefined) {
      throw new UnavailableError(`Cannot subscribe "${name}": ${pending}`);
    }
    const capacity = this.#capacity;
    if (
      capacity
        ? !capacity.take()
        : this.#subscribers.size >= this.#maxSubscribers
    ) {
      throw new CapacityError(
        `Cannot subscribe ${
          quote(name)
        }: the server is at its limit of ${this.#maxSubscribers} subscribers; retry later`,
      );
    }
    const head = Math.max(this.#seq, this.#broker.head ?? 0);
    let resume;
    try {
      resume = after
        ? this.#resumeFrom(
          after,
          topics,
          options.holder ?? "",
          !options.started,
        )
        : undefined;
    } catch (error) {
      capacity?.give();
      throw error;
    }
    // A cursor the broker has stored but this hub not read yet is waited for.
    const start = resume?.start ?? this.#seq;
    const subscriber = new Subscriber<T>(this.#host, {
      id: this.#nextId(),
      name,
      topics,
      since: this.#now(),
      capacity: this.#bufferSize,
      labels: options.labels ?? {},
      replayFrom: start < this.#seq ? start : undefined,
      after: start,
      fromBrokerThrough: resume?.fromBroker,
      encoding: options.encoding,
    });
    this.#subscribers.add(subscriber);
    if (resume?.slot) this.#brokerReaders.set(subscriber, resume.slot);
    if (signal) {
      const onAbort = () =>
        subscriber.leave(
          signal.reason instanceof CallerLeftError
            ? signal.reason.how
            : "aborted",
          signal.reason,
        );
      signal.addEventListener("abort", onAbort, { once: true });
      subscriber.dispose = () => signal.removeEventListener("abort", onAbort);
    }
    subscriber.left = options.onLeave;
    const subscription = {
      id: subscriber.id,
      name,
      cursor: { epoch: this.epoch, seq: start },
      recovered: resume?.recovered ?? false,
      reason: resume?.reason,
      head: { epoch: this.epoch, seq: head },
      readable: subscriber.readable,
    };
    subscriber.opened(subscription);
    const info = subscriber.info();
    this.#onJoin?.(info);
    this.#announce({ action: "join", subscription: info });
    return subscription;
  }

  /**
   * Where a subscription to `topics` starting at `position` begins: the seq
   * to subscribe after (`after`, with `started`). `first`: the oldest event
   * still held, in the hub's window or, older, in the broker's log; `last`:
   * the newest `last` events of the topics in the window (all it holds when
   * fewer); `timeMs`: the first event published at or after it, asking the
   * broker's log when the window starts later. Throws
   * {@linkcode InvalidArgumentError} for a bad topic.
   *
   * @example
   * ```ts
   * import { Hub } from "./hub.ts";
   * import { MemoryBroker } from "./broker.ts";
   * const hub = new Hub(new MemoryBroker<string>());
   * await hub.publish("news", "one");
   * const after = await hub.startAfter({ first: true }, ["news"]); // 0
   * const s = hub.subscribe("you", {
   *   topics: ["news"],
   *   after: { epoch: hub.epoch, seq: after },
   *   started: true,
   * }); // reads "one", then live events
   * await s.readable.cancel();
   * ```
   */
  async startAfter(
    position: StartPosition,
    topics?: readonly string[],
  ): Promise<number> {
    const normalized = normalizeTopics(topics);
    const windows = this.#windows(...wants(normalized));
    // Every window holds all it has of its topics after this.
    const held = Math.max(...windows.map((window) => window.lost));
    const log = this.#broker.replay && this.#broker.first !== undefined
      ? this.#broker.first - 1
      : undefined;
    if ("first" in position) return Math.min(held, log ?? held);
    if ("last" in position) {
      // The newest `last` of the topics: a walk through the windows, once.
      const matches = topicMatcher(normalized);
      const seqs: number[] = [];
      for (const window of windows) {
        for (const event of heldIn(window)) {
          if (matches(event.topic)) seqs.push(event.seq);
        }
      }
      seqs.sort((a, b) => b - a);
      return seqs.length >= position.last ? seqs[position.last - 1] - 1 : held;
    }
    const { timeMs } = position;
    let since: number | undefined;
    for (const window of windows) {
      for (const event of heldIn(window)) {
        if (event.time < timeMs) continue;
        since = Math.min(since ?? Infinity, event.seq);
        break;
      }
    }
    // Events that recent may have left the window: the broker's log may
    // still hold them.
    const evicted = windows.some((window) =>
      window.lost > 0 &&
      (window.next(window.lost)?.time ?? Infinity) >= timeMs
    );
    if (evicted && log !== undefined && log < held && this.#broker.seqAt) {
      const seq = await this.#broker.seqAt(timeMs);
      if (seq !== undefined) return Math.min(Math.max(seq - 1, log), held);
    }
    if (since === undefined) return evicted ? held : this.#seq;
    return Math.max(since - 1, held);
  }

  /**
   * What the event stream holds now: the broker's log as its engine says,
   * or the hub's own windows (with the memory broker; bytes as `sizeOf`
   * weighs the events).
   */
  async state(): Promise<StreamState> {
    if (this.#broker.state) {
      return { epoch: this.epoch, ...await this.#broker.state() };
    }
    let firstSeq = 0;
    let firstTimeMs = 0;
    let lastTimeMs = 0;
    let events = 0;
    let bytes = 0;
    for (const window of this.#windows(true, true)) {
      for (const event of heldIn(window)) {
        if (firstSeq === 0 || event.seq < firstSeq) {
          firstSeq = event.seq;
          firstTimeMs = event.time;
        }
        lastTimeMs = Math.max(lastTimeMs, event.time);
        events++;
        bytes += this.#sizeOf(event.data);
      }
    }
    return {
      epoch: this.epoch,
      store: "memory",
      firstSeq,
      lastSeq: this.#seq,
      events,
      bytes,
      firstTimeMs,
      lastTimeMs,
    };
  }

  /**
   * Publishes `data` on `topic` through the broker; resolves to the event
   * once it was fanned out. Rejects with {@linkcode UnavailableError} once the
   * hub is closed.
   */
  publish(
    topic: string,
    data: T,
    options?: PublishOptions,
  ): Promise<BusEvent<T>> {
    if (this.#closed) {
      return Promise.reject(
        new UnavailableError(
          `Cannot publish on "${topic}": the server is shutting down`,
        ),
      );
    }
    return this.#broker.publish(topic, data, options).then((event) => {
      // A publish the broker folded into an earlier one is no new event.
      if (!event.duplicate) this.#stats.published++;
      return event;
    });
  }

  /**
   * Hands every idle subscription (reader waiting, nothing held) a heartbeat
   * carrying the current seq. Busy ones need none: they are receiving.
   */
  heartbeat(): void {
    // Reads from the broker's log that wait for a reader that does not ask
    // let their consumer go.
    if (this.#brokerReaders.size > 0) this.#reclaimIdleReplays();
    // An idle window lets old events go too.
    this.#log.expire(this.#now());
    this.#serverLog.expire(this.#now());
    const beat: Heartbeat = {
      kind: "heartbeat",
      seq: this.#seq,
      time: this.#now(),
    };
    for (const subscriber of this.#subscribers.values()) {
      subscriber.offerHeartbeat(beat);
    }
  }

  /**
   * A snapshot of the live subscriptions, oldest first, at most `limit` of
   * them; when `topic` is given, only those receiving it
   * ({@linkcode ALL_TOPICS}: those receiving every ordinary topic).
   */
  subscriptions(topic?: string, limit = Infinity): SubscriptionInfo[] {
    const infos: SubscriptionInfo[] = [];
    for (const info of this.listed(topic)) {
      if (infos.length >= limit) break;
      infos.push(info);
    }
    return infos;
  }

  /**
   * The live subscriptions with an id above `afterId`, oldest first, as
   * {@linkcode Hub.subscriptions} filters them, read lazily from an index
   * kept in id order: a page costs its own length, not a scan of every
   * subscription (patterns included: they are indexed by their tokens).
   * Read it to its end or leave it before the hub changes.
   */
  *listed(topic?: string, afterId = 0): Generator<SubscriptionInfo> {
    for (const subscriber of this.#subscribers.listed(topic, afterId)) {
      yield subscriber.info();
    }
  }

  /**
   * One page of this hub's subscriptions for a directory query: at most
   * `limit` after `after`, whether more follow, and the total; it costs its
   * own length, plus, for the total ({@linkcode Hub.count}), a read of the
   * subscribers whose patterns match `topic`.
   */
  page(query: DirectoryQuery): DirectoryPage<SubscriptionInfo> {
    const entries: SubscriptionInfo[] = [];
    let more = false;
    for (const info of this.listed(query.topic, query.after)) {
      if (entries.length === query.limit) {
        more = true;
        break;
      }
      entries.push(info);
    }
    return { entries, total: this.count(query.topic), more };
  }

  /**
   * How many live subscriptions {@linkcode Hub.subscriptions} would list
   * without a limit: O(1), plus a read of the subscribers whose patterns
   * match an ordinary `topic`.
   */
  count(topic?: string): number {
    return this.#subscribers.count(topic);
  }

  /**
   * Refuses new subscriptions and publishes, detaches from the broker, and
   * ends every stream normally once its reader has taken what it holds.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    for (const subscriber of [...this.#subscribers.values()]) {
      subscriber.end();
    }
  }

  /**
   * The replay windows a subscriber reads: of ordinary topics, of the
   * server's own, or both; their expired events evicted.
   */
  #windows(ordinary: boolean, own: boolean): EventWindow<T>[] {
    const now = this.#now();
    const windows: EventWindow<T>[] = [];
    if (ordinary) windows.push(this.#log);
    if (own) windows.push(this.#serverLog);
    for (const window of windows) window.expire(now);
    return windows;
  }

  /** Removes a subscriber; called once per subscriber. */
  #remove(subscriber: Subscriber<T>, reason: LeaveReason, error?: unknown) {
    this.#subscribers.delete(subscriber);
    this.#capacity?.give();
    subscriber.dispose?.();
    subscriber.dispose = undefined;
    subscriber.stopped(reason, error);
    if (reason === "slow-consumer") this.#stats.slowConsumerDisconnects++;
    const info = subscriber.info();
    this.#onLeave?.(info, reason);
    subscriber.left?.(reason, error);
    this.#announce({ action: "leave", subscription: info, reason });
  }

  #announce(change: PresenceChange): void {
    if (!this.#presence || this.#closed) return;
    this.#broker.publish(PRESENCE_TOPIC, this.#presence(change)).then(
      () => this.#stats.published++,
      () => {}, // a broker that cannot take presence must not fail the join
    );
  }

  #resumeFrom(
    after: Cursor,
    topics: readonly string[],
    holder: string,
    counted: boolean,
  ): {
    recovered: boolean;
    reason?: string;
    fromBroker?: number;
    slot?: () => void;
    start: number;
  } {
    const windows = this.#windows(...wants(topics));
    let fromBroker: number | undefined;
    let slot: (() => void) | undefined;
    let reason: string | undefined;
    let start = this.#seq; // live, when the cursor means nothing here
    const head = Math.max(this.#seq, this.#broker.head ?? 0);
    if (after.epoch !== this.epoch) {
      // Why, as far as the hub can tell: a cursor names its epoch only.
      reason = this.#broker.shared
        ? `cursor epoch ${
          quote(after.epoch)
        } is not the event stream's "${this.epoch}": it is from before the stream was recreated, or from another stream`
        : `cursor epoch ${
          quote(after.epoch)
        } is not the server's "${this.epoch}": it is from before the server's last start, or from another server`;
    } else if (!Number.isSafeInteger(after.seq) || after.seq < 0) {
      reason = `cursor seq ${after.seq} is not a valid position`;
    } else if (after.seq > head) {
      reason = `cursor seq ${after.seq} is ahead of the last event (${head})`;
    } else {
      // Every window holds all it has of its topics after this.
      const held = Math.max(...windows.map((window) => window.lost));
      const first = this.#broker.replay ? this.#broker.first : undefined;
      start = after.seq;
      if (held > after.seq && (first === undefined || first > after.seq + 1)) {
        // Older than anything held: what is gone is said, and the stream
        // starts with the oldest event still held, not live (the events
        // still held would be lost too).
        start = first === undefined ? held : Math.min(held, first - 1);
        reason =
          `events after seq ${after.seq} through ${start} are no longer held; the stream goes on from the oldest still held`;
      }
      if (held > start) {
        // Older than this hub's window, still in the broker's log: read
        // from there up to where the window takes over; each such read
        // holds a consumer and its buffer, so only so many at once (and so
        // many per peer); a slot whose reader has not asked for a while is
        // taken back first.
        let taken = this.#brokerReplaySlots.take(holder);
        if (taken.refused && this.#reclaimIdleReplays() > 0) {
          taken = this.#brokerReplaySlots.take(holder);
        }
        if (taken.refused) {
          throw new UnavailableError(
            `Cannot resume after seq ${after.seq} now: ${taken.refused} (resumes older than this instance's window read it); retry in a moment`,
          );
        }
        slot = taken.release;
        fromBroker = held;
      }
    }
    if (counted && reason) this.#stats.resumesMissed++;
    else if (counted) this.#stats.resumesRecovered++;
    return {
      recovered: reason === undefined,
      reason,
      fromBroker,
      slot,
      start,
    };
  }

  /**
   * Takes back the slots of reads from the broker's log whose reader has
   * not asked for longer than `brokerReplayIdleMs`: each becomes a gap for
   * its subscriber. Returns how many.
   */
  #reclaimIdleReplays(): number {
    const before = this.#now() - this.#brokerReplayIdleMs;
    let reclaimed = 0;
    for (const subscriber of [...this.#brokerReaders.keys()]) {
      const since = subscriber.brokerReplayIdleSince;
      if (since !== undefined && since < before) {
        subscriber.abandonBrokerReplay();
        reclaimed++;
      }
    }
    return reclaimed;
  }

  #fanOut(event: BusEvent<T>): void {
    if (event.seq !== this.#seq + 1) {
      if (event.seq <= this.#seq) return; // a shared log's repeat
      this.#skip(event.seq);
    }
    // The server's own events have a window of their own: joins and leaves
    // must not push other events out (churn evicted everyone's history).
    const own = event.topic.startsWith("$");
    (own ? this.#serverLog : this.#log).append(event, this.#now());
    this.#seq = event.seq;
    this.#stats.received++;
    const subscribers = this.#subscribers;
    const named = subscribers.named(event.topic);
    if (named) { for (const s of named) this.#offer(s, event); }
    if (own) return;
    for (const s of subscribers.everything) this.#offer(s, event);
    if (subscribers.patterns > 0) {
      // Only the patterns its tokens lead to; a subscriber met twice (two
      // of its patterns match, or it names the topic too) takes it once.
      subscribers.matching(event.topic.split("."), (matched) => {
        matched.forEach((s) => this.#offer(s, event));
      });
    }
  }

  /**
   * The broker skipped to `seq` (a shared log dropped what lay between before
   * this hub read it): the window restarts there, and every live subscriber
   * is told of the hole before the next event.
   */
  #skip(seq: number): void {
    const from = this.#seq + 1;
    this.#restart(seq - 1);
    for (const subscriber of this.#subscribers.values()) {
      subscriber.missed(from, seq - 1);
    }
  }

  /**
   * The broker's sequence was replaced (a new epoch): no cursor of the old
   * one means anything now, so the window restarts empty and every stream
   * ends, its subscriber told to come back (and then hear `recovered=false`).
   */
  #changed(change: BrokerChange): void {
    if (change.kind !== "reset") return;
    this.#restart(change.seq);
    for (const subscriber of [...this.#subscribers.values()]) {
      subscriber.end();
    }
  }

  #offer(subscriber: Subscriber<T>, event: BusEvent<T>): void {
    const outcome = subscriber.offer(event, this.#policy);
    if (outcome === "dropped") this.#stats.dropped++;
    else if (outcome === "overflow") {
      this.#overflow(subscriber, `fell ${this.#bufferSize} events behind`);
    }
  }

  /** Disconnects a slow subscriber (the `disconnect` policy). */
  #overflow(subscriber: Subscriber<T>, what: string): void {
    subscriber.leave(
      "slow-consumer",
      new SlowConsumerError(
        `Subscription ${subscriber.id} ("${subscriber.name}") ${what} and was disconnected; read faster, then resubscribe from your last cursor`,
      ),
    );
  }
}
