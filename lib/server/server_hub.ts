/**
 * The server's hub and its clocks: the hub with its join, gap and leave
 * lines, `$presence` payloads, and the tickers that publish the clock's
 * ticks and the heartbeats.
 *
 * @module
 */

import type { Clock } from "../bus/clock.ts";
import {
  DEFAULT_MAX_BROKER_REPLAYS,
  Hub,
  type HubOptions,
  type PresenceChange,
} from "../bus/hub.ts";
import type { PublishOptions } from "../bus/broker.ts";
import { PeerShares } from "../access/peer_shares.ts";
import { type LeaveReason } from "../bus/hub_items.ts";
import { runTicker } from "../bus/ticker.ts";
import type { Logger } from "../log.ts";
import type { ResolvedServerOptions } from "./options.ts";
import { TICK_TOPIC } from "../bus/hub_items.ts";
import { PeerLineBudget, topicsForLog } from "../observe/peer_lines.ts";

/** What an event weighs besides its payload (object, topic), roughly. */
const EVENT_OVERHEAD_BYTES = 128;

/**
 * What an event weighs in a replay window (`--replay-bytes`): its payload
 * and the rest of it, roughly.
 *
 * @example
 * ```ts
 * import { eventWeight } from "./server_hub.ts";
 * eventWeight(new Uint8Array(10)); // 138
 * ```
 */
export function eventWeight(payload: Uint8Array): number {
  return payload.length + EVENT_OVERHEAD_BYTES;
}

/** Shortest time between two "missed events" lines for one subscription. */
const GAP_LOG_INTERVAL_MS = 10_000;

const encoder = new TextEncoder();

/**
 * A join or leave as the `$presence` payload: JSON.
 *
 * @example
 * ```ts
 * import { presencePayload } from "./server_hub.ts";
 * const subscription = {
 *   id: 3,
 *   name: "ann",
 *   topics: ["*"],
 *   since: 0,
 *   delivered: 0,
 *   dropped: 0,
 *   buffered: 0,
 *   labels: {},
 * };
 * new TextDecoder().decode(presencePayload({ action: "join", subscription }));
 * // '{"action":"join","subscription_id":3,"name":"ann","topics":["*"]}'
 * ```
 */
export function presencePayload(change: PresenceChange): Uint8Array {
  const { action, subscription, reason } = change;
  return encoder.encode(JSON.stringify({
    action,
    subscription_id: subscription.id,
    name: subscription.name,
    topics: subscription.topics,
    reason,
  }));
}

/**
 * Ids per instance on a shared stream: each instance numbers its
 * subscriptions from a random multiple of this, so that ids (in presence
 * listings, `$presence` events and page tokens) are unique across instances
 * and still safe integers: 2^20 instance slots of 2^32 subscriptions.
 */
const INSTANCE_ID_SPAN = 2 ** 32;

/** A random first subscription id for an instance on a shared stream. */
export function instanceFirstId(): number {
  const [slot] = crypto.getRandomValues(new Uint32Array(1));
  return ((slot % (2 ** 20 - 1)) + 1) * INSTANCE_ID_SPAN + 1;
}

/** The settings {@linkcode createServerHub} reads, resolved. */
export type ServerHubSettings = Pick<
  ResolvedServerOptions,
  | "broker"
  | "bufferSize"
  | "policy"
  | "maxSubscribers"
  | "replaySize"
  | "replayAgeMs"
  | "replayBytes"
  | "log"
  | "clock"
>;

/**
 * The server's hub: each join and leave logged (at most 20 lines per peer
 * address per 10 s, topics shortened), each gap at most once per
 * subscription per 10 s; each leave handed to `onLeave` (the metrics).
 *
 * @example
 * ```ts
 * import { createServerHub } from "./server_hub.ts";
 * import { resolveServerOptions } from "./options.ts";
 * import { PeerLineBudget } from "../observe/peer_lines.ts";
 * const hub = createServerHub(resolveServerOptions({}), {
 *   peerLines: new PeerLineBudget(),
 *   onLeave: (reason) => console.log("left:", reason),
 * });
 * hub.close();
 * ```
 */
