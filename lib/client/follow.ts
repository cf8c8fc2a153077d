/**
 * A subscription that survives the network: it resubscribes after
 * `UNAVAILABLE` or `RESOURCE_EXHAUSTED`, after `UNAUTHENTICATED` a bounded
 * number of times in a row (a token being rotated), after a Goodbye that advises it, when
 * the server falls silent for longer than its heartbeat promises, and when a
 * subscription gets no answer at all, with capped exponential backoff and
 * full jitter (never shorter than a Goodbye's advice); it resumes from the
 * last cursor and never yields an event twice. Given several servers of one
 * shared stream, it moves to the next at each reconnect. Whether each (re)subscription recovered everything, and
 * every gap, is yielded for the caller to act on.
 *
 * @module
 */

import type {
  ClientCursor,
  GreeterClient,
  StartPosition,
  SubscriptionMessage,
} from "./client.ts";
import { type Clock, systemClock } from "../bus/clock.ts";
import { RpcError } from "../errors.ts";

/** What {@linkcode follow} yields: the stream's messages, and its reconnects. */
export type FollowMessage =
  | Exclude<SubscriptionMessage, { kind: "subscribed" }>
  | Extract<SubscriptionMessage, { kind: "subscribed" }> & {
    /** The cursor this subscription asked to resume after; none: fresh. */
    readonly after?: ClientCursor;
  }
  | {
    /** The stream ended or failed; the next subscription starts after `delayMs`. */
    readonly kind: "reconnecting";
    /** 1 for the first retry since the last successful subscription. */
    readonly attempt: number;
    readonly delayMs: number;
    readonly reason: string;
    /** The server it goes to next, when it follows several. */
    readonly target?: string;
  };

/** Capped exponential backoff settings. */
export interface BackoffOptions {
  /** Upper bound of the first delay (ms). Default 250. */
  initialMs?: number;
  /** Cap of every delay (ms). Default 30 000. */
  maxMs?: number;
}

/** Options of {@linkcode follow}. */
export interface FollowOptions extends BackoffOptions {
  /** Topics to receive; empty or absent: every topic not starting with `$`. */
  topics?: readonly string[];
  /** Resume after this cursor on the first subscription too. */
  after?: ClientCursor;
  /**
   * Without `after`: where the first subscription starts among the events
   * held (every one, the last N, since a time); later ones resume from the
   * last cursor.
   */
  start?: StartPosition;
  /** Aborting it ends the iteration normally. */
  signal?: AbortSignal;
  /** Silence (ms) beyond which the stream is presumed dead, on top of twice the heartbeat. Default 5 000. */
  silenceSlackMs?: number;
  /** How long (ms) to wait for a subscription's first message before retrying. Default 20 000. */
  firstMessageMs?: number;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /** Default `Math.random`. */
  random?: () => number;
  /**
   * Retries in a row after `UNAUTHENTICATED` (the token may be in the middle
   * of a rotation: the server's file reloaded before or after the client's),
   * each said in its `reconnecting` message; the next one is thrown.
   * Default {@linkcode DEFAULT_UNAUTHENTICATED_RETRIES}.
   */
  unauthenticatedRetries?: number;
}

/** Default retries in a row after `UNAUTHENTICATED` (about 16 s of backoff at most). */
export const DEFAULT_UNAUTHENTICATED_RETRIES = 6;

/**
 * The status codes after which a subscription is retried: the server is
 * unreachable or draining, or it is full or dropped this subscriber as too
 * slow (a grpc-js client does not always see the Goodbye before that status).
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  "UNAVAILABLE",
  "RESOURCE_EXHAUSTED",
]);

/**
 * The delay before retry `attempt` (1, 2, …): uniform in
 * `[0, min(maxMs, initialMs × 2^(attempt-1)))` ("full jitter").
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./follow.ts";
 * backoffDelay(3, { initialMs: 100, maxMs: 1000 }, () => 0.5); // 200
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { initialMs = 250, maxMs = 30_000 } = options;
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 52));
  return Math.floor(random() * ceiling);
}

/**
 * The cursor to resume from once `message` was seen, after `cursor`: where
 * the stream has got to. One rule for both: the resume cursor of
 * {@linkcode follow}, and the last cursor a caller reports. Within an
 * epoch it never goes back; a subscription that was not recovered starts
 * where the server says (another epoch, past its window, or ahead of it, as
 * on a lagging instance: a bigger cursor kept would drop every event as
 * already seen).
 *
 * @example
 * ```ts
 * import { nextCursor } from "./follow.ts";
 * const cursor = { epoch: "e", seq: 7 };
 * nextCursor(cursor, { kind: "heartbeat", cursor: { epoch: "e", seq: 5 }, timeMs: 0 }); // { epoch: "e", seq: 7 }
 * nextCursor(cursor, { kind: "gap", fromSeq: 8, toSeq: 9, missed: 2, reason: "expired" }); // { epoch: "e", seq: 9 }
 * ```
 */
