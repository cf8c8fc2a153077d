/**
 * The hub (the seed's "CustomerCenter"): fans published events out to its
 * subscriptions, one `ReadableStream` each. It knows web streams and
 * `AbortSignal`, nothing of gRPC.
 *
 * @module
 */

import {
  CapacityError,
  SlowConsumerError,
  UnavailableError,
} from "./errors.ts";

/** What the hub does with a subscription whose buffer is full. */
export type SlowConsumerPolicy = "drop-oldest" | "disconnect";

/** Every {@linkcode SlowConsumerPolicy}, for validation and help text. */
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = [
  "drop-oldest",
  "disconnect",
];

/** Default number of events a subscription may hold unread. */
export const DEFAULT_BUFFER_SIZE = 128;

/** One published event as subscribers read it. Shared, never copied. */
export interface HubEvent<T> {
  /** Position in the hub's sequence: 1, 2, 3… in publish order. */
  readonly seq: number;
  /** When it was published, in milliseconds since the Unix epoch. */
  readonly time: number;
  /** What was published. */
  readonly data: T;
}

/** Why a subscription left the hub. */
export type LeaveReason =
  /** The reader cancelled its stream. */
  | "cancelled"
  /** The subscriber's signal aborted (e.g. the client went away). */
  | "aborted"
  /** Its buffer overflowed under the `disconnect` policy. */
  | "slow-consumer"
  /** The hub closed and the subscriber read everything it held. */
  | "closed";

/** A snapshot of one subscription, for presence, logs and tests. */
export interface SubscriptionInfo {
  /** Unique within the hub; two subscribers with one name differ here. */
  readonly id: number;
  /** The name the subscriber gave. */
  readonly name: string;
  /** When it joined, in milliseconds since the Unix epoch. */
  readonly since: number;
  /** Events the reader has taken so far. */
  readonly delivered: number;
  /** Events dropped for it under the `drop-oldest` policy. */
  readonly dropped: number;
  /** Events waiting in its buffer now. */
  readonly buffered: number;
  /** What the subscriber was labelled with (e.g. its peer), for logs. */
  readonly labels: Readonly<Record<string, string>>;
}

/** A live subscription, as returned by {@linkcode Hub.subscribe}. */
export interface Subscription<T> {
  /** Unique within the hub. */
  readonly id: number;
  /** The name the subscriber gave. */
  readonly name: string;
  /** The subscriber's events, in publish order. */
  readonly readable: ReadableStream<HubEvent<T>>;
}

/** Options of {@linkcode Hub}. */
export interface HubOptions {
  /** Events a subscription may hold unread. Default {@linkcode DEFAULT_BUFFER_SIZE}. */
  bufferSize?: number;
  /** What to do when that buffer is full. Default `"drop-oldest"`. */
  policy?: SlowConsumerPolicy;
  /** Most live subscriptions at once. Default: no limit. */
  maxSubscribers?: number;
  /** Time source for event and join times. Default `Date.now`. */
  now?: () => number;
  /** Called when a subscription joins. */
  onJoin?: (info: SubscriptionInfo) => void;
  /** Called once when a subscription leaves, whatever the path. */
  onLeave?: (info: SubscriptionInfo, reason: LeaveReason) => void;
}

/** Options of {@linkcode Hub.subscribe}. */
export interface SubscribeOptions {
  /** Aborting it removes the subscription at once and errors its stream. */
  signal?: AbortSignal;
  /** Opaque labels kept with the subscription (e.g. `{ peer }`). */
  labels?: Record<string, string>;
}

