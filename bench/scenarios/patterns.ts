/**
 * `BENCH_ONLY=patterns`: what unique wildcard patterns that match nothing
 * cost everyone else (#19 item 4). A publisher (its own process, one call
 * in flight) publishes on `news` to one subscriber, first with no pattern
 * in use, then beside `BENCH_PATTERN_SUBSCRIBERS` (2,000) subscriptions of
 * `BENCH_PATTERNS_EACH` (64) unique non-matching patterns each (128,000
 * distinct patterns, `--max-patterns-per-peer` lifted for it), in
 * `BENCH_PATTERN_ROUNDS` (2) interleaved rounds, and once more without
 * them. Prints the publish acknowledgement and publish-to-delivery
 * latencies, and the ratios with over without: the target is at most 1.2
 * (when every event was tried against every pattern, the ack took 6.6 times
 * as long).
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Scenario } from "../bench.ts";
import { metrics } from "../metrics_page.ts";
import { preciseNow, SubscriberPool } from "../pool.ts";
import { rssKb } from "../resources.ts";
import { connectionsFor, envNumber, SECONDS, WARM_UP_MS } from "../settings.ts";
import { LineProcess, scriptArgs } from "../../testing/process.ts";

/** Subscriptions holding patterns (`BENCH_PATTERN_SUBSCRIBERS`). */
const SUBSCRIBERS = envNumber("BENCH_PATTERN_SUBSCRIBERS", 2_000);
/** Unique patterns each holds (`BENCH_PATTERNS_EACH`, at most 64: a subscription's topics). */
const EACH = envNumber("BENCH_PATTERNS_EACH", 64);

/** The last `acked N ACK_MS FAILED AT` a stamping publisher printed. */
function acked(publisher: LineProcess): { acked: number; ackMs: number } {
  for (let i = publisher.stdout.length - 1; i >= 0; i--) {
    const match = publisher.stdout[i].match(/^acked (\d+) (\S+) \d+ \S+$/);
    if (match) return { acked: Number(match[1]), ackMs: Number(match[2]) };
  }
  return { acked: 0, ackMs: 0 };
}

/** One measured window's latencies (ms). */
interface Latency {
  /** Mean publish acknowledgement. */
  ack: number;
  /** Publish-to-delivery, median. */
  p50: number;
}

/** Measures one window of the publisher's acknowledgements and the subscriber's deliveries. */
async function measure(
  publisher: LineProcess,
  subscriber: SubscriberPool,
): Promise<Latency> {
  await delay(WARM_UP_MS);
  subscriber.resetLatency();
  const before = acked(publisher);
  await delay(SECONDS * 1000);
  const after = acked(publisher);
  return {
    ack: (after.ackMs - before.ackMs) / Math.max(1, after.acked - before.acked),
    p50: subscriber.percentile(0.5),
  };
}

/** Rounds of without, then with, the patterns (`BENCH_PATTERN_ROUNDS`); one more without closes. */
const ROUNDS = envNumber("BENCH_PATTERN_ROUNDS", 2);

/** The mean of `windows`' latencies. */
function mean(windows: Latency[]): Latency {
  const sum = (key: keyof Latency) =>
    windows.reduce((total, window) => total + window[key], 0) / windows.length;
  return { ack: sum("ack"), p50: sum("p50") };
}

/** `windows`' acknowledgement latencies, for a note. */
function listed(windows: Latency[]): string {
  return windows.map((window) => window.ack.toFixed(3)).join(", ");
}

async function run(bench: Bench): Promise<void> {
  const { report } = bench;
  const label = `${SUBSCRIBERS.toLocaleString("en-US")} x ${EACH}`;
  const greeter = await bench.spawnGreeter([
    "--interval",
    "3600000",
    "--max-patterns-per-peer",
    "10000000",
  ]);
  await using _ = greeter.process;
  const pid = greeter.process.child.pid;
  const subscriber = new SubscriberPool(greeter.target, {
    subscribers: 1,
    connections: 1,
    method: "Subscribe",
    topics: ["news"],
    latencyFrom: "payload",
  });
  try {
    await subscriber.start();
    await using publisher = new LineProcess(
      scriptArgs(
        "client",
        "bench/publisher.ts",
        greeter.target,
        "news",
        "max=1",
        "8",
      ),
    );
    await publisher.waitForLine("stdout", /^ready$/);
    const without: Latency[] = [];
    const beside: Latency[] = [];
    let subscribeSeconds = 0;
    let rssMb = 0;
    // Interleaved, so that the machine's drift weighs on both alike.
    for (let round = 0; round < ROUNDS; round++) {
      without.push(await measure(publisher, subscriber));
      const rssBefore = rssKb(pid);
      const patterned = new SubscriberPool(greeter.target, {
        subscribers: SUBSCRIBERS,
        connections: connectionsFor(SUBSCRIBERS),
        method: "Subscribe",
        topics: (i) => Array.from({ length: EACH }, (_, j) => `u${i}p${j}.*`),
      });
      try {
        const started = preciseNow();
        await patterned.start();
        subscribeSeconds += (preciseNow() - started) / 1000 / ROUNDS;
        beside.push(await measure(publisher, subscriber));
        rssMb += (rssKb(pid) - rssBefore) / 1024 / ROUNDS;
      } finally {
        patterned.close();
      }
      // The next window starts once the server has let them all go.
      for (let i = 0; i < 600; i++) {
        const [left] = await metrics(["greeter_subscribers"], [
          greeter.metricsPort,
        ]);
        if (left <= 1) break;
        await delay(100);
      }
    }
    without.push(await measure(publisher, subscriber));
    const base = mean(without);
    const loaded = mean(beside);
    report.figure(
      `patterns: ${label} unique patterns subscribed in`,
      subscribeSeconds,
      "s",
    );
    report.figure(
      `patterns: server RSS for ${label} unique patterns`,
      rssMb,
      "MB",
    );
    report.figure(
      "patterns: publish ack, no pattern in use",
      base.ack,
      "ms",
      `mean of ${without.length} windows (${listed(without)})`,
    );
    report.figure(
      `patterns: publish ack beside ${label} unique patterns`,
      loaded.ack,
      "ms",
      `mean of ${beside.length} windows (${listed(beside)})`,
    );
    report.figure(
      "patterns: publish ack, with / without",
      loaded.ack / base.ack,
      "x",
      "target: at most 1.2 (#19 item 4)",
    );
    report.figure(
      "patterns: publish-to-delivery p50, no pattern in use",
      base.p50,
      "ms",
    );
    report.figure(
      `patterns: publish-to-delivery p50 beside ${label} unique patterns`,
      loaded.p50,
      "ms",
    );
    report.figure(
      "patterns: publish-to-delivery p50, with / without",
      loaded.p50 / base.p50,
      "x",
      "target: at most 1.2 (#19 item 4)",
    );
  } finally {
    subscriber.close();
  }
}

/** The unique-patterns section. */
export const patternsScenario: Scenario = { name: "patterns", run };
