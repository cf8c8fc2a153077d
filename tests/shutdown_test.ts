// The drain's steps against the grace, on a hand-driven clock: when what is
// left is cancelled, and when stopServer() returns, in the clock's time.
import assert from "node:assert/strict";
import { MemoryBroker } from "../lib/bus/broker.ts";
import { Hub } from "../lib/bus/hub.ts";
import { Logger } from "../lib/log.ts";
import { stopServer } from "../lib/server/shutdown.ts";
import { ManualClock } from "../testing/manual_clock.ts";

/**
 * Stops a server of one transport whose calls and connections are done
 * when `closed` resolves, with `graceMs` on `clock`: what happened, at how
 * many ms on `clock` after the start, and the log's lines.
 */
function stop(clock: ManualClock, closed: Promise<void>, graceMs: number) {
  const start = clock.now();
  const events: string[] = [];
  const at = (what: string) => {
    events.push(`${what} at ${clock.now() - start}`);
  };
  const lines: string[] = [];
  const stopping = stopServer(
    {
      transports: [{
        address: "127.0.0.1:50051",
        port: 50051,
        serving: (up) => at(`serving ${up}`),
        drain: () => at("drain"),
        close: () => closed.then(() => at("closed")),
        force: () => at("force"),
      }],
      hub: new Hub(new MemoryBroker<Uint8Array>()),
      tickers: Promise.resolve(),
      draining: new AbortController(),
      stopped: new AbortController(),
      log: new Logger({ write: (line) => lines.push(line) }),
    },
    graceMs,
    { clock },
  ).then(() => at("stopped"));
  return { stopping, events, lines };
}

Deno.test("stopServer() ends within the grace when a connection never closes: what is left is cancelled at the start of its last second, and the wait for it ends with the grace", async () => {
  const clock = new ManualClock();
  const { stopping, events, lines } = stop(clock, new Promise(() => {}), 3000);
  await clock.advance(2999);
  assert.deepEqual(events, ["drain at 0", "force at 2000"]);
  await clock.advance(1);
  await stopping;
  assert.deepEqual(events, ["drain at 0", "force at 2000", "stopped at 3000"]);
  assert.match(lines[0], /Grace period of 3000 ms over: cancelling open calls/);
  assert.match(lines[1], /Some connections did not close/);
  assert.equal(clock.pending, 0);
});

Deno.test("stopServer() with a grace under 2 s keeps its second half for the forced end", async () => {
  const clock = new ManualClock();
  const { stopping, events } = stop(clock, new Promise(() => {}), 300);
  await clock.advance(300);
  await stopping;
  assert.deepEqual(events, ["drain at 0", "force at 150", "stopped at 300"]);
});

Deno.test("stopServer() returns as soon as the calls are done within the grace, cancelling nothing", async () => {
  const clock = new ManualClock();
  const { stopping, events, lines } = stop(clock, clock.sleep(200), 1500);
  await clock.advance(200);
  await stopping;
  assert.deepEqual(events, ["drain at 0", "closed at 200", "stopped at 200"]);
  assert.deepEqual(lines, []);
  assert.equal(clock.pending, 0);
});
