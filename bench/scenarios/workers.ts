/**
 * `BENCH_ONLY=workers`: one greeter process over 1, 2 and `auto` workers
 * (`--workers`), a fresh process each, under the tick fan-out (100 ticks a
 * second, the seed's personalised tick) and a broadcast (an event every
 * `BENCH_PUBLISH_MS`) to `BENCH_WORKERS_SUBSCRIBERS` (5,000) subscribers
 * over `BENCH_WORKERS_CONNECTIONS` (8) connections. Each reports what was
 * delivered, events per server CPU-second, KB per subscriber, the main
 * thread's CPU (over workers: the sequencer, the clock, the metrics; alone:
 * the whole server) and how the subscribers spread over the workers; then
 * the same-run ratios against one worker; the tick fan-out again at
 * `BENCH_WORKERS_SLOW_TICKS` (10) ticks a second, a pace one worker keeps
 * up with (events per CPU-second with no server behind); RSS per idle
 * subscriber, on average and at the margin; and, first, how the kernel
 * spreads `BENCH_WORKERS_CONNECTIONS` fresh connections over 2 workers.
 * While a contender is measured, the generator (this process, and the
 * broadcast's publisher) is pinned to the machine's last core, where it
 * has two or more (`BENCH_PIN=0` leaves it free): the servers' CPU is then
 * theirs alone.
 *
 * @module
 */

import { type Bench, greeterPeer, type Scenario } from "../bench.ts";
import type { FanOutRates } from "../fan_out.ts";
import { fanOutRow, quiesce } from "../fan_out.ts";
import { SubscriberPool } from "../pool.ts";
import { metrics } from "../metrics_page.ts";
import { rssOf } from "../resources.ts";
import type { FanOutPeer, PeerStarter } from "../peers.ts";
import type { Report } from "../report.ts";
import { envList, envNumber } from "../settings.ts";
import { broadcast } from "./broadcast.ts";
import { tickFanOut } from "./tick.ts";

/** Subscribers of each row (`BENCH_WORKERS_SUBSCRIBERS`). */
const SUBSCRIBERS = envNumber("BENCH_WORKERS_SUBSCRIBERS", 5000);

/** Connections they come over (`BENCH_WORKERS_CONNECTIONS`): few, as the shape. */
const CONNECTIONS = envNumber("BENCH_WORKERS_CONNECTIONS", 8);

/** The `--workers` values measured (`BENCH_WORKERS`), the first the reference. */
const WORKERS = envList("BENCH_WORKERS", "1,2,auto");

/** Ticks a second of the row every contender keeps up with (`BENCH_WORKERS_SLOW_TICKS`). */
const SLOW_TICKS = envNumber("BENCH_WORKERS_SLOW_TICKS", 10);

/** Trials of the spread row (`BENCH_WORKERS_SPREAD_TRIALS`): fresh connections each. */
const SPREAD_TRIALS = envNumber("BENCH_WORKERS_SPREAD_TRIALS", 40);

/** Whether to pin the generator (`BENCH_PIN`, default 1). */
const PIN = envNumber("BENCH_PIN", 1) === 1 &&
  navigator.hardwareConcurrency >= 2;

/** Sets the CPU affinity of every thread of this process to `cpus` (`taskset` syntax). */
async function pinGenerator(cpus: string): Promise<void> {
  const { success, stderr } = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", cpus, String(Deno.pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `Cannot pin the generator to CPU ${cpus}: ${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
}

/** A fresh greeter with `--workers workers` and `args`, labelled with its workers. */
function contender(
  bench: Bench,
  workers: string,
  args: string[],
): PeerStarter<FanOutPeer> {
  const label = `greeter --workers ${workers}`;
  return {
    label,
    async start(stack) {
      const greeter = await bench.spawnGreeter([
        ...args,
        "--workers",
        workers,
      ]);
      stack.use(greeter.process);
      return { ...greeterPeer(greeter), label };
    },
  };
}

/** Each worker's subscribers, as its metrics page says (empty for one alone). */
async function spread(peer: FanOutPeer): Promise<number[]> {
  const [port] = peer.metricsPorts ?? [];
  if (port === undefined) return [];
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [
    ...text.matchAll(
      /^greeter_worker_subscribers\{worker="(\d+)"\} (\d+)/gm,
    ),
  ].sort((a, b) => Number(a[1]) - Number(b[1])).map((m) => Number(m[2]));
}

/** What one contender's run found. */
type Found = FanOutRates & { kbPerSubscriber: number };

/**
 * One row: each contender in turn (the generator pinned meanwhile), then
 * the ratios of each against the first: delivered, events per server
 * CPU-second, KB per subscriber.
 */
