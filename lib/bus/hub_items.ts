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

/** Every {@linkcode LeaveReason}, for metrics shown before the first leave. */
export const LEAVE_REASONS: readonly LeaveReason[] = [
  "cancelled",
  "aborted",
  "slow-consumer",
  "closed",
];

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
