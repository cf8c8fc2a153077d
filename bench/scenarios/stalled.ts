/**
 * `BENCH_ONLY=stalled`: `BENCH_STALLED` (100) subscribers that stop reading
 * but stay connected, each offered 1 MB/s (1 KiB events, 1,000/s) for
 * `BENCH_STALLED_SECONDS` (20): the server's RSS growth, sampled every 5 s.
 *
 * @module
 */

import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Scenario } from "../bench.ts";
import { rssKb } from "../resources.ts";
import { connectionsFor, envNumber } from "../settings.ts";
import { runTicker } from "../../lib/bus/ticker.ts";
import { GreeterClient } from "../../lib/client/client.ts";
import { loadGreeterProto } from "../../lib/wire/proto.ts";
import { spawnServer } from "../../testing/process.ts";
import { grpcFrame, stalledCall } from "../../testing/server.ts";

/** Stalled subscribers (`BENCH_STALLED`). */
const STALLED = envNumber("BENCH_STALLED", 100);
/** Seconds they are measured (`BENCH_STALLED_SECONDS`). */
const STALLED_SECONDS = envNumber("BENCH_STALLED_SECONDS", 20);

async function run({ report }: Bench): Promise<void> {
  const { process: server, target } = await spawnServer([
    "--interval",
    "3600000",
    "--max-publish-size",
    "4096",
    // The replay window (bounded; 10,000 x 1 KiB events by default) would
    // fill during the measure: keep it small to see the subscribers' cost.
    "--replay-size",
    "1000",
  ]);
  await using _ = server;
  const pid = server.child.pid;
  const { service } = loadGreeterProto();
  const frame = grpcFrame(
    service.Subscribe.requestSerialize({ name: "stalled", topics: ["bench"] }),
  );
  const sessions = Array.from(
    { length: connectionsFor(STALLED) },
    () => http2.connect(`http://${target}`),
  );
  const peers = Array.from(
    { length: STALLED },
    (_, i) =>
      stalledCall(sessions[i % sessions.length], service.Subscribe.path, frame),
  );
  using publisher = new GreeterClient(target);
  const payload = new Uint8Array(1024);
  const stop = new AbortController();
  let published = 0;
  const publishing = runTicker(() => {
    for (let i = 0; i < 10; i++) {
      publisher.publish("bench", payload).then(() => published++, () => {});
    }
  }, { intervalMs: 10, signal: stop.signal });
  try {
    await delay(3000); // windows fill, buffers reach their bound
    const rssStart = rssKb(pid);
    const publishedStart = published;
    const samples: number[] = [];
    for (let t = 0; t < STALLED_SECONDS; t += 5) {
      await delay(Math.min(5, STALLED_SECONDS - t) * 1000);
      samples.push(Math.round((rssKb(pid) - rssStart) / 1024));
    }
    const growth = (rssKb(pid) - rssStart) / 1024;
    const sent = published - publishedStart;
    const offered = sent * 1024 * STALLED / 2 ** 20;
    report.figure(
      `RSS growth, ${STALLED} stalled subscribers, ${STALLED_SECONDS} s`,
      growth,
      "MB",
      `${Math.round(offered)} MB offered, ${
        (sent / STALLED_SECONDS / 1024).toFixed(2)
      } MB/s each; growth every 5 s: ${samples.join(", ")} MB`,
    );
  } finally {
    stop.abort();
    await publishing;
    for (const peer of peers) peer.close();
  }
}

/** The stalled subscribers section. */
export const stalledScenario: Scenario = { name: "stalled", run };
