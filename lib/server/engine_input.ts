/**
 * What reaches this instance through the engine from elsewhere (other
 * instances, or anyone else nats-server lets publish there), read as
 * untrusted input and checked as this instance checks its own callers:
 * listing entries here; whoever sent them, what this instance passes on
 * holds to its own rules. One line per cause per interval says what was
 * refused.
 *
 * @module
 */

import type { SubscriptionInfo } from "../bus/hub_items.ts";
import { normalizeTopics } from "../bus/hub.ts";
import { validateName } from "../greetings.ts";
import type { Logger } from "../log.ts";
import { PeerLineBudget } from "../observe/peer_lines.ts";

/** One line per cause of refusal per this interval (ms). */
export const REFUSAL_LOG_INTERVAL_MS = 60_000;

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
  const { id, name, topics } = entry;
  if (!Number.isSafeInteger(id) || (id as number) < 1) {
    throw new RangeError(`id ${String(id).slice(0, 32)} is out of range`);
  }
  if (typeof name !== "string") throw new RangeError("its name is missing");
  validateName(name);
  if (
    !Array.isArray(topics) || topics.length === 0 ||
    !topics.every((topic) => typeof topic === "string")
  ) {
    throw new RangeError("its topics are missing");
  }
  const normalized = normalizeTopics(topics);
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
    id: id as number,
    name,
    topics: normalized,
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
