/**
 * A subscription that survives the network: it resubscribes after
 * `UNAVAILABLE`, after a Goodbye that advises it, and when the server falls
 * silent for longer than its heartbeat promises, with capped exponential
 * backoff and full jitter; it resumes from the last cursor and never yields
 * an event twice. Whether each (re)subscription recovered everything, and
 * every gap, is yielded for the caller to act on.
 *
 * @module
 */

import type {
  ClientCursor,
  GreeterClient,
  SubscriptionMessage,
} from "./client.ts";
import { type Clock, systemClock } from "./clock.ts";
import { RpcError } from "./errors.ts";

/** What {@linkcode follow} yields: the stream's messages, and its reconnects. */
export type FollowMessage =
  | SubscriptionMessage
  | {
    /** The stream ended or failed; the next subscription starts after `delayMs`. */
    readonly kind: "reconnecting";
    /** 1 for the first retry since the last successful subscription. */
    readonly attempt: number;
    readonly delayMs: number;
    readonly reason: string;
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
  /** Aborting it ends the iteration normally. */
  signal?: AbortSignal;
  /** Silence (ms) beyond which the stream is presumed dead, on top of twice the heartbeat. Default 5 000. */
  silenceSlackMs?: number;
  /** Default {@linkcode systemClock}. */
  clock?: Clock;
  /** Default `Math.random`. */
  random?: () => number;
}

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
 * Follows `name`'s subscription across reconnects until `signal` aborts or
 * the server ends it without advising a reconnect. Throws
 * {@linkcode RpcError} on a status that is not worth retrying (e.g.
 * `INVALID_ARGUMENT`, `UNAUTHENTICATED`).
 *
 * @example
 * ```ts ignore
 * for await (const message of follow(client, "you", { topics: ["news"] })) {
 *   if (message.kind === "event") console.log(message.cursor.seq);
 * }
 * ```
 */
export async function* follow(
  client: GreeterClient,
  name: string,
  options: FollowOptions = {},
): AsyncGenerator<FollowMessage> {
  const {
    signal,
    clock = systemClock,
    random = Math.random,
    silenceSlackMs = 5_000,
  } = options;
  let cursor = options.after;
  let attempt = 0;
  while (!signal?.aborted) {
    let advisedDelay: number | undefined;
    let reason = "the server ended the stream";
    const silence = new AbortController();
    const watchdog = new Watchdog(clock, () => silence.abort());
    try {
      const messages = client.subscribe(name, {
        topics: options.topics,
        after: cursor,
        signal: signal ? AbortSignal.any([signal, silence.signal]) : silence
          .signal,
      });
      for await (const message of messages) {
        watchdog.seen();
        switch (message.kind) {
          case "subscribed":
            attempt = 0;
            cursor = message.cursor;
            if (message.heartbeatIntervalMs > 0) {
              watchdog.arm(2 * message.heartbeatIntervalMs + silenceSlackMs);
            }
            break;
          case "event":
            if (
              cursor?.epoch === message.cursor.epoch &&
              message.cursor.seq <= cursor.seq
            ) continue; // already yielded
            cursor = message.cursor;
            break;
          case "heartbeat":
            if (cursor?.epoch === message.cursor.epoch) {
              cursor = {
                epoch: cursor.epoch,
                seq: Math.max(cursor.seq, message.cursor.seq),
              };
            }
            break;
          case "gap":
            if (cursor) {
              cursor = {
                epoch: cursor.epoch,
                seq: Math.max(cursor.seq, message.toSeq),
              };
            }
            break;
          case "goodbye":
            if (message.reconnect) advisedDelay = message.reconnectAfterMs;
            reason = `goodbye: ${message.reason}`;
            break;
        }
        yield message;
      }
      if (silence.signal.aborted) {
        reason = "the server fell silent for longer than its heartbeat";
      } else if (advisedDelay === undefined) return;
    } catch (error) {
      if (signal?.aborted) return;
      const retryable = error instanceof RpcError &&
        (RETRYABLE_CODES.has(error.code) || advisedDelay !== undefined);
      if (!retryable) throw error;
      reason = error.message;
    } finally {
      watchdog.stop();
    }
    if (signal?.aborted) return;
    attempt++;
    const delayMs = advisedDelay ?? backoffDelay(attempt, options, random);
    yield { kind: "reconnecting", attempt, delayMs, reason };
    try {
      await clock.sleep(delayMs, signal);
    } catch {
      return; // aborted while waiting
    }
  }
}

/** Calls `onSilence` once when nothing was seen for the armed period. */
class Watchdog {
  #clock: Clock;
  #onSilence: () => void;
  #periodMs = 0;
  #lastSeen = 0;
  #timer?: AbortController;

  constructor(clock: Clock, onSilence: () => void) {
    this.#clock = clock;
    this.#onSilence = onSilence;
  }

  arm(periodMs: number): void {
    this.#periodMs = periodMs;
    this.#lastSeen = this.#clock.now();
    if (!this.#timer) this.#wait(periodMs);
  }

  seen(): void {
    this.#lastSeen = this.#clock.now();
  }

  stop(): void {
    this.#timer?.abort();
    this.#timer = undefined;
  }

  /** One timer at a time, re-armed for what remains of the period. */
  #wait(ms: number): void {
    const timer = this.#timer = new AbortController();
    this.#clock.sleep(ms, timer.signal).then(() => {
      if (this.#timer !== timer) return;
      this.#timer = undefined;
      const quiet = this.#clock.now() - this.#lastSeen;
      if (quiet >= this.#periodMs) this.#onSilence();
      else this.#wait(this.#periodMs - quiet);
    }, () => {});
  }
}
