/**
 * One hub subscription: a bounded ring buffer feeding a pull-driven
 * `ReadableStream`, or, while resuming, a position in the replay windows (or
 * in the broker's log below them). The hub creates and drives it; nothing
 * else does. It asks its hub only what {@linkcode SubscriberHost} offers.
 *
 * @module
 */

import type { BusEvent } from "./broker.ts";
import { UnavailableError } from "../errors.ts";
import type { SlowConsumerPolicy } from "../defaults.ts";
import {
  ALL_TOPICS,
  type Gap,
  type Heartbeat,
  type LeaveReason,
  MAX_JOINED_ITEMS,
  type StreamEncoding,
  type SubscriptionInfo,
  type SubscriptionStart,
} from "./hub_items.ts";
import type { EventWindow } from "./replay_log.ts";
import { isPattern, TopicPattern } from "./topic_pattern.ts";

/** Whether `topics` receive ordinary topics, and the server's own. */
export function wants(topics: Iterable<string>): [boolean, boolean] {
  let ordinary = false;
  let own = false;
  for (const topic of topics) {
    if (topic.startsWith("$")) own = true;
    else ordinary = true; // a named topic or "*"
  }
  return [ordinary, own];
}

/**
 * Whether a topic is one that a subscription to `topics` (normalised:
 * names, patterns, `ALL_TOPICS`, `$presence`) receives.
 *
 * @example
 * ```ts
 * import { topicMatcher } from "./subscriber.ts";
 * const news = topicMatcher(["news.*"]);
 * news("news.sport"); // true
 * news("tick"); // false
 * ```
 */
export function topicMatcher(
  topics: readonly string[],
): (topic: string) => boolean {
  const everything = topics.includes(ALL_TOPICS);
  const named = new Set(topics);
  const patterns = topics.filter((t) => t !== ALL_TOPICS && isPattern(t))
    .map((t) => new TopicPattern(t));
  return (topic) =>
    named.has(topic) || (everything && !topic.startsWith("$")) ||
    patterns.some((p) => p.matches(topic));
}

/** The oldest event held in any of `windows` after `seq`. */
function next<T>(
  windows: readonly EventWindow<T>[],
  seq: number,
): BusEvent<T> | undefined {
  let first: BusEvent<T> | undefined;
  for (const window of windows) {
    const event = window.next(seq);
    if (event && (!first || event.seq < first.seq)) first = event;
  }
  return first;
}

