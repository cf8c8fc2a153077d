/**
 * What a hub subscription's stream carries and reports (events, gaps,
 * heartbeats), where it stands (cursors), why it ends, and the snapshot a
 * listing shows: the words the hub, its subscribers and their readers share.
 *
 * @module
 */

import type { BusEvent } from "./broker.ts";

/** The topic filter entry meaning "every topic not starting with `$`". */
export const ALL_TOPICS = "*";

/** The topic of join and leave events. */
export const PRESENCE_TOPIC = "$presence";

/** The topic of the server clock's ticks (`Publish` refuses it). */
export const TICK_TOPIC = "tick";

/**
 * Where a new subscription starts among the events still held, rather than
 * live: every one (`first`), the last `last` of its topics, or those
 * published at or after `timeMs` (ms since the Unix epoch).
 */
export type StartPosition =
  | { readonly first: true }
  | { readonly last: number }
  | { readonly timeMs: number };

/** A position in the event sequence. */
export interface Cursor {
  /** Names the sequence (changes when the server restarts). */
  readonly epoch: string;
  /** The last event seen; 0 before the first. */
  readonly seq: number;
}

/**
 * Events of the subscription's topics with seq in `[from, to]` were not
 * delivered: dropped from a full buffer (`"slow-consumer"`), gone from the
 * replay window before a resuming subscriber read them (`"expired"`), or
 * refused as read from a shared log (`"rejected"`: one event over this
 * instance's limits, or that `Publish` would have refused; see
 * `BusEvent.rejected`).
 */
export interface Gap {
  /** Discriminates gaps from the other stream items. */
  readonly kind: "gap";
  /** First sequence number of the missed range. */
  readonly from: number;
  /** Last sequence number of the missed range. */
  readonly to: number;
  /** How many events of the subscription's topics were missed; 0 if unknown (`"expired"`). */
  readonly missed: number;
  /** Why they were missed. */
  readonly reason: "slow-consumer" | "expired" | "rejected";
}

/**
 * Sent to idle subscriptions by {@linkcode Hub.heartbeat}: every event of the
 * subscription's topics up to `seq` was delivered (or reported as a gap).
 */
export interface Heartbeat {
  /** Discriminates heartbeats from the other stream items. */
  readonly kind: "heartbeat";
  /** A safe resume point. */
  readonly seq: number;
  /** When it was sent, in milliseconds since the Unix epoch. */
  readonly time: number;
}

/** What a subscription's stream carries. */
export type HubItem<T> = BusEvent<T> | Gap | Heartbeat;

/**
 * Why the hub ended a stream that started at `start` (it read what it
 * held), its sequence now being `epoch`'s: the server is draining, or the
 * event stream was replaced (no cursor of the old epoch can be resumed).
 * Worded for people, for every transport's goodbye.
 *
 * @example
 * ```ts
 * import { endedReason } from "./hub_items.ts";
 * endedReason({ epoch: "e1", seq: 4 }, "e1"); // "The server is shutting down; resume from your last cursor"
 * ```
 */
export function endedReason(start: Cursor, epoch: string): string {
  return epoch === start.epoch
    ? "The server is shutting down; resume from your last cursor"
    : `The event stream was recreated (epoch ${epoch}); resubscribe and reload your state: events of epoch ${start.epoch} are gone`;
}

/** Where a new subscription stands, as `Hub.subscribe` made it. */
export interface SubscriptionStart {
  /** Unique within the hub. */
  readonly id: number;
  /** The name the subscriber gave. */
  readonly name: string;
  /** Where the stream starts: events after this cursor follow. */
  readonly cursor: Cursor;
  /** A resume was asked for and nothing after its cursor is missing. */
  readonly recovered: boolean;
  /** Why a resume was not recovered (undefined when it was, or was not asked). */
  readonly reason?: string;
  /**
   * The last event published when it started: events up to it are
   * replayed, later ones live.
   */
  readonly head: Cursor;
}

/**
 * How a subscription's stream carries its items when a transport writes
 * them as they come, the stream then being a response body itself (one
 * stream from the hub to the wire, not two): each item in place, a first
 * chunk, and a last one where the hub ends the stream. Events and
 * heartbeats are the same objects for every subscriber: `item` should look
 * them up encoded once for all (by object), not encode them per subscriber.
 *
 * @example
 * ```ts
 * import type { StreamEncoding } from "./hub_items.ts";
 * const lines: StreamEncoding<string, string> = {
 *   first: (start) => `from ${start.cursor.seq}\n`,
 *   item: (item) => item.kind === "event" ? `${item.data}\n` : "",
 *   last: (_start, error) => error ? "too slow\n" : "bye\n",
 * };
 * ```
 */
export interface StreamEncoding<T, U> {
  /** The stream's first chunk, once the subscription is made. */
  first(start: SubscriptionStart): U;
  /** An event, a gap or a heartbeat, as the stream carries it. */
  item(item: HubItem<T>): U;
  /**
   * The stream's last chunk where the hub ends it: after what it held (the
   * hub closed, or its sequence was replaced: `error` undefined), or at once
   * when the subscriber is removed, as too slow (a `SlowConsumerError`) or
   * by an abort (the signal's reason, or the hub's own error when it cannot
   * go on). Undefined for an error that has no last chunk: the stream then
   * errors with it (a cut).
   */
  last(start: SubscriptionStart, error?: unknown): U | undefined;
  /**
   * Several items' chunks as one, when the stream's wire takes them so (a
   * byte stream). Given, a read of a subscriber that is behind takes every
   * event it holds (up to {@linkcode MAX_JOINED_ITEMS}) in one chunk: a
   * transport that writes each chunk as a frame of its own (HTTP/2) then
   * writes one for them all, where one per event would leave it further
   * behind.
   */
  join?(chunks: U[]): U;
}

/** The most held events a read takes in one chunk ({@linkcode StreamEncoding.join}). */
export const MAX_JOINED_ITEMS = 64;

/** Why a subscription left the hub. */
export type LeaveReason =
  /** The reader cancelled its stream. */
  | "cancelled"
  /** The client cancelled its call (Ctrl-C, a count reached, a closed pipe). */
  | "client-cancelled"
  /** The client's connection closed under the call (killed, network gone). */
  | "disconnected"
  /** The call's deadline passed. */
  | "deadline"
  /** The subscriber's signal aborted otherwise, or its stream failed. */
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
  /** Its topic filter, normalised (`["*"]` for every ordinary topic). */
  readonly topics: readonly string[];
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

/**
 * Every {@linkcode LeaveReason}: for metrics shown before the first leave,
 * and the reasons a `$presence` leave read from a shared stream may give.
 */
export const LEAVE_REASONS: readonly LeaveReason[] = [
  "cancelled",
  "client-cancelled",
  "disconnected",
  "deadline",
  "aborted",
  "slow-consumer",
  "closed",
];
