/**
 * `BENCH_ONLY=tick`: the seed's personalised tick, every 10 ms, to
 * `BENCH_SUBSCRIBERS` (1,000) `SayHelloStreamReply` subscribers, 100 per
 * connection, on the greeter and on a fresh process of each server it is
 * compared with.
 *
 * @module
 */

import { type Bench, greeterPeer, type Scenario } from "../bench.ts";
import {
  type FanOutRates,
  fanOutRow,
  measureFanOut,
  quiesce,
} from "../fan_out.ts";
import { type FanOutPeer, running } from "../peers.ts";
import { SubscriberPool } from "../pool.ts";
import type { Report } from "../report.ts";
import { rssOf } from "../resources.ts";
import { connectionsFor, envNumber } from "../settings.ts";

/** Tick subscribers (`BENCH_SUBSCRIBERS`). */
const SUBSCRIBERS = envNumber("BENCH_SUBSCRIBERS", 1000);

/** The shape of a tick row. */
export interface TickRow {
  /** `SayHelloStreamReply` calls to open. */
  subscribers: number;
  /** Connections to spread them over. */
  connections: number;
}

/** One tick fan-out {@linkcode tickFanOut} measures. */
interface TickFanOut extends TickRow {
  /** The server, ticking every 10 ms (or as `ticksPerSecond` says). */
  peer: FanOutPeer;
  /** The server's ticks a second, when not 100 (`--interval 10`): named in the rows. */
  ticksPerSecond?: number;
}

/**
 * The seed's personalised tick to `subscribers` over `connections`:
 * subscribe rate, what was delivered, latency and CPU, and RSS per
 * subscriber under that load (from before they subscribed to the end of
 * the window); returns the rates and that RSS. `onSubscribed` is called
 * once every subscriber is live.
 *
 * @example
 * ```ts ignore
 * const { delivered } = await tickFanOut(report, { peer, subscribers: 5000, connections: 8 });
 * ```
 */
export async function tickFanOut(
  report: Report,
  { peer, subscribers, connections, onSubscribed, ticksPerSecond = 100 }:
    & TickFanOut
    & { onSubscribed?: () => Promise<void> },
): Promise<FanOutRates & { kbPerSubscriber: number }> {
  const rssBefore = rssOf(peer.pids);
  const name = `${peer.label} tick fan-out ${
    subscribers.toLocaleString("en-US")
  } over ${connections} connections${
    ticksPerSecond === 100 ? "" : ` at ${ticksPerSecond} ticks/s`
  }`;
  const pool = new SubscriberPool(peer.target, {
    subscribers,
    connections,
    method: "SayHelloStreamReply",
  });
  try {
    const start = performance.now();
    await pool.start();
    report.figure(
      `${name}: subscribe rate`,
      subscribers / ((performance.now() - start) / 1000),
      "subs/s",
    );
    await onSubscribed?.();
    const rates = await measureFanOut(report, {
      pool,
      peer,
      name,
      offered: `${subscribers * ticksPerSecond} offered`,
    });
    const kbPerSubscriber = (rssOf(peer.pids) - rssBefore) / subscribers;
    report.figure(
      `${name}: KB per subscriber`,
      kbPerSubscriber,
      "KB",
      "RSS under this load, less the RSS before they subscribed",
    );
    return { ...rates, kbPerSubscriber };
  } finally {
    pool.close();
    await quiesce(report, { pids: peer.pids, label: name });
  }
}

/**
 * One tick row: a greeter ticking every 10 ms, fresh for the row, then a
 * fresh process of each server it is compared with; same-run ratios.
 *
 * @example
 * ```ts ignore
 * import { Bench } from "../bench.ts";
 * import { tickRow } from "./tick.ts";
 * await using bench = new Bench();
 * await tickRow(bench, { subscribers: 5000, connections: 8 });
 * ```
 */
export async function tickRow(
  bench: Bench,
  { subscribers, connections }: TickRow,
): Promise<void> {
  const peers = await bench.peers();
  const greeter = await bench.spawnGreeter(["--interval", "10"]);
  await using _ = greeter.process;
  await fanOutRow(bench, {
    name: `tick fan-out ${
      subscribers.toLocaleString("en-US")
    } over ${connections} connections`,
    contenders: [running(greeterPeer(greeter)), ...peers],
    run: async (peer) =>
      (await tickFanOut(bench.report, { peer, subscribers, connections }))
        .delivered,
  });
}

/** The tick fan-out section. */
export const tickScenario: Scenario = {
  name: "tick",
  run: (bench) =>
    tickRow(bench, {
      subscribers: SUBSCRIBERS,
      connections: connectionsFor(SUBSCRIBERS),
    }),
};