async function workersRow(
  bench: Bench,
  name: string,
  args: string[],
  run: (
    peer: FanOutPeer,
    onSubscribed: () => Promise<void>,
  ) => Promise<Found>,
): Promise<void> {
  const report = bench.report;
  const found = new Map<string, Found>();
  const last = String(navigator.hardwareConcurrency - 1);
  await fanOutRow(bench, {
    name,
    contenders: WORKERS.map((workers) => contender(bench, workers, args)),
    run: async (peer) => {
      if (PIN) await pinGenerator(last);
      try {
        const rates = await run(peer, async () => {
          const split = await spread(peer);
          if (split.length === 0) return;
          report.set(`${peer.label} ${name}: subscribers per worker`, split);
          report.row(
            `${peer.label} ${name}: subscribers per worker`,
            split.join(" / "),
            `as the kernel spread ${CONNECTIONS} connections`,
          );
        });
        found.set(peer.label, rates);
        perContender(report, `${peer.label} ${name}`, rates);
        return rates.delivered;
      } finally {
        if (PIN) await pinGenerator(`0-${last}`);
      }
    },
  });
  const [reference, ...others] = [...found];
  if (!reference) return;
  for (const [label, rates] of others) {
    const ratio = (what: string, ours: number, theirs: number, note = "") =>
      report.figure(
        `${name}: ${label} / ${reference[0]}: ${what}`,
        ours / theirs,
        "x",
        note,
      );
    ratio(
      "events per server CPU-second",
      perCpuSecond(rates),
      perCpuSecond(reference[1]),
      "at least 0.9: nothing lost to the workers' coordination",
    );
    ratio(
      "KB per subscriber",
      rates.kbPerSubscriber,
      reference[1].kbPerSubscriber,
      "at most 1: a subscriber costs no more over workers",
    );
  }
}

/**
 * Events that arrived per CPU-second of the server's processes, both over
 * the window: the events published in it arrive up to seconds after it
 * from a server that is behind, written with CPU the window does not see
 * (counted so, a contender seconds behind looked 4x as frugal).
 */
function perCpuSecond(rates: FanOutRates): number {
  return rates.received / Math.max(rates.serverCpu / 100, 1e-9);
}

/** The figures of one contender that the shared fan-out does not report. */
function perContender(report: Report, label: string, rates: Found): void {
  report.figure(
    `${label}: events per server CPU-second`,
    perCpuSecond(rates),
    "events/s",
    `${
      PIN ? "generator pinned to the last core; " : ""
    }arrived in the window (backlog included) over the server's CPU in it`,
  );
  report.figure(
    `${label}: main thread CPU`,
    rates.mainThreadCpu,
    "% of a core",
    "over workers: the sequencer, the clock's ticks and /metrics; alone: the whole server",
  );
}

/**
 * RSS per subscriber, idle, at `SUBSCRIBERS`: on average since before any
 * subscribed, and at the margin (the second half's alone, once each
 * worker's heap has grown to its load: what one more subscriber costs).
 */
async function memoryRow(bench: Bench, name: string): Promise<void> {
  const report = bench.report;
  const found = new Map<
    string,
    {
      average: number;
      marginal: number;
      heapAverage: number;
      heapMarginal: number;
    }
  >();
  const half = Math.floor(SUBSCRIBERS / 2);
  for (const workers of WORKERS) {
    const starter = contender(bench, workers, ["--interval", "3600000"]);
    try {
      await using stack = new AsyncDisposableStack();
      const peer = await starter.start(stack);
      const heap = async () =>
        (await metrics(["deno_heap_used_bytes"], peer.metricsPorts ?? []))[0] /
        1024;
      const before = rssOf(peer.pids);
      const heapBefore = await heap();
      const pools = [0, 1].map(() =>
        new SubscriberPool(peer.target, {
          subscribers: half,
          connections: Math.max(1, Math.round(CONNECTIONS / 2)),
          method: "Subscribe",
        })
      );
      stack.defer(() => {
        for (const pool of pools) pool.close();
      });
      await pools[0].start();
      const middle = rssOf(peer.pids);
      const heapMiddle = await heap();
      await pools[1].start();
      const after = rssOf(peer.pids);
      const heapAfter = await heap();
      const average = (after - before) / (2 * half);
      const marginal = (after - middle) / half;
      const heapAverage = (heapAfter - heapBefore) / (2 * half);
      const heapMarginal = (heapAfter - heapMiddle) / half;
      found.set(starter.label, {
        average,
        marginal,
        heapAverage,
        heapMarginal,
      });
      report.figure(
        `${starter.label} ${name}: RSS with no subscriber`,
        before / 1024,
        "MB",
        "what the process costs before its first subscriber",
      );
      report.figure(
        `${starter.label} ${name}: KB per subscriber`,
        average,
        "KB",
      );
      report.figure(
        `${starter.label} ${name}: KB per subscriber, marginal`,
        marginal,
        "KB",
        `the second ${half.toLocaleString("en-US")} alone`,
      );
      report.figure(
        `${starter.label} ${name}: V8 heap used per subscriber`,
        heapAverage,
        "KB",
        "every isolate's, summed: what a subscriber holds, without each heap's slack",
      );
      report.figure(
        `${starter.label} ${name}: V8 heap used per subscriber, marginal`,
        heapMarginal,
        "KB",
      );
      for (const pool of pools) pool.close(); // before the quiet wait
      await quiesce(report, {
        pids: peer.pids,
        label: `${starter.label} ${name}`,
      });
    } catch (error) {
      report.row(
        `${starter.label} ${name}`,
        "failed",
        String(error).split("\n")[0],
      );
    }
  }
  const [reference, ...others] = [...found];
  if (!reference) return;
  for (const [label, kb] of others) {
    report.figure(
      `${name}: ${label} / ${reference[0]}: KB per subscriber`,
      kb.average / reference[1].average,
      "x",
      "on average: each worker's heap grows on its own",
    );
    report.figure(
      `${name}: ${label} / ${reference[0]}: KB per subscriber, marginal`,
      kb.marginal / reference[1].marginal,
      "x",
      "at most 1: one more subscriber costs no more over workers",
    );
    report.figure(
      `${name}: ${label} / ${
        reference[0]
      }: V8 heap used per subscriber, marginal`,
      kb.heapMarginal / reference[1].heapMarginal,
      "x",
      "what a subscriber's own state costs, over workers",
    );
  }
}

