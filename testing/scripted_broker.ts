/**
 * A broker whose events (and log reads) a test hands over itself: what a
 * shared log's reader would deliver, jumps and repeats included, without an
 * engine.
 *
 * @module
 */

import type { BusEvent } from "../lib/bus/broker.ts";

/** Options of {@linkcode scriptedBroker}. */
export interface ScriptedBrokerOptions {
  /** The last seq handed to listeners at start. Default 0. */
  seq?: number;
  /** The newest seq the broker says exists (a lagging reader). */
  head?: number;
  /**
   * Give it a log older events can be read from (`first` 1), whose reads
   * wait until their signal aborts (an engine slow to answer). Default true.
   */
  log?: boolean;
}

/**
 * The broker, `hand(seq)` to deliver event `seq` (topic `t`, data `eSEQ`,
 * or other `fields`) to its listeners, and how many log reads are open.
 *
 * @example
 * ```ts ignore
 * const { broker, hand } = scriptedBroker({ log: false });
 * const hub = new Hub(broker);
 * hand(1);
 * ```
 */
export function scriptedBroker(options: ScriptedBrokerOptions = {}) {
  const listeners = new Set<(event: BusEvent<string>) => void>();
  let replays = 0;
  const base = {
    epoch: "e",
    seq: options.seq ?? 0,
    head: options.head,
    publish: () => Promise.reject(new Error("not used")),
    listen(listener: (event: BusEvent<string>) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const log = {
    first: 1,
    async *replay(_after: number, _through: number, signal: AbortSignal) {
      replays++;
      try {
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
      } finally {
        replays--;
      }
      yield* [] as BusEvent<string>[];
    },
  };
  const broker = options.log === false ? base : { ...base, ...log };
  const hand = (seq: number, fields: Partial<BusEvent<string>> = {}) => {
    const event: BusEvent<string> = {
      kind: "event",
      seq,
      time: Date.now(),
      topic: "t",
      data: `e${seq}`,
      ...fields,
    };
    for (const listener of listeners) listener(event);
  };
  return { broker, hand, replays: () => replays };
}
