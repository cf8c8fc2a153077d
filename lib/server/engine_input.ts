/**
 * What reaches this instance through the engine from elsewhere (other
 * instances, or anyone else nats-server lets publish there), read as
 * untrusted input and checked as this instance checks its own callers:
 * events read from the stream (as `Publish` checks them, and the server's
 * own topics as the instances write them) and listing entries; whoever
 * sent them, what this instance passes on holds to its own rules. One line
 * per cause per interval says what was refused.
 *
 * @module
 */

import type { EventRefusal } from "../bus/broker.ts";
import {
  LEAVE_REASONS,
  type LeaveReason,
  PRESENCE_TOPIC,
  type SubscriptionInfo,
  TICK_TOPIC,
} from "../bus/hub_items.ts";
import { normalizeTopics, validateTopic } from "../bus/hub.ts";
import { quote } from "../escape.ts";
import { validateName } from "../greetings.ts";
import type { Logger } from "../log.ts";
import { PeerLineBudget } from "../observe/peer_lines.ts";

/** One line per cause of refusal per this interval (ms). */
export const REFUSAL_LOG_INTERVAL_MS = 60_000;

/**
 * Room a subscriber's stream message needs around a payload (cursor, topic,
 * time, framing): what `--max-publish-size` must leave below
 * `--max-message-size`.
 */
export const EVENT_ENVELOPE_BYTES = 512;

/**
 * The check of every event read from the stream, for this instance's
 * limits: a topic `Publish` takes and a payload of at most
 * `maxPublishBytes` (`--max-publish-size`); or the server's own topics as
 * instances write them, within what a subscriber's stream can carry
 * (`maxMessageBytes`, `--max-message-size`, less the envelope): `tick`
 * empty, `$presence` a join or leave as `presencePayload` makes it, no other
 * `$` topic. Returns why an event is refused, or undefined.
 *
 * @example
 * ```ts
 * import { engineEventCheck } from "./engine_input.ts";
 * const check = engineEventCheck({ maxPublishBytes: 4, maxMessageBytes: 1024 });
 * check("news", new Uint8Array(2)); // undefined
 * check("news", new Uint8Array(5))?.reason; // "size"
 * check("\u001b[2J", new Uint8Array(0))?.reason; // "topic"
 * ```
 */