/**
 * Fans events out to subscriptions.
 *
 * Contract:
 * - **Ordering.** Each subscription reads events in publish order, each at
 *   most once; `seq` increases by one per publish.
 * - **Identity.** A subscription is its `id`, not its name: two subscribers
 *   with the same name both receive, and one leaving leaves the other alone.
 * - **Buffering.** Events a subscriber has not read yet wait in its own ring
 *   buffer of `bufferSize` events (the stream itself queues nothing: its high
 *   water mark is 0). When the buffer is full, `drop-oldest` discards the
 *   oldest event and counts it in `dropped`; `disconnect` removes the
 *   subscription and errors its stream with {@linkcode SlowConsumerError}.
 *   Memory per subscription is therefore bounded whatever the reader does.
 * - **Leaving.** Cancelling the stream or aborting the signal removes the
 *   subscription at once: nothing is buffered for it afterwards, `size`
 *   counts it no more, and `onLeave` is called exactly once.
 * - **Closing.** {@linkcode Hub.close} refuses new subscriptions; each open
 *   stream ends normally once its reader has taken what it held.
 *
 * @example
 * ```ts
 * import { Hub } from "./hub.ts";
 * const hub = new Hub<string>();
 * const { readable } = hub.subscribe("you");
 * hub.publish("tick");
 * const reader = readable.getReader();
 * (await reader.read()).value?.data; // "tick"
 * hub.close();
 * ```
 */
export class Hub<T> {
  #subscribers = new Map<number, Subscriber<T>>();
  #bufferSize: number;
  #policy: SlowConsumerPolicy;
  #maxSubscribers: number;
  #now: () => number;
  #onJoin?: (info: SubscriptionInfo) => void;
  #onLeave?: (info: SubscriptionInfo, reason: LeaveReason) => void;
  #nextId = 1;
  #seq = 0;
  #dropped = 0;
  #closed = false;

