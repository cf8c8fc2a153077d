/**
 * `BENCH_ONLY=soak` (it runs only when named): the multiplexed shape held
 * for `BENCH_SOAK_SECONDS` (60) against a fresh greeter: RSS per
 * subscriber sampled every 10 s (is it flat?), the V8 heap at the end, and
 * what was delivered over the whole time (the server's counter).
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Scenario } from "../bench.ts";
import { metric } from "../metrics_page.ts";
import { SubscriberPool } from "../pool.ts";
import { rssOf } from "../resources.ts";
import { envNumber } from "../settings.ts";
import { MULTIPLEXED, MULTIPLEXED_CONNECTIONS } from "./multiplexed.ts";

/** Seconds the soak holds the load (`BENCH_SOAK_SECONDS`). */
const SOAK_SECONDS = envNumber("BENCH_SOAK_SECONDS", 60);

async function run(bench: Bench): Promise<void> {
  const { report } = bench;
  await using stack = new AsyncDisposableStack();
  const greeter = await bench.spawnGreeter(["--interval", "10"]);
  stack.use(greeter.process);
  const pids = [greeter.process.child.pid];
  const ports = [greeter.metricsPort];
  const name = `soak: tick fan-out ${
    MULTIPLEXED.toLocaleString("en-US")
  } over ${MULTIPLEXED_CONNECTIONS} connections`;
  const rssBefore = rssOf(pids);
  const pool = new SubscriberPool(greeter.target, {
    subscribers: MULTIPLEXED,
    connections: MULTIPLEXED_CONNECTIONS,
    method: "SayHelloStreamReply",
  });
  stack.defer(() => pool.close());
  await pool.start();
  const perSubscriber = () => (rssOf(pids) - rssBefore) / MULTIPLEXED;
  const delivered = () => metric("greeter_events_delivered_total", ports);
  const samples = [perSubscriber()];
  const startedAt = performance.now();
  const deliveredAtStart = await delivered();
  for (let t = 10; t <= SOAK_SECONDS; t += 10) {
    await delay(startedAt + t * 1000 - performance.now());
    samples.push(perSubscriber());
  }
  const rate = ((await delivered()) - deliveredAtStart) * 1000 /
    (performance.now() - startedAt);
  const series = `${name}: KB per subscriber every 10 s`;
  report.set(series, samples);
  report.row(
    series,
    samples.map((value) => value.toFixed(1)).join(" / "),
    "RSS under this load, less the RSS before they subscribed",
  );
  report.figure(
    `${name}: KB per subscriber at the end`,
    samples.at(-1)!,
    "KB",
  );
  report.latency(name, pool);
  report.figure(`${name}: delivered`, rate, "events/s", "the server's counter");
  report.figure(
    `${name}: server V8 heap at the end`,
    (await metric("deno_heap_used_bytes", ports)) / 2 ** 20,
    "MB",
  );
}

/** The soak section: 60 s, so only when named. */
export const soakScenario: Scenario = {
  name: "soak",
  onlyWhenNamed: true,
  run,
};