/** What a subscriber asks of its hub, and all it asks. */
export interface SubscriberHost<T> {
  /** The slow-consumer policy. */
  readonly policy: SlowConsumerPolicy;
  /**
   * The replay windows to read: of ordinary topics, of the server's own
   * (`$`), or both; their expired events evicted.
   */
  windows(ordinary: boolean, own: boolean): EventWindow<T>[];
  /** Events after `after` through `through`, from the broker's log. */
  brokerReplay(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<T>>;
  /** A read from the broker's log ended: its slot is released. */
  brokerReplayEnded(subscriber: Subscriber<T>): void;
  /** The time, for how long a read from the broker's log waits for its reader. */
  now(): number;
  /** Counts an event handed to a reader. */
  delivered(): void;
  /** Reports a gap handed to a reader. */
  gapped(subscriber: Subscriber<T>, gap: Gap): void;
  /** Disconnects a slow subscriber (the `disconnect` policy): `what` it did. */
  overflow(subscriber: Subscriber<T>, what: string): void;
  /** Removes a subscriber that left; called once per subscriber. */
  remove(subscriber: Subscriber<T>, reason: LeaveReason, error?: unknown): void;
}

/** What became of an event offered to a subscriber. */
export type Offer = "queued" | "dropped" | "overflow" | "skipped";

/** A subscriber's read from the broker's log, below the hub's window. */
interface BrokerReplay<T> {
  /** Read through this seq (where the window began). */
  through: number;
  /**
   * Since when it has waited for its reader (nothing asked since the last
   * item it handed over, or since it started); undefined while a read is
   * asked for.
   */
  idleSince?: number;
  /** Stops the broker's read. */
  stop: AbortController;
  /** The read, once started. */
  events?: AsyncIterator<BusEvent<T>>;
}

/**
 * One subscription's state: a ring buffer feeding a pull-driven stream, or,
 * while resuming, a position in the replay window.
 *
 * @internal The hub's: made and driven by the hub only.
 */
export class Subscriber<T> {
  readonly id: number;
  readonly name: string;
  readonly topics: readonly string[];
  readonly since: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Its items, or what its encoding makes of them. */
  readonly readable: ReadableStream<unknown>;
  controller!: ReadableStreamDefaultController<unknown>;
  dispose?: () => void;
  /** Its own leave callback (`SubscribeOptions.onLeave`). */
  left?: (reason: LeaveReason, error?: unknown) => void;
  delivered = 0;
  dropped = 0;
  #host: SubscriberHost<T>;
  #matches: (topic: string) => boolean;
  /** Whether its topics take ordinary topics, and the server's own ({@linkcode wants}). */
  #ordinary: boolean;
  #own: boolean;
  /** Replaying: the last seq read from the replay window; live when undefined. */
  #replayed?: number;
  /** The hub closed: end the stream once the buffer is empty. */
  #ending = false;
  /**
   * Its reader cancelled the stream, which is then closed: nothing more
   * may be enqueued. A response body is cancelled from inside `enqueue()`
   * when Deno finds its peer gone as it writes the chunk.
   */
  #cancelled = false;
  /**
   * The buffer, made on the first event it has to hold: a subscriber that
   * is always waiting (or idle) never needs one.
   */
  #ring?: (BusEvent<T> | undefined)[];
  #capacity: number;
  #head = 0;
  #count = 0;
  /**
   * Events up to here are not to be offered: before its start (maybe
   * ahead), or offered already (an event can reach it through several of
   * its topics, and is taken once).
   */
  #after: number;
  /**
   * Resuming below the hub's window: read from the broker's log through
   * `through` first (then from the window, as any replay).
   */
  #fromBroker?: BrokerReplay<T>;
  /** Events not delivered and not yet reported: [from, to], how many, why. */
  #gap?: { from: number; to: number; missed: number; reason: Gap["reason"] };
  /** A read is pending and nothing is held: hand the next item over. */
  #waiting = false;
  #left = false;
  /** What the stream carries in place of each item, when a transport writes it as it comes. */
  #encoding?: StreamEncoding<T, unknown>;
  /** Where it started (for the encoding's last chunk). */
  #start?: SubscriptionStart;

  constructor(host: SubscriberHost<T>, init: {
    id: number;
    name: string;
    topics: readonly string[];
    since: number;
    capacity: number;
    labels: Readonly<Record<string, string>>;
    replayFrom?: number;
    after: number;
    fromBrokerThrough?: number;
    encoding?: StreamEncoding<T, unknown>;
  }) {
    this.#host = host;
    this.#encoding = init.encoding;
    this.id = init.id;
    this.name = init.name;
    this.topics = init.topics;
    this.since = init.since;
    this.labels = init.labels;
    this.#matches = topicMatcher(init.topics);
    [this.#ordinary, this.#own] = wants(init.topics);
    this.#replayed = init.replayFrom;
    this.#after = init.after;
    if (init.fromBrokerThrough !== undefined) {
      this.#fromBroker = {
        through: init.fromBrokerThrough,
        idleSince: host.now(),
        stop: new AbortController(),
      };
    }
    this.#capacity = init.capacity;
    this.readable = new ReadableStream<unknown>({
      start: (controller) => {
        this.controller = controller;
      },
      pull: () => this.#pull(),
      cancel: () => {
        this.#cancelled = true;
        this.leave("cancelled");
      },
    }, { highWaterMark: 0 });
  }