  /** Creates an empty, open hub. */
  constructor(options: HubOptions = {}) {
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(
        `Cannot create hub: buffer size must be a positive integer, got ${bufferSize}`,
      );
    }
    this.#bufferSize = bufferSize;
    this.#policy = options.policy ?? "drop-oldest";
    this.#maxSubscribers = options.maxSubscribers ?? Infinity;
    this.#now = options.now ?? Date.now;
    this.#onJoin = options.onJoin;
    this.#onLeave = options.onLeave;
  }

  /** Number of live subscriptions, exact at every moment. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** Sequence number of the last published event (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /** Events dropped under `drop-oldest`, over all subscriptions ever. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Whether {@linkcode Hub.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds a subscription named `name` and returns its stream of events
   * published from now on. Throws {@linkcode UnavailableError} once the hub is
   * closed, {@linkcode CapacityError} when it holds `maxSubscribers`
   * already, and the signal's reason if it has already aborted.
   */
  subscribe(name: string, options: SubscribeOptions = {}): Subscription<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#closed) {
      throw new UnavailableError(
        `Cannot subscribe "${name}": the hub is closed`,
      );
    }
    if (this.#subscribers.size >= this.#maxSubscribers) {
      throw new CapacityError(
        `Cannot subscribe "${name}": the server is at its limit of ${this.#maxSubscribers} subscribers; retry later`,
      );
    }
    const subscriber = new Subscriber<T>(
      this.#nextId++,
      name,
      this.#now(),
      this.#bufferSize,
      (reason, error) => this.#leave(subscriber, reason, error),
    );
    subscriber.labels = options.labels ?? {};
    this.#subscribers.set(subscriber.id, subscriber);
    if (signal) {
      const onAbort = () => subscriber.leave("aborted", signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      subscriber.dispose = () => signal.removeEventListener("abort", onAbort);
    }
    this.#onJoin?.(subscriber.info());
    return {
      id: subscriber.id,
      name,
      readable: subscriber.readable,
    };
  }

  /**
   * Publishes `data` to every live subscription and returns the event. Under
   * `disconnect`, subscriptions whose buffer is full are removed.
   */
  publish(data: T): HubEvent<T> {
    const event: HubEvent<T> = { seq: ++this.#seq, time: this.#now(), data };
    for (const subscriber of this.#subscribers.values()) {
      if (subscriber.ending) continue;
      const outcome = subscriber.offer(event, this.#policy);
      if (outcome === "dropped") this.#dropped++;
      else if (outcome === "overflow") {
        subscriber.leave(
          "slow-consumer",
          new SlowConsumerError(
            `Subscription ${subscriber.id} ("${subscriber.name}") fell ${this.#bufferSize} events behind and was disconnected`,
          ),
        );
      }
    }
    return event;
  }

  /** A snapshot of every live subscription, oldest first. */
  subscriptions(): SubscriptionInfo[] {
    return [...this.#subscribers.values()].map((s) => s.info());
  }

  /**
   * Refuses new subscriptions and ends every stream normally once its reader
   * has taken what it holds. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const subscriber of [...this.#subscribers.values()]) {
      subscriber.end();
    }
  }

  #leave(subscriber: Subscriber<T>, reason: LeaveReason, error?: unknown) {
    this.#subscribers.delete(subscriber.id);
    subscriber.dispose?.();
    subscriber.dispose = undefined;
    if (reason === "aborted" || reason === "slow-consumer") {
      subscriber.controller.error(error);
    }
    this.#onLeave?.(subscriber.info(), reason);
  }
}

type Offer = "queued" | "dropped" | "overflow";

/** One subscription's state: a ring buffer feeding a pull-driven stream. */
class Subscriber<T> {
  readonly id: number;
  readonly name: string;
  readonly since: number;
  readonly readable: ReadableStream<HubEvent<T>>;
  controller!: ReadableStreamDefaultController<HubEvent<T>>;
  dispose?: () => void;
  labels: Readonly<Record<string, string>> = {};
  delivered = 0;
  dropped = 0;
  /** The hub closed: end the stream once the buffer is empty. */
  ending = false;
  #ring: (HubEvent<T> | undefined)[];
  #head = 0;
  #count = 0;
  /** A read is pending and the buffer is empty: hand the next event over. */
  #waiting = false;
  #left = false;
  #onLeave: (reason: LeaveReason, error?: unknown) => void;

  constructor(
    id: number,
    name: string,
    since: number,
    capacity: number,
    onLeave: (reason: LeaveReason, error?: unknown) => void,
  ) {
    this.id = id;
    this.name = name;
    this.since = since;
    this.#ring = new Array(capacity);
    this.#onLeave = onLeave;
    this.readable = new ReadableStream<HubEvent<T>>({
      start: (controller) => {
        this.controller = controller;
      },
      pull: () => this.#pull(),
      cancel: () => this.leave("cancelled"),
    }, { highWaterMark: 0 });
  }

  offer(event: HubEvent<T>, policy: SlowConsumerPolicy): Offer {
    if (this.#waiting) {
      this.#waiting = false;
      this.delivered++;
      this.controller.enqueue(event);
      return "queued";
    }
    const capacity = this.#ring.length;
    let outcome: Offer = "queued";
    if (this.#count === capacity) {
      if (policy === "disconnect") return "overflow";
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % capacity;
      this.#count--;
      this.dropped++;
      outcome = "dropped";
    }
    this.#ring[(this.#head + this.#count) % capacity] = event;
    this.#count++;
    return outcome;
  }

  end(): void {
    this.ending = true;
    if (this.#waiting) this.#finish();
  }

  leave(reason: LeaveReason, error?: unknown): void {
    if (this.#left) return;
    this.#left = true;
    this.#waiting = false;
    this.#ring.fill(undefined);
    this.#count = 0;
    this.#onLeave(reason, error);
  }

  info(): SubscriptionInfo {
    return {
      id: this.id,
      name: this.name,
      since: this.since,
      delivered: this.delivered,
      dropped: this.dropped,
      buffered: this.#count,
      labels: this.labels,
    };
  }

  #pull(): void {
    if (this.#count > 0) {
      const event = this.#ring[this.#head]!;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#ring.length;
      this.#count--;
      this.delivered++;
      this.controller.enqueue(event);
    } else if (this.ending) {
      this.#finish();
    } else {
      this.#waiting = true;
    }
  }

  #finish(): void {
    this.#waiting = false;
    this.controller.close();
    this.leave("closed");
  }
}
