/**
 * `BENCH_ONLY=death`: 1,000 subscribers killed at once (their process)
 * during 10 ms ticks, 3 rounds: the time until the server lists none, and
 * how much of it came after the killed process was reaped (its sockets
 * close only when the kernel reaps it).
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Scenario } from "../bench.ts";
import { GreeterClient } from "../../lib/client/client.ts";
import { spawnServer, spawnSubscriberPool } from "../../testing/process.ts";

async function run({ report }: Bench): Promise<void> {
  const { process: server, target } = await spawnServer(["--interval", "10"]);
  await using _ = server;
  using client = new GreeterClient(target);
  const total: number[] = [];
  const afterReap: number[] = [];
  for (let round = 0; round < 3; round++) {
    await using pool = await spawnSubscriberPool(target, 1000, 20);
    const start = performance.now();
    pool.child.kill("SIGKILL");
    let reaped = 0;
    pool.child.status.then(() => reaped = performance.now());
    while ((await client.listSubscribers({ limit: 1 })).total > 0) {
      await delay(1);
    }
    const removed = performance.now();
    await pool.child.status;
    total.push(removed - start);
    afterReap.push(Math.max(0, removed - reaped));
  }
  const list = (times: number[]) => times.map((t) => Math.round(t)).join(", ");
  report.figure(
    "1,000 subscribers killed: removal time, worst of 3",
    Math.max(...total),
    "ms",
    list(total),
  );
  report.figure(
    "  of which after the killed process was reaped, worst of 3",
    Math.max(...afterReap),
    "ms",
    list(afterReap),
  );
}

/** The death-to-removal section. */
export const deathScenario: Scenario = { name: "death", run };