export function nextCursor(
  cursor: ClientCursor | undefined,
  message: FollowMessage,
): ClientCursor | undefined {
  switch (message.kind) {
    case "subscribed":
      return message.recovered ? later(cursor, message.cursor) : message.cursor;
    case "event":
    case "heartbeat":
      return later(cursor, message.cursor);
    case "gap":
      return cursor &&
        later(cursor, { epoch: cursor.epoch, seq: message.toSeq });
    default:
      return cursor;
  }
}

/** Whether an event at `at` was yielded already, `cursor` being where the stream got to. */
function seen(cursor: ClientCursor | undefined, at: ClientCursor): boolean {
  return cursor !== undefined && cursor.epoch === at.epoch &&
    at.seq <= cursor.seq;
}

/** How one subscription ended, for {@linkcode follow} to go on. */
interface Ended {
  /** Where the stream got to. */
  cursor?: ClientCursor;
  /** Follow no more: the server ended it without advising a reconnect, or the caller aborted. */
  done: boolean;
  /** When its first message came, if it did. */
  subscribedAt?: number;
  /** Why it ended (for the `reconnecting` message). */
  reason: string;
  /** The delay a Goodbye advised before reconnecting. */
  advisedDelay?: number;
  /** It failed with `UNAUTHENTICATED` (retried a bounded number of times in a row). */
  unauthenticated?: boolean;
}

/** {@linkcode FollowOptions} with their defaults. */
type Settings = FollowOptions & {
  clock: Clock;
  silenceSlackMs: number;
  firstMessageMs: number;
};

/**
 * One subscription on `client` after `cursor`: yields its messages (events
 * already yielded left out) until it ends, and returns how it did. Throws
 * {@linkcode RpcError} on a status not worth retrying.
 */
async function* subscribeOnce(
  client: GreeterClient,
  name: string,
  cursor: ClientCursor | undefined,
  settings: Settings & {
    /** Retry `UNAUTHENTICATED` this time (the bound is not reached). */
    retryUnauthenticated: boolean;
  },
): AsyncGenerator<FollowMessage, Ended> {
  const { signal, clock, silenceSlackMs, firstMessageMs } = settings;
  const asked = cursor;
  let subscribedAt: number | undefined;
  let advisedDelay: number | undefined;
  let advisedStop = false;
  let reason = "the server ended the stream";
  let unauthenticated = false;
  const silence = new AbortController();
  const watchdog = new Watchdog(clock, () => silence.abort());
  // Until the first message, the call itself may be stuck (a dead
  // connection that has not failed yet): bound the wait for it too.
  watchdog.arm(firstMessageMs);
  try {
    const messages = client.subscribe(name, {
      topics: settings.topics,
      after: asked,
      // Until a cursor is known, the start position holds.
      start: asked ? undefined : settings.start,
      signal: signal ? AbortSignal.any([signal, silence.signal]) : silence
        .signal,
    });
    for await (const message of messages) {
      // Aborted: nothing more is handed out, even what had already come.
      if (signal?.aborted) return { cursor, done: true, reason };
      watchdog.seen();
      if (message.kind === "event" && seen(cursor, message.cursor)) continue;
      cursor = nextCursor(cursor, message);
      if (message.kind === "subscribed") {
        subscribedAt = clock.now();
        const beat = message.heartbeatIntervalMs;
        watchdog.arm(beat > 0 ? 2 * beat + silenceSlackMs : Infinity);
      } else if (message.kind === "goodbye") {
        if (message.reconnect) advisedDelay = message.reconnectAfterMs;
        else advisedStop = true;
        reason = `goodbye: ${message.reason}`;
      }
      // Time the consumer takes is not the server's silence.
      watchdog.pause();
      yield message.kind === "subscribed" && asked
        ? { ...message, after: asked }
        : message;
      watchdog.resume();
    }
    if (silence.signal.aborted) {
      reason = subscribedAt === undefined
        ? `no answer within ${firstMessageMs} ms`
        : "the server fell silent for longer than its heartbeat";
    } else if (advisedDelay === undefined) {
      return { cursor, done: true, reason };
    }
  } catch (error) {
    if (signal?.aborted) return { cursor, done: true, reason };
    unauthenticated = error instanceof RpcError &&
      error.code === "UNAUTHENTICATED";
    const retryable = error instanceof RpcError && !advisedStop &&
      (RETRYABLE_CODES.has(error.code) || advisedDelay !== undefined ||
        (unauthenticated && settings.retryUnauthenticated));
    if (!retryable) throw error;
    reason = error.message;
  } finally {
    watchdog.stop();
  }
  return {
    cursor,
    done: false,
    subscribedAt,
    reason,
    advisedDelay,
    unauthenticated,
  };
}

