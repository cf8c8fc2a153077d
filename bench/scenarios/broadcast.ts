/**
 * `BENCH_ONLY=broadcast`: one event published every `BENCH_PUBLISH_MS`
 * (10) to N `Subscribe` subscribers of its topic, for each N of
 * `BENCH_BROADCAST` (`1000,5000,10000`), on one greeter and on a fresh
 * process of each server it is compared with.
 *
 * @module
 */

import { type Bench, greeterPeer, type Scenario } from "../bench.ts";
import {
  type FanOutRates,
  fanOutRow,
  measureFanOut,
  quiesce,
  subscribeAll,
} from "../fan_out.ts";
import { metric } from "../metrics_page.ts";
import { type FanOutPeer, running } from "../peers.ts";
import type { Report } from "../report.ts";
import { rssOf } from "../resources.ts";
import { envList, PUBLISH_MS } from "../settings.ts";
import { LineProcess, scriptArgs } from "../../testing/process.ts";

/** Subscriber counts of the broadcast rows (`BENCH_BROADCAST`). */
const SIZES = envList("BENCH_BROADCAST", "1000,5000,10000").map(Number);

/**
 * One event published every `BENCH_PUBLISH_MS` (by `bench/publisher.ts`,
 * its own process) to `subscribers` subscribers of its topic, served by
 * `peer` (several processes when they share a port): RSS and KB per
 * subscriber, how the subscribers were spread over the processes, what was
 * delivered, latency, CPU, and the greeter's reader lag and V8 heap.
 *
 * @example
 * ```ts ignore
 * import { broadcast } from "./broadcast.ts";
 * import { Report } from "../report.ts";
 * const { delivered } = await broadcast(new Report(), {
 *   peer: { label: "greeter", target: "127.0.0.1:50051", pids: [1234] },
 *   subscribers: 1000,
 * });
 * ```
 */
export async function broadcast(
  report: Report,
  { peer, subscribers: n, connections, onSubscribed }: {
    peer: FanOutPeer;
    subscribers: number;
    /** Connections to spread them over. Default: the bench's shape (`connectionsFor`). */
    connections?: number;
    /** Called once every subscriber is live. */
    onSubscribed?: () => Promise<void>;
  },
): Promise<FanOutRates & { kbPerSubscriber: number }> {
  const { target, pids, label, metricsPorts = [] } = peer;
  const rssBefore = rssOf(pids);
  const pool = await subscribeAll(report, {
    target,
    subscribers: n,
    label,
    connections,
  });
  const name = `${label} broadcast ${n.toLocaleString("en-US")}`;
  try {
    const kbPerSubscriber = (rssOf(pids) - rssBefore) / n;
    report.figure(`${name}: KB per subscriber`, kbPerSubscriber, "KB");
    await onSubscribed?.();
    if (metricsPorts.length > 1) {
      const split = [];
      for (const port of metricsPorts) {
        split.push(await metric("greeter_subscribers", [port]));
      }
      report.set(`${name}: subscribers per process`, split);
      report.row(
        `${name}: subscribers per process`,
        split.join(" / "),
        "as the kernel spread the connections",
      );
    }
    // Its own process: the subscribers' load here must not slow it.
    await using publisher = new LineProcess(
      scriptArgs(
        "client",
        "bench/publisher.ts",
        target,
        "bench",
        String(PUBLISH_MS),
        "32",
      ),
    );
    await publisher.waitForLine("stdout", /^ready$/);
    const rates = await measureFanOut(report, {
      pool,
      peer,
      name,
      offered: `${Math.round((n * 1000) / PUBLISH_MS)} offered`,
    });
    publisher.child.kill("SIGTERM");
    report.figure(`${name}: server RSS`, rssOf(pids) / 1024, "MB");
    if (metricsPorts.length > 0) {
      report.figure(
        `${name}: reader lag at the end`,
        await metric("greeter_broker_lag_events", metricsPorts),
        "events",
        "a shared stream's events not read yet (summed; 0 with the memory broker)",
      );
      report.figure(
        `${name}: server V8 heap`,
        (await metric("deno_heap_used_bytes", metricsPorts)) / 2 ** 20,
        "MB",
        "the rest of RSS is native",
      );
    }
    return { ...rates, kbPerSubscriber };
  } finally {
    pool.close();
    await quiesce(report, { pids, label: name });
  }
}

async function run(bench: Bench): Promise<void> {
  const peers = await bench.peers();
  const greeter = await bench.spawnGreeter(["--interval", "3600000"]);
  await using _ = greeter.process;
  for (const subscribers of SIZES) {
    await fanOutRow(bench, {
      name: `broadcast ${subscribers.toLocaleString("en-US")}`,
      contenders: [running(greeterPeer(greeter)), ...peers],
      run: async (peer) =>
        (await broadcast(bench.report, { peer, subscribers })).delivered,
    });
  }
}

/** The broadcast fan-out section. */
export const broadcastScenario: Scenario = { name: "broadcast", run };
