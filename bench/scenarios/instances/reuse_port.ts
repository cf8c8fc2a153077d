/**
 * The broadcast fan-out (`BENCH_REUSE_SUBSCRIBERS`, one publish every
 * `BENCH_PUBLISH_MS`) served by two processes sharing one port with
 * `--reuse-port`, against one process; both on one nats-server.
 *
 * @module
 */

import type { Bench } from "../../bench.ts";
import type { FanOutRates } from "../../fan_out.ts";
import { envNumber } from "../../settings.ts";
import { startNatsServer } from "../../../testing/nats.ts";
import { broadcast } from "../broadcast.ts";

/** Broadcast subscribers (`BENCH_REUSE_SUBSCRIBERS`). */
const SUBSCRIBERS = envNumber("BENCH_REUSE_SUBSCRIBERS", 5000);

/**
 * One process, then two on one port; reports two's delivered, written and
 * written per server CPU over one's.
 *
 * @example
 * ```ts ignore
 * import { Bench } from "../../bench.ts";
 * import { instancesReusePort } from "./reuse_port.ts";
 * await using bench = new Bench();
 * await instancesReusePort(bench);
 * ```
 */
export async function instancesReusePort(bench: Bench): Promise<void> {
  const { report } = bench;
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, "--interval", "3600000"];
  let one: FanOutRates;
  {
    const server = await bench.spawnGreeter(flags);
    await using _ = server.process;
    one = await broadcast(report, {
      peer: {
        label: "JetStream, 1 process",
        target: server.target,
        pids: [server.process.child.pid],
        metricsPorts: [server.metricsPort],
      },
      subscribers: SUBSCRIBERS,
    });
  }
  const a = await bench.spawnGreeter([...flags, "--reuse-port"]);
  await using _a = a.process;
  const b = await bench.spawnGreeter([
    ...flags,
    "--reuse-port",
    "--port",
    String(a.port),
  ]);
  await using _b = b.process;
  const two = await broadcast(report, {
    peer: {
      label: "JetStream, 2 processes --reuse-port",
      target: a.target,
      pids: [a.process.child.pid, b.process.child.pid],
      metricsPorts: [a.metricsPort, b.metricsPort],
    },
    subscribers: SUBSCRIBERS,
  });
  const label = `broadcast ${
    SUBSCRIBERS.toLocaleString("en-US")
  }: 2 processes / 1 (--reuse-port)`;
  report.figure(
    `${label}, delivered`,
    two.delivered / one.delivered,
    "x",
    "the client's count: includes backlog caught in its window",
  );
  report.figure(
    `${label}, written`,
    two.written / one.written,
    "x",
    "the servers' count: the conservative one",
  );
  report.figure(
    `${label}, written per server CPU`,
    (two.written / two.serverCpu) / (one.written / one.serverCpu),
    "x",
    "near 1: a second process costs no more per message",
  );
}