/**
 * How the kernel's reuse-port hashing spreads `CONNECTIONS` connections
 * over 2 workers: `SPREAD_TRIALS` times, that many fresh connections each
 * with one subscription, split as each worker's metrics say; a figure per
 * split seen (the fewer first), and the share of the busiest worker on
 * average (0.5 is even).
 */
async function spreadRow(bench: Bench): Promise<void> {
  const name = `workers spread: ${CONNECTIONS} connections over 2 workers`;
  try {
    await using stack = new AsyncDisposableStack();
    const peer = await contender(bench, "2", ["--interval", "3600000"])
      .start(stack);
    const splits = new Map<string, number>();
    let busiest = 0;
    for (let trial = 0; trial < SPREAD_TRIALS; trial++) {
      const pool = new SubscriberPool(peer.target, {
        subscribers: CONNECTIONS,
        connections: CONNECTIONS,
        method: "Subscribe",
      });
      try {
        await pool.start(20_000);
        const split = (await spread(peer)).sort((a, b) => a - b);
        const key = split.join("/");
        splits.set(key, (splits.get(key) ?? 0) + 1);
        busiest += Math.max(...split) / CONNECTIONS / SPREAD_TRIALS;
      } finally {
        pool.close();
      }
      // Each trial starts from none (bounded: 5 s).
      for (let i = 0; i < 500 && sum(await spread(peer)) > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    for (const [split, count] of [...splits].sort()) {
      bench.report.figure(
        `${name}: split ${split}`,
        count,
        "trials",
        `of ${SPREAD_TRIALS}`,
      );
    }
    bench.report.figure(
      `${name}: the busiest worker's share`,
      busiest,
      "",
      "on average; 0.5 is even",
    );
  } catch (error) {
    bench.report.row(name, "failed", String(error).split("\n")[0]);
  }
}

/** The sum of `counts`. */
function sum(counts: number[]): number {
  return counts.reduce((a, b) => a + b, 0);
}

async function run(bench: Bench): Promise<void> {
  await spreadRow(bench);
  const shape = `${
    SUBSCRIBERS.toLocaleString("en-US")
  } over ${CONNECTIONS} connections`;
  await workersRow(
    bench,
    `workers tick fan-out ${shape}`,
    ["--interval", "10"],
    (peer, onSubscribed) =>
      tickFanOut(bench.report, {
        peer,
        subscribers: SUBSCRIBERS,
        connections: CONNECTIONS,
        onSubscribed,
      }),
  );
  // A pace one worker keeps up with: events per CPU-second with none
  // behind (behind, a server writes several events a write, and looks
  // frugal).
  await workersRow(
    bench,
    `workers tick fan-out ${shape} at ${SLOW_TICKS} ticks/s`,
    ["--interval", String(1000 / SLOW_TICKS)],
    (peer, onSubscribed) =>
      tickFanOut(bench.report, {
        peer,
        subscribers: SUBSCRIBERS,
        connections: CONNECTIONS,
        onSubscribed,
        ticksPerSecond: SLOW_TICKS,
      }),
  );
  await memoryRow(bench, `workers memory ${shape}, idle`);
  await workersRow(
    bench,
    `workers broadcast ${shape}`,
    ["--interval", "3600000"],
    (peer, onSubscribed) =>
      broadcast(bench.report, {
        peer,
        subscribers: SUBSCRIBERS,
        connections: CONNECTIONS,
        onSubscribed,
      }),
  );
}

/** The workers section: 1, 2 and `auto` workers in one run. */
export const workersScenario: Scenario = { name: "workers", run };