export function engineEventCheck(
  limits: { maxPublishBytes: number; maxMessageBytes: number },
): (topic: string, data: Uint8Array) => EventRefusal | undefined {
  const carried = limits.maxMessageBytes - EVENT_ENVELOPE_BYTES;
  return (topic, data) => {
    const own = topic === TICK_TOPIC || topic === PRESENCE_TOPIC;
    const max = own ? carried : limits.maxPublishBytes;
    if (data.length > max) {
      return {
        reason: "size",
        detail:
          `a payload of ${data.length} bytes, over this instance's ${max} (${
            own ? "--max-message-size, less 512" : "--max-publish-size"
          })`,
      };
    }
    if (topic === TICK_TOPIC) {
      return data.length === 0 ? undefined : {
        reason: "tick",
        detail:
          `a tick with a payload of ${data.length} bytes (instances publish empty ticks)`,
      };
    }
    if (topic === PRESENCE_TOPIC) {
      const wrong = presenceFault(data);
      return wrong === undefined ? undefined : {
        reason: "presence",
        detail: wrong,
      };
    }
    try {
      validateTopic(topic);
    } catch {
      return {
        reason: "topic",
        detail: `topic ${quote(topic.slice(0, 160))}${
          topic.length > 160 ? "…" : ""
        }, which Publish refuses (and no instance writes)`,
      };
    }
    return undefined;
  };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** What is wrong with a `$presence` payload, or undefined when nothing is. */
function presenceFault(data: Uint8Array): string | undefined {
  let change: Record<string, unknown>;
  try {
    change = JSON.parse(decoder.decode(data));
  } catch {
    return "a $presence payload that is not JSON";
  }
  if (typeof change !== "object" || change === null) {
    return "a $presence payload that is not an object";
  }
  const { action, subscription_id: id, name, topics, reason } = change;
  if (action !== "join" && action !== "leave") {
    return `a $presence action ${quote(String(action).slice(0, 32))}`;
  }
  try {
    who({ id, name, topics }, "subscription_id");
  } catch (error) {
    return `a $presence ${action}: ${(error as Error).message}`;
  }
  if (
    reason !== undefined &&
    (action !== "leave" || !LEAVE_REASONS.includes(reason as LeaveReason))
  ) {
    return `a $presence ${action} with reason ${
      quote(String(reason).slice(0, 32))
    }`;
  }
  return undefined;
}

/**
 * A subscription as another instance names it (in `$presence` and
 * listings): an id from 1 (its field called `idField`), a name `Subscribe`
 * would take, a topic filter it would take; the filter normalised. Throws,
 * saying what is wrong, otherwise.
 */
function who(
  fields: { id?: unknown; name?: unknown; topics?: unknown },
  idField: string,
): { id: number; name: string; topics: string[] } {
  const { id, name, topics } = fields;
  if (!Number.isSafeInteger(id) || (id as number) < 1) {
    throw new RangeError(
      `${idField} ${String(id).slice(0, 32)} is out of range`,
    );
  }
  if (typeof name !== "string") throw new RangeError("its name is missing");
  validateName(name);
  if (
    !Array.isArray(topics) || topics.length === 0 ||
    !topics.every((topic) => typeof topic === "string")
  ) {
    throw new RangeError("its topics are missing");
  }
  return { id: id as number, name, topics: normalizeTopics(topics) };
}

/**
 * Another instance's listing entry as this instance lists its own: a name
 * `Subscribe` would take, a topic filter it would take (at most 64 topics),
 * and counts and times that are safe integers from 0; no labels (instances
 * keep their peers' addresses to themselves). Throws a `RangeError`, saying
 * what is wrong, otherwise.
 *
 * @example
 * ```ts
 * import { listedSubscription } from "./engine_input.ts";
 * listedSubscription({
 *   id: 4294967297, name: "ann", topics: ["news"], since: 0,
 *   delivered: 3, dropped: 0, buffered: 0, labels: {},
 * }).name; // "ann"
 * ```
 */
export function listedSubscription(value: unknown): SubscriptionInfo {
  const entry = value as Record<string, unknown>;
  const { id, name, topics } = who(entry, "id");
  const counts = ["since", "delivered", "dropped", "buffered"] as const;
  for (const key of counts) {
    const n = entry[key];
    if (!Number.isSafeInteger(n) || (n as number) < 0) {
      throw new RangeError(
        `${key} ${String(n).slice(0, 32)} is not a safe integer from 0`,
      );
    }
  }
  return {
    id,
    name,
    topics,
    since: entry.since as number,
    delivered: entry.delivered as number,
    dropped: entry.dropped as number,
    buffered: entry.buffered as number,
    labels: {},
  };
}

/**
 * A logger of refusals: one warning per cause per
 * {@linkcode REFUSAL_LOG_INTERVAL_MS}, saying how many more there were.
 *
 * @example
 * ```ts ignore
 * const refused = refusalLog(log, "A listing answer from another instance refused");
 * refused("total", "total 123457 is not a count from 0 to 10000000");
 * ```
 */
export function refusalLog(
  log: Logger,
  message: string,
  options: { now?: () => number } = {},
): (
  cause: string,
  detail: string,
  fields?: Record<string, string | number>,
) => void {
  const budget = new PeerLineBudget({
    lines: 1,
    intervalMs: REFUSAL_LOG_INTERVAL_MS,
    now: options.now,
    keyOf: (cause) => cause,
  });
  return (cause, detail, fields = {}) => {
    const held = budget.take(cause);
    if (held === undefined) return;
    log.warn(message, {
      reason: cause,
      detail,
      ...fields,
      moreSinceLastLine: held || undefined,
    });
  };
}