  /**
   * The subscription is made: with an encoding, its first chunk is queued
   * (the stream's only chunk queued ahead of a read).
   */
  opened(start: SubscriptionStart): void {
    if (!this.#encoding) return;
    this.#start = start;
    this.controller.enqueue(this.#encoding.first(start));
  }

  /**
   * Ends the stream of a subscriber removed by an abort or as a slow
   * consumer: with the encoding's last chunk for `error`, then closed; or,
   * when there is no encoding or it has no last chunk for that error,
   * errored with it.
   */
  stopped(reason: LeaveReason, error: unknown): void {
    if (reason === "cancelled" || reason === "closed") return;
    if (this.#cancelled) return;
    const last = this.#encoding?.last(this.#start!, error);
    if (last === undefined) return this.controller.error(error);
    if (!this.#cancelled) this.controller.enqueue(last);
    if (!this.#cancelled) this.controller.close();
  }

  /** Whether its filter takes `topic` (what it replays; the hub's index does the fan-out). */
  matches(topic: string): boolean {
    return this.#matches(topic);
  }

  offer(event: BusEvent<T>, policy: SlowConsumerPolicy): Offer {
    // Replaying subscribers read the replay window, which holds this event.
    if (this.#replayed !== undefined || this.#ending) return "skipped";
    // Waiting for its cursor, or met already through another of its topics.
    if (event.seq <= this.#after) return "skipped";
    this.#after = event.seq;
    if (this.#waiting) {
      this.#waiting = false;
      this.#deliver(event);
      return "queued";
    }
    const capacity = this.#capacity;
    const ring = this.#ring ??= new Array(capacity);
    let outcome: Offer = "queued";
    if (this.#count === capacity) {
      if (policy === "disconnect") return "overflow";
      const oldest = ring[this.#head]!;
      ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % capacity;
      this.#count--;
      this.dropped++;
      if (this.#gap) {
        this.#gap.to = oldest.seq;
        this.#gap.missed++;
      } else {
        this.#gap = {
          from: oldest.seq,
          to: oldest.seq,
          missed: 1,
          reason: "slow-consumer",
        };
      }
      outcome = "dropped";
    }
    ring[(this.#head + this.#count) % capacity] = event;
    this.#count++;
    return outcome;
  }

  offerHeartbeat(beat: Heartbeat): void {
    if (!this.#waiting || this.#ending) return;
    this.#waiting = false;
    // A subscriber waiting for its cursor must not be sent back before it.
    const item = beat.seq < this.#after ? { ...beat, seq: this.#after } : beat;
    this.controller.enqueue(this.#encoding ? this.#encoding.item(item) : item);
  }

  /** Seqs `from` to `to` will never come: report them before what follows. */
  missed(from: number, to: number): void {
    if (this.#ending || to <= this.#after) return;
    from = Math.max(from, this.#after + 1);
    if (this.#replayed !== undefined) {
      // The windows it was replaying are gone: so is what it had not read.
      from = Math.min(from, this.#replayed + 1);
      this.#replayed = to;
      this.#stopBrokerReplay();
    }
    if (this.#gap) {
      this.#gap.to = to;
      this.#gap.reason = "expired";
    } else this.#gap = { from, to, missed: 0, reason: "expired" };
    if (this.#waiting) {
      this.#waiting = false;
      this.#pull();
    }
  }

  end(): void {
    this.#ending = true;
    this.#stopBrokerReplay();
    this.#replayed = undefined; // the client resumes from its cursor later
    if (this.#waiting) this.#finish();
  }

  leave(reason: LeaveReason, error?: unknown): void {
    if (this.#left) return;
    this.#left = true;
    this.#waiting = false;
    this.#stopBrokerReplay();
    this.#ring = undefined;
    this.#count = 0;
    this.#host.remove(this, reason, error);
  }

  info(): SubscriptionInfo {
    return {
      id: this.id,
      name: this.name,
      topics: this.topics,
      since: this.since,
      delivered: this.delivered,
      dropped: this.dropped,
      buffered: this.#count,
      labels: this.labels,
    };
  }

  #deliver(event: BusEvent<T>): void {
    this.controller.enqueue(this.#handed(event));
  }

  /** What the stream carries for `event` (counted as delivered, or its gap said). */
  #handed(event: BusEvent<T>): unknown {
    if (event.rejected !== undefined) {
      // Refused as read from a shared log: said, never handed over (it may
      // be over what this stream can carry).
      const gap: Gap = {
        kind: "gap",
        from: event.seq,
        to: event.seq,
        missed: 1,
        reason: "rejected",
      };
      this.#host.gapped(this, gap);
      return this.#encoding ? this.#encoding.item(gap) : gap;
    }
    this.delivered++;
    this.#host.delivered();
    return this.#encoding ? this.#encoding.item(event) : event;
  }

  /** The oldest event held, taken out of the ring. */
  #takeHeld(): BusEvent<T> {
    const ring = this.#ring!;
    const event = ring[this.#head]!;
    ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#capacity;
    this.#count--;
    return event;
  }

  /**
   * Hands over the events held (up to {@linkcode MAX_JOINED_ITEMS}) as one
   * chunk, `join`ed: those before a pending gap only (it goes first after
   * them), and a rejected one as its gap, in its place.
   */
  #deliverHeld(join: (chunks: unknown[]) => unknown): void {
    const chunks: unknown[] = [];
    const before = this.#gap?.from ?? Infinity;
    while (
      this.#count > 0 && chunks.length < MAX_JOINED_ITEMS &&
      this.#heldSeq() < before
    ) chunks.push(this.#handed(this.#takeHeld()));
    this.controller.enqueue(chunks.length === 1 ? chunks[0] : join(chunks));
  }

  #pull(): void | Promise<void> {
    // A gap goes before the events after it: dropped ones are older than all
    // held, a broker's skip newer (held events before it go first).
    if (this.#gap && !(this.#count > 0 && this.#heldSeq() < this.#gap.from)) {
      const { from, to, missed, reason } = this.#gap;
      this.#gap = undefined;
      this.#handOver({ kind: "gap", from, to, missed, reason });
    } else if (this.#fromBroker) {
      return this.#replayFromBroker();
    } else if (this.#replayed !== undefined) {
      this.#replay();
    } else if (this.#count > 1 && this.#encoding?.join) {
      this.#deliverHeld(this.#encoding.join);
    } else if (this.#count > 0) {
      this.#deliver(this.#takeHeld());
    } else if (this.#ending) {
      this.#finish();
    } else {
      this.#waiting = true;
    }
  }

  /**
   * Hands over the next event of this subscription's topics from the
   * broker's log (a gap first where the log no longer held some), or, past
   * `through`, goes on from the hub's window.
   */
  async #replayFromBroker(): Promise<void> {
    const replay = this.#fromBroker!;
    replay.idleSince = undefined;
    replay.events ??= this.#host.brokerReplay(
      this.#replayed!,
      replay.through,
      replay.stop.signal,
    )[Symbol.asyncIterator]();
    for (;;) {
      let result: IteratorResult<BusEvent<T>>;
      try {
        result = await replay.events.next();
      } catch (error) {
        if (this.#fromBroker !== replay) return this.#pullOn();
        this.leave(
          "aborted",
          new UnavailableError(
            `Could not read the events after seq ${this.#replayed} from the event stream (${
              (error as Error).message
            }); resubscribe from your cursor`,
            { cause: error },
          ),
        );
        return;
      }
      if (this.#fromBroker !== replay) return this.#pullOn(); // stopped meanwhile
      const event = result.value;
      if (result.done || event.seq > replay.through) break;
      if (event.seq <= this.#replayed!) continue;
      if (event.seq > this.#replayed! + 1) {
        this.#handOver({
          kind: "gap",
          from: this.#replayed! + 1,
          to: event.seq - 1,
          missed: 0,
          reason: "expired",
        });
      }
      this.#replayed = event.seq;
      if (this.matches(event.topic)) {
        this.#deliver(event);
        replay.idleSince = this.#host.now(); // till the reader asks again
        if (event.seq >= replay.through) this.#brokerReplayDone(replay);
        return;
      }
      if (event.seq >= replay.through) break;
    }
    this.#brokerReplayDone(replay);
    return this.#pull();
  }

  /**
   * The broker's log was read through where the window began; the window
   * may have moved on meanwhile: then read on from the log, else hand over
   * to the window.
   */
  #brokerReplayDone(replay: BrokerReplay<T>): void {
    const windows = this.#host.windows(this.#ordinary, this.#own);
    const lost = Math.max(...windows.map((window) => window.lost));
    if (lost > this.#replayed! && replay.through < lost) {
      void replay.events?.return?.(undefined)?.catch?.(() => {});
      replay.events = undefined;
      replay.through = lost;
    } else this.#stopBrokerReplay();
  }

  /**
   * Goes on after a broker replay stopped under a pending read (the hub
   * closed, or skipped past it): that read still waits for an item.
   */
  #pullOn(): void | Promise<void> {
    if (!this.#left) return this.#pull();
  }

  /**
   * Since when its read from the broker's log has waited for its reader
   * (undefined: none, or a read is asked for).
   */
  get brokerReplayIdleSince(): number | undefined {
    return this.#fromBroker?.idleSince;
  }

  /**
   * Gives up its read from the broker's log, whose reader has not asked for
   * a while and whose slot another resume wants: what it had not read of
   * the log becomes a `slow-consumer` gap, then it goes on from the hub's
   * window (a gap again where that has moved on).
   */
  abandonBrokerReplay(): void {
    const replay = this.#fromBroker;
    if (!replay || this.#left) return;
    const from = this.#replayed! + 1;
    this.#stopBrokerReplay();
    if (replay.through < from) return;
    if (this.#gap) this.#gap.to = Math.max(this.#gap.to, replay.through);
    else {
      this.#gap = {
        from,
        to: replay.through,
        missed: 0,
        reason: "slow-consumer",
      };
    }
    this.#replayed = replay.through;
    if (this.#waiting) {
      this.#waiting = false;
      this.#pull();
    }
  }

  #stopBrokerReplay(): void {
    const replay = this.#fromBroker;
    if (!replay) return;
    this.#fromBroker = undefined;
    this.#host.brokerReplayEnded(this);
    replay.stop.abort();
    void replay.events?.return?.(undefined)?.catch?.(() => {});
  }

  #heldSeq(): number {
    return this.#ring![this.#head]!.seq;
  }

  /** Hands over the next held event after `#replayed`, or goes live. */
  #replay(): void {
    const windows = this.#host.windows(this.#ordinary, this.#own);
    const seq = this.#replayed!;
    const lost = Math.max(...windows.map((window) => window.lost));
    if (seq < lost) {
      // A window moved past this reader while it was replaying.
      if (this.#host.policy === "disconnect") {
        this.#host.overflow(this, "fell behind the replay window");
        return;
      }
      const gap: Gap = {
        kind: "gap",
        from: seq + 1,
        to: lost,
        missed: 0,
        reason: "expired",
      };
      this.#replayed = lost;
      this.#handOver(gap);
      return;
    }
    for (
      let event = next(windows, seq);
      event;
      event = next(windows, event.seq)
    ) {
      if (this.matches(event.topic)) {
        this.#replayed = event.seq;
        this.#deliver(event);
        return;
      }
    }
    this.#replayed = undefined; // caught up: live from here
    this.#pull();
  }

  #handOver(gap: Gap): void {
    this.controller.enqueue(this.#encoding ? this.#encoding.item(gap) : gap);
    this.#host.gapped(this, gap);
  }

  #finish(): void {
    this.#waiting = false;
    const last = this.#encoding?.last(this.#start!);
    if (last !== undefined && !this.#cancelled) this.controller.enqueue(last);
    // Handing over the last chunk may have cancelled the stream: it left.
    if (this.#cancelled) return;
    this.controller.close();
    this.leave("closed");
  }
}
