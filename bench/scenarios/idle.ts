/**
 * `BENCH_ONLY=idle`: RSS per idle subscription, `BENCH_IDLE_SUBSCRIBERS`
 * (20,000) of them on a topic nobody publishes on, against a server whose
 * hub never ticks.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Scenario } from "../bench.ts";
import { subscribeAll } from "../fan_out.ts";
import { rssKb } from "../resources.ts";
import { envNumber } from "../settings.ts";
import { spawnServer } from "../../testing/process.ts";

/** Idle subscribers (`BENCH_IDLE_SUBSCRIBERS`). */
const IDLE = envNumber("BENCH_IDLE_SUBSCRIBERS", 20_000);

async function run({ report }: Bench): Promise<void> {
  const { process: server, target } = await spawnServer([
    "--interval",
    "3600000",
    "--max-subscribers",
    String(Math.max(IDLE, 20_000)),
    "--max-subscribers-per-peer",
    String(Math.max(IDLE, 20_000)),
  ]);
  await using _ = server;
  const pid = server.child.pid;
  await delay(500); // the server's start settles before the first reading
  const before = rssKb(pid);
  const pool = await subscribeAll(report, {
    target,
    subscribers: IDLE,
    label: "greeter idle",
  });
  try {
    await delay(1000);
    report.figure(
      `memory per idle subscriber (${IDLE.toLocaleString("en-US")})`,
      (rssKb(pid) - before) / IDLE,
      "KB",
    );
    report.figure(
      `server RSS with ${IDLE.toLocaleString("en-US")} idle subscribers`,
      rssKb(pid) / 1024,
      "MB",
    );
  } finally {
    pool.close();
  }
}

/** The idle memory section. */
export const idleScenario: Scenario = { name: "idle", run };