/**
 * Follows `name`'s subscription across reconnects until `signal` aborts or
 * the server ends it without advising a reconnect. With several clients
 * (instances on one shared event stream, where a cursor from one resumes on
 * another) it starts on the first and, whenever the stream must be made
 * again, moves on to the next, round the list: the instance it was on may be
 * gone for good, and a dead one costs one failed attempt. Throws
 * {@linkcode RpcError} on a status that is not worth retrying (e.g.
 * `INVALID_ARGUMENT`, `PERMISSION_DENIED`), and on `UNAUTHENTICATED` once
 * `unauthenticatedRetries` retries in a row met it too.
 *
 * @example
 * ```ts ignore
 * for await (const message of follow(client, "you", { topics: ["news"] })) {
 *   if (message.kind === "event") console.log(message.cursor.seq);
 * }
 * // Moving between two instances of one stream:
 * follow([clientA, clientB], "you", { topics: ["news"] });
 * ```
 */
export async function* follow(
  clients: GreeterClient | readonly GreeterClient[],
  name: string,
  options: FollowOptions = {},
): AsyncGenerator<FollowMessage> {
  const {
    signal,
    clock = systemClock,
    random = Math.random,
    silenceSlackMs = 5_000,
    firstMessageMs = 20_000,
    unauthenticatedRetries = DEFAULT_UNAUTHENTICATED_RETRIES,
  } = options;
  const settings = { ...options, clock, silenceSlackMs, firstMessageMs };
  const servers = Array.isArray(clients) ? clients : [clients];
  if (servers.length === 0) throw new RangeError("follow() needs a client");
  let on = 0;
  let cursor = options.after;
  let attempt = 0;
  /** `UNAUTHENTICATED` retries in a row. */
  let refusals = 0;
  while (!signal?.aborted) {
    const ended = yield* subscribeOnce(servers[on], name, cursor, {
      ...settings,
      retryUnauthenticated: refusals < unauthenticatedRetries,
    });
    cursor = ended.cursor;
    if (ended.done || signal?.aborted) return;
    // A subscription that got in before it was refused starts the count anew.
    refusals = !ended.unauthenticated
      ? 0
      : ended.subscribedAt === undefined
      ? refusals + 1
      : 1;
    // Backoff grows across quick failures; a stream that lived a while
    // resets it.
    const lived = ended.subscribedAt === undefined
      ? 0
      : clock.now() - ended.subscribedAt;
    if (lived >= HEALTHY_MS) attempt = 0;
    attempt++;
    const delayMs = Math.max(
      ended.advisedDelay ?? 0,
      backoffDelay(attempt, options, random),
    );
    on = (on + 1) % servers.length;
    const reason = ended.unauthenticated
      ? `${ended.reason} (retry ${refusals} of ${unauthenticatedRetries} after UNAUTHENTICATED: the token may be being rotated)`
      : ended.reason;
    yield servers.length > 1
      ? {
        kind: "reconnecting",
        attempt,
        delayMs,
        reason,
        target: servers[on].target,
      }
      : { kind: "reconnecting", attempt, delayMs, reason };
    try {
      await clock.sleep(delayMs, signal);
    } catch {
      return; // aborted while waiting
    }
  }
}

/** A stream that lived this long (ms) resets the backoff. */
const HEALTHY_MS = 10_000;

/** `next` unless it is behind `current` in the same epoch. */
function later(
  current: ClientCursor | undefined,
  next: ClientCursor,
): ClientCursor {
  return current?.epoch === next.epoch && current.seq > next.seq
    ? current
    : next;
}

/**
 * Calls `onSilence` once when nothing was seen for the armed period, not
 * counting time spent paused. One timer at a time.
 */
class Watchdog {
  #clock: Clock;
  #onSilence: () => void;
  #periodMs = Infinity;
  #lastSeen = 0;
  #paused = false;
  #timer?: AbortController;

  constructor(clock: Clock, onSilence: () => void) {
    this.#clock = clock;
    this.#onSilence = onSilence;
  }

  /** Sets the period (Infinity: never) and counts from now. */
  arm(periodMs: number): void {
    this.#periodMs = periodMs;
    this.seen();
    this.#timer?.abort();
    this.#timer = undefined;
    if (Number.isFinite(periodMs)) this.#wait(periodMs);
  }

  seen(): void {
    this.#lastSeen = this.#clock.now();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.seen();
  }

  stop(): void {
    this.#timer?.abort();
    this.#timer = undefined;
  }

  #wait(ms: number): void {
    const timer = this.#timer = new AbortController();
    this.#clock.sleep(ms, timer.signal).then(() => {
      if (this.#timer !== timer) return;
      this.#timer = undefined;
      const quiet = this.#clock.now() - this.#lastSeen;
      if (!this.#paused && quiet >= this.#periodMs) this.#onSilence();
      else this.#wait(this.#paused ? this.#periodMs : this.#periodMs - quiet);
    }, () => {});
  }
}
