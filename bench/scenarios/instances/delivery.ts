/**
 * Publish-to-delivery latency and throughput: publish on instance A,
 * subscribers on instance B, one nats-server behind them, against the
 * memory broker (publisher and subscribers on its one instance), at each
 * of `BENCH_INSTANCE_PACES`.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench } from "../../bench.ts";
import { preciseNow, SubscriberPool } from "../../pool.ts";
import type { Report } from "../../report.ts";
import { cpuSeconds, measureCosts } from "../../resources.ts";
import { envList, envNumber, SECONDS, WARM_UP_MS } from "../../settings.ts";
import { startNatsServer } from "../../../testing/nats.ts";
import { LineProcess, scriptArgs } from "../../../testing/process.ts";
import { instanceFlags } from "./flags.ts";

/** Subscribers (`BENCH_INSTANCE_SUBSCRIBERS`): few, so the broker, not the fan-out, is measured. */
const SUBSCRIBERS = envNumber("BENCH_INSTANCE_SUBSCRIBERS", 10);
/** Paces (`BENCH_INSTANCE_PACES`; see `bench/publisher.ts`). */
const PACES = envList("BENCH_INSTANCE_PACES", "rate=1000,max=32");

/** Publishes acknowledged and refused so far, their summed ack time, and when: a stamping publisher's last report. */
function publisherCounts(publisher: LineProcess) {
  for (let i = publisher.stdout.length - 1; i >= 0; i--) {
    const match = publisher.stdout[i].match(
      /^acked (\d+) (\S+) (\d+) (\S+)$/,
    );
    if (match) {
      const [acked, ackMs, failed, at] = match.slice(1).map(Number);
      return { acked, ackMs, failed, at };
    }
  }
  return { acked: 0, ackMs: 0, failed: 0, at: preciseNow() };
}

/** One setup {@linkcode deliveryRun} measures. */
interface DeliverySetup {
  /** Names the rows. */
  name: string;
  /** Where the publisher publishes. */
  publishTarget: string;
  /** Where the subscribers subscribe. */
  subscribeTarget: string;
  /** The greeters and nats-server, for their CPU. */
  pids: number[];
  /** The publisher's pace: `rate=1000`, `max=32`. */
  pace: string;
}

/** What {@linkcode deliveryRun} found. */
interface Delivery {
  /** Events/s each subscriber received. */
  rate: number;
  /** Latency from the payload's send time, ms. */
  p50: number;
  p99: number;
}

/**
 * Publish-to-delivery through one setup: a stamping publisher at `pace` on
 * `publishTarget`, `BENCH_INSTANCE_SUBSCRIBERS` subscribers on
 * `subscribeTarget`. Reports the stream's rate as each subscriber sees it,
 * what the publisher had acknowledged, the latency from each payload's send
 * time, and the CPU of `pids`.
 */
async function deliveryRun(
  report: Report,
  { name, publishTarget, subscribeTarget, pids, pace }: DeliverySetup,
): Promise<Delivery> {
  const pool = new SubscriberPool(subscribeTarget, {
    subscribers: SUBSCRIBERS,
    connections: 1,
    method: "Subscribe",
    topics: ["latency"],
    latencyFrom: "payload",
  });
  try {
    await pool.start();
    // Its own process, as in the broadcast figure.
    await using publisher = new LineProcess(
      scriptArgs(
        "client",
        "bench/publisher.ts",
        publishTarget,
        "latency",
        pace,
        "32",
      ),
    );
    await publisher.waitForLine("stdout", /^ready$/);
    await delay(WARM_UP_MS);
    pool.resetLatency();
    const before = pool.events;
    const published = publisherCounts(publisher);
    const publisherCpu = cpuSeconds(publisher.child.pid);
    const done = measureCosts(pids);
    await delay(SECONDS * 1000);
    const costs = done();
    const after = publisherCounts(publisher);
    const acked = after.acked - published.acked;
    const rate = (pool.events - before) / costs.wall / SUBSCRIBERS;
    report.figure(
      `${name}: delivered`,
      rate,
      "events/s",
      `to each of ${SUBSCRIBERS} subscribers`,
    );
    report.figure(
      `${name}: acknowledged`,
      acked / ((after.at - published.at) / 1000),
      "publishes/s",
      `mean ack ${
        (acked ? (after.ackMs - published.ackMs) / acked : NaN).toFixed(2)
      } ms, ${after.failed - published.failed} refused`,
    );
    report.latency(name, pool);
    report.figure(
      `${name}: servers CPU`,
      costs.serverCpu,
      "% of a core",
      "greeter(s) and nats-server",
    );
    report.figure(
      `${name}: subscribers' and publisher's CPU`,
      costs.generatorCpu +
        ((cpuSeconds(publisher.child.pid) - publisherCpu) / costs.wall) * 100,
      "% of a core",
    );
    report.machine(name, costs);
    return {
      rate,
      p50: pool.percentile(0.5),
      p99: pool.percentile(0.99),
    };
  } finally {
    pool.close();
  }
}

/**
 * The memory broker on one instance, then JetStream across two, at each
 * pace; reports JetStream's rate and latency over the memory broker's.
 *
 * @example
 * ```ts ignore
 * import { Bench } from "../../bench.ts";
 * import { instancesDelivery } from "./delivery.ts";
 * await using bench = new Bench();
 * await instancesDelivery(bench);
 * ```
 */
export async function instancesDelivery(bench: Bench): Promise<void> {
  const { report } = bench;
  const memory: Delivery[] = [];
  {
    const server = await bench.spawnGreeter(instanceFlags());
    await using _ = server.process;
    for (const pace of PACES) {
      memory.push(
        await deliveryRun(report, {
          name: `memory broker, 1 instance, ${pace}`,
          publishTarget: server.target,
          subscribeTarget: server.target,
          pids: [server.process.child.pid],
          pace,
        }),
      );
    }
  }
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, ...instanceFlags()];
  const a = await bench.spawnGreeter(flags);
  await using _a = a.process;
  const b = await bench.spawnGreeter(flags);
  await using _b = b.process;
  for (const [i, pace] of PACES.entries()) {
    const shared = await deliveryRun(report, {
      name: `JetStream, publish on A, subscribers on B, ${pace}`,
      publishTarget: a.target,
      subscribeTarget: b.target,
      pids: [a.process.child.pid, b.process.child.pid, nats.process.child.pid],
      pace,
    });
    report.figure(
      `${pace}: JetStream / memory, delivered rate`,
      shared.rate / memory[i].rate,
      "x",
    );
    report.figure(
      `${pace}: JetStream / memory, latency p50`,
      shared.p50 / memory[i].p50,
      "x",
      `${shared.p50} ms / ${memory[i].p50} ms`,
    );
    report.figure(
      `${pace}: JetStream / memory, latency p99`,
      shared.p99 / memory[i].p99,
      "x",
      `${shared.p99} ms / ${memory[i].p99} ms`,
    );
  }
}