export function createServerHub(
  settings: ServerHubSettings,
  wiring:
    & {
      /** Called once per leave, with its reason (the metrics). */
      onLeave: (reason: LeaveReason) => void;
      /** The budget of join and leave lines per peer. */
      peerLines: PeerLineBudget;
    }
    & Pick<
      HubOptions<Uint8Array>,
      "windows" | "nextId" | "capacity" | "brokerReplaySlots"
    >,
): Hub<Uint8Array> {
  const { log, clock, broker } = settings;
  const joinLines = wiring.peerLines;
  /** Per subscription: when its last gap was logged, and what came since. */
  const gapLogs = new Map<
    number,
    { at: number; gaps: number; missed: number }
  >();
  return new Hub<Uint8Array>(broker, {
    firstId: broker.shared ? instanceFirstId() : 1,
    // A worker's hub: the process's windows and ids.
    windows: wiring.windows,
    nextId: wiring.nextId,
    capacity: wiring.capacity,
    bufferSize: settings.bufferSize,
    policy: settings.policy,
    maxSubscribers: settings.maxSubscribers,
    // A peer's share: one client's resumes cannot hold every read of the
    // stream (and every consumer on it).
    brokerReplaySlots: wiring.brokerReplaySlots ?? new PeerShares({
      total: DEFAULT_MAX_BROKER_REPLAYS,
      what: "reads of the event stream",
    }),
    replaySize: settings.replaySize,
    replayAgeMs: settings.replayAgeMs,
    replayBytes: settings.replayBytes,
    sizeOf: eventWeight,
    presence: presencePayload,
    now: () => clock.now(),
    onJoin: (info) => {
      const held = joinLines.take(info.labels.peer ?? "");
      if (held === undefined) return; // this peer's budget of lines is spent
      log.info("client {name} subscribed.", {
        name: info.name,
        subscription: info.id,
        peer: info.labels.peer,
        transport: info.labels.transport,
        ...topicsForLog(info.topics),
        joinsAndLeavesNotLogged: held || undefined,
      });
    },
    onGap: (info, gap) => {
      // Once per subscriber per GAP_LOG_INTERVAL_MS: a subscriber that stays
      // behind reports a gap after every few events, and a line each made
      // the log the costliest part of an overloaded server.
      const now = clock.now();
      const last = gapLogs.get(info.id);
      if (last && now - last.at < GAP_LOG_INTERVAL_MS) {
        last.gaps++;
        last.missed += gap.missed;
        return;
      }
      gapLogs.set(info.id, { at: now, gaps: 0, missed: 0 });
      log.warn("client {name} missed events.", {
        name: info.name,
        subscription: info.id,
        peer: info.labels.peer,
        transport: info.labels.transport,
        reason: gap.reason,
        from: gap.from,
        to: gap.to,
        missed: gap.missed || undefined,
        gapsSinceLastLine: last?.gaps || undefined,
        missedSinceLastLine: last?.missed || undefined,
      });
    },
    onLeave: (info, reason) => {
      gapLogs.delete(info.id);
      wiring.onLeave(reason);
      const held = joinLines.take(info.labels.peer ?? "");
      if (held === undefined) return;
      log.info("client {name} is leaving.", {
        name: info.name,
        subscription: info.id,
        peer: info.labels.peer,
        transport: info.labels.transport,
        reason,
        dropped: info.dropped || undefined,
        joinsAndLeavesNotLogged: held || undefined,
      });
    },
  });
}

