/**
 * A publisher for the broadcast bench, run as its own process so that the
 * subscribers' load in the bench's process cannot slow the offered rate:
 * `deno run … bench/publisher.ts TARGET TOPIC INTERVAL_MS PAYLOAD_BYTES`
 * publishes one event every `INTERVAL_MS` (drift-free), each call in
 * flight on its own, until killed. Prints `ready` once the first publish
 * was accepted.
 *
 * @module
 */

import { GreeterClient } from "../lib/client/client.ts";
import { runTicker } from "../lib/bus/ticker.ts";

if (import.meta.main) {
  const [target, topic, intervalMs, bytes] = Deno.args;
  using publisher = new GreeterClient(target);
  const payload = new TextEncoder().encode("x".repeat(Number(bytes)));
  await publisher.publish(topic, payload);
  console.log("ready");
  await runTicker(() => {
    publisher.publish(topic, payload).catch(() => {});
  }, { intervalMs: Number(intervalMs), signal: new AbortController().signal });
}
