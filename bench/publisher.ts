/**
 * A publisher for the bench, run as its own process so that the
 * subscribers' load in the bench's process cannot slow the offered rate:
 * `deno run … bench/publisher.ts TARGET TOPIC PACE PAYLOAD_BYTES [CA_FILE]`
 * publishes until killed (over TLS, trusting `CA_FILE`, when given), at one
 * of three paces:
 *
 * - `INTERVAL_MS` (a number): one event every `INTERVAL_MS` (drift-free;
 *   a tick late by a whole interval is skipped), each call on its own;
 * - `rate=N`: N events per second, counted from a fixed origin, so that
 *   late timers are caught up with (the broker's latency at a given rate);
 * - `max=K`: K calls in flight, each followed at once by the next (as fast
 *   as it goes).
 *
 * Each payload starts with its send time (float64 ms since the Unix epoch,
 * little-endian; see `stampedTime()` in `pool.ts`) when it has room for it.
 * Prints `ready` once the first publish was accepted, then every 250 ms
 * `acked N ACK_MS FAILED AT`: publishes acknowledged so far, the sum of
 * their acknowledgement times (ms), publishes refused so far, and when
 * (ms since the Unix epoch).
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import { GreeterClient } from "../lib/client/client.ts";
import { runTicker } from "../lib/bus/ticker.ts";
import { preciseNow } from "./pool.ts";

if (import.meta.main) {
  const [target, topic, pace, bytes, caFile] = Deno.args;
  // A fifth argument: the CA file of a server over TLS.
  using publisher = new GreeterClient(target, {
    tls: caFile === undefined ? undefined : { ca: Deno.readFileSync(caFile) },
  });
  const size = Number(bytes);
  let acked = 0;
  let ackMs = 0;
  let failed = 0;
  const publish = async () => {
    const payload = new Uint8Array(size);
    const sent = preciseNow();
    if (size >= 8) new DataView(payload.buffer).setFloat64(0, sent, true);
    try {
      await publisher.publish(topic, payload);
      acked++;
      ackMs += preciseNow() - sent;
    } catch {
      failed++;
    }
  };
  await publisher.publish(topic, new Uint8Array(size));
  console.log("ready");
  setInterval(
    () => console.log(`acked ${acked} ${ackMs} ${failed} ${preciseNow()}`),
    250,
  );
  const signal = new AbortController().signal; // runs until killed
  if (pace.startsWith("rate=")) {
    const perMs = Number(pace.slice(5)) / 1000;
    const start = performance.now();
    let sent = 0;
    for (;;) {
      const due = Math.floor((performance.now() - start) * perMs);
      for (; sent < due; sent++) publish();
      await delay(1);
    }
  } else if (pace.startsWith("max=")) {
    const loop = async () => {
      for (;;) await publish();
    };
    await Promise.all(Array.from({ length: Number(pace.slice(4)) }, loop));
  } else {
    await runTicker(() => void publish(), {
      intervalMs: Number(pace),
      signal,
    });
  }
}