/** What the clock's ticks and the heartbeats run with. */
export interface TickerOptions {
  /** Milliseconds between ticks. */
  intervalMs: number;
  /** Stops them. */
  signal: AbortSignal;
  /** Where a failure is said. */
  log: Logger;
  /** Whose time. */
  clock: Clock;
  /**
   * The stream is shared with other instances: tick on the wall clock's
   * grid, each tick named by its instant, so the broker keeps one per
   * interval however many instances publish it.
   */
  shared: boolean;
}

/**
 * Publishes the clock's tick (an empty event on `tick`) through `publish`
 * every `intervalMs` until `signal` aborts; resolves once stopped. A run of
 * failed publishes is said once, and once again when they work again.
 *
 * @example
 * ```ts
 * import { runTicks } from "./server_hub.ts";
 * import { MemoryBroker } from "../bus/broker.ts";
 * import { systemClock } from "../bus/clock.ts";
 * import { Logger } from "../log.ts";
 * const broker = new MemoryBroker<Uint8Array>();
 * const stop = new AbortController();
 * const ticks = runTicks((topic, data, options) => broker.publish(topic, data, options), {
 *   intervalMs: 1000, clock: systemClock, log: new Logger(), signal: stop.signal, shared: false,
 * });
 * stop.abort();
 * await ticks;
 * ```
 */
export function runTicks(
  publish: (
    topic: string,
    data: Uint8Array,
    options: PublishOptions,
  ) => Promise<unknown>,
  options: TickerOptions,
): Promise<void> {
  const { log, signal, clock } = options;
  const tick = new Uint8Array(0);
  // One line when ticks start failing (the event stream away), one when they
  // publish again: not a line a tick.
  let failing = 0;
  return runTicker((_, at) => {
    const id = options.shared ? `${TICK_TOPIC}:${at}` : undefined;
    publish(TICK_TOPIC, tick, { id }).then(() => {
      if (failing === 0) return;
      log.info("Ticks publish again", { failed: failing });
      failing = 0;
    }, (error) => {
      if (failing++ === 0) {
        log.warn("Could not publish a tick", { error: String(error) });
      }
    });
  }, {
    intervalMs: options.intervalMs,
    clock,
    signal,
    aligned: options.shared,
  }).then(() => {}, (error) => {
    log.error("The clock's ticker stopped", { error: String(error) });
  });
}

/**
 * Runs the hub's two clocks until `signal` aborts: a tick on `tick` every
 * `intervalMs` (unless `ticks` is false: a worker's ticks come from the
 * process's sequencer), a heartbeat every `heartbeatMs`. Resolves once both
 * stopped; a failure is logged, never thrown.
 *
 * @example
 * ```ts
 * import { startTickers } from "./server_hub.ts";
 * import { Hub } from "../bus/hub.ts";
 * import { MemoryBroker } from "../bus/broker.ts";
 * import { systemClock } from "../bus/clock.ts";
 * import { Logger } from "../log.ts";
 * const hub = new Hub(new MemoryBroker<Uint8Array>());
 * const stop = new AbortController();
 * const tickers = startTickers(hub, {
 *   intervalMs: 1000,
 *   heartbeatMs: 15000,
 *   clock: systemClock,
 *   log: new Logger(),
 *   signal: stop.signal,
 *   shared: false,
 * });
 * stop.abort();
 * await tickers; // both stopped
 * hub.close();
 * ```
 */
export function startTickers(
  hub: Hub<Uint8Array>,
  options: TickerOptions & {
    /** Milliseconds between heartbeats. */
    heartbeatMs: number;
    /** Whether this hub publishes the clock's ticks. Default true. */
    ticks?: boolean;
  },
): Promise<void> {
  const { log, signal, clock } = options;
  return Promise.all([
    options.ticks === false
      ? undefined
      : runTicks((topic, data, o) => hub.publish(topic, data, o), options),
    runTicker(() => hub.heartbeat(), {
      intervalMs: options.heartbeatMs,
      clock,
      signal,
    }).catch((error) => {
      log.error("A hub ticker stopped", { error: String(error) });
    }),
  ]).then(() => {});
}
