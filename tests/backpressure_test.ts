import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { ManualClock } from "../testing/manual_clock.ts";
import { LineProcess, taskArgs } from "../testing/process.ts";
import { RawH2 } from "../testing/raw_h2.ts";
import type { Hub } from "../lib/bus/hub.ts";
import type { ServerOptions } from "../lib/server/options.ts";
import {
  helloRequestFrame,
  stalledSubscriber,
  startTestServer,
  waitFor,
} from "../testing/server.ts";

/** Publishes `n` ticks in batches, letting the server write between them. */
async function flood(hub: Hub<Uint8Array>, n: number, batch = 200) {
  const tick = new Uint8Array(0);
  for (let i = 0; i < n; i++) {
    hub.publish("tick", tick);
    if (i % batch === batch - 1) await delay(1);
  }
}

/** A test server with small buffers and marks, on a hand-driven clock. */
function stallServer(options: ServerOptions = {}) {
  return startTestServer({
    clock: new ManualClock(),
    bufferSize: 64,
    writer: { highWater: 16 * 1024, pollMs: 10 },
    ...options,
  });
}

/**
 * A raw peer doing per-stream flow control, as grpc-go or Java peers can:
 * every stream starts with no window, and gets some only once `read()`.
 */
function windowlessPeer(port: number): Promise<RawH2> {
  return RawH2.connect(port, { initialWindowSize: 0 });
}

const STREAM_REPLY = "/helloworld.Greeter/SayHelloStreamReply";

Deno.test("a stalled subscriber holds back the server's writes; drop-oldest counts what it missed", async () => {
  await using t = await stallServer();
  const hub = t.server.hub;
  const peer = stalledSubscriber(t.target, "stalled");
  await waitFor("subscriber", () => hub.size === 1);

  await flood(hub, 20_000);
  const [info] = hub.subscriptions();
  // ~45 bytes per message: the 64 KiB window plus the 16 KiB mark hold
  // ~1,800 of them. Without a transport signal all 20,000 would be taken.
  assert.ok(info.delivered < 4_000, `delivered ${info.delivered}`);
  assert.ok(info.dropped > 15_000, `dropped ${info.dropped}`);
  assert.equal(info.buffered, 64);

  // Reading again: the backlog drains and the subscription goes on.
  peer.resume();
  await waitFor("buffer drained", () => hub.subscriptions()[0].buffered === 0);
  const before = hub.subscriptions()[0].delivered;
  await flood(hub, 10);
  await waitFor(
    "live again",
    () => hub.subscriptions()[0].delivered === before + 10,
  );
  peer.close();
  await waitFor("removal", () => hub.size === 0);
});

Deno.test("a stalled subscriber under the disconnect policy gets RESOURCE_EXHAUSTED", async () => {
  await using t = await stallServer({ bufferSize: 16, policy: "disconnect" });
  const hub = t.server.hub;
  const peer = stalledSubscriber(t.target, "stalled");
  await waitFor("subscriber", () => hub.size === 1);
  await flood(hub, 5_000);
  assert.equal(hub.size, 0);
  assert.ok(
    t.logs.some((l) =>
      l.includes('client "stalled" is leaving.') &&
      l.includes('reason="slow-consumer"')
    ),
  );
  peer.resume();
  await waitFor("trailers", () => peer.trailers !== undefined);
  assert.equal(peer.trailers!["grpc-status"], "8");
  assert.match(
    decodeURIComponent(String(peer.trailers!["grpc-message"])),
    /fell 16 events behind and was disconnected/,
  );
  peer.close();
});

Deno.test("a stalled stream cannot hide behind a busy sibling on its connection", async () => {
  await using t = await stallServer();
  const hub = t.server.hub;
  // Stream 3 gets window as it reads, stream 1 never.
  await using peer = await windowlessPeer(t.server.port);
  await peer.call(1, STREAM_REPLY, helloRequestFrame("s"));
  await peer.call(3, STREAM_REPLY, helloRequestFrame("b"));
  await peer.read(3);
  await waitFor("subscribers", () => hub.size === 2);
  // Slow enough for the reading sibling to keep up.
  await flood(hub, 20_000, 10);
  const stalled = hub.subscriptions().find((s) => s.id === 1)!;
  // ~40 bytes per message: the connection's mark (two streams) holds ~800.
  // Drained by its sibling's progress, a per-stream bound let all through.
  assert.ok(stalled.delivered < 5_000, `delivered ${stalled.delivered}`);
  assert.ok(stalled.dropped > 10_000, `dropped ${stalled.dropped}`);
  assert.ok(peer.received.get(3)! > 0);
  assert.equal(peer.received.get(1) ?? 0, 0);
});

Deno.test("a closed stream does not loosen the bound for a later stalled one", async () => {
  await using t = await stallServer();
  const hub = t.server.hub;
  await using peer = await windowlessPeer(t.server.port);
  // A reader takes ~800 KB, then resets its stream: all it wrote is gone.
  await peer.call(1, STREAM_REPLY, helloRequestFrame("a"));
  await peer.read(1);
  await waitFor("reader", () => hub.size === 1);
  await flood(hub, 20_000, 10);
  await waitFor(
    "reader caught up",
    () => hub.subscriptions()[0].buffered === 0,
  );
  await peer.reset(1);
  await waitFor("reader gone", () => hub.size === 0);
  // Then a stream that never reads, on the same connection.
  await peer.call(3, STREAM_REPLY, helloRequestFrame("s"));
  await waitFor("stalled subscriber", () => hub.size === 1);
  await flood(hub, 20_000);
  const [stalled] = hub.subscriptions();
  // Bounded: ~800. Credited with the closed reader's bytes: over 6,000.
  assert.ok(stalled.delivered < 3_000, `delivered ${stalled.delivered}`);
});

Deno.test("a finished call whose replies the peer reset does not wedge its siblings", async () => {
  await using t = await stallServer();
  const hub = t.server.hub;
  await using peer = await windowlessPeer(t.server.port);
  await peer.call(1, STREAM_REPLY, helloRequestFrame("b"));
  await peer.read(1);
  await waitFor("subscriber", () => hub.size === 1);
  // A bidi call with ~28 KiB of replies the peer never reads; the server
  // ends it with OK, its bytes still queued, then the peer resets it.
  const one = helloRequestFrame("n".repeat(100));
  const body = new Uint8Array(one.length * 250);
  for (let i = 0; i < 250; i++) body.set(one, i * one.length);
  await peer.call(3, "/helloworld.Greeter/SayHelloBidiStream", body);
  await flood(hub, 200, 10);
  await peer.reset(3);
  const before = peer.received.get(1) ?? 0;
  await flood(hub, 1000, 10);
  await waitFor(
    "the reading subscriber to keep receiving",
    () => (peer.received.get(1) ?? 0) > before + 20_000,
  );
});

Deno.test("a forced shutdown stops writers stuck on a connection that stays open", async () => {
  const t = await stallServer({
    bufferSize: undefined,
    writer: { highWater: 1024, pollMs: 10 },
  });
  await using peer = await windowlessPeer(t.server.port);
  await peer.call(1, STREAM_REPLY, helloRequestFrame("f"));
  await waitFor("subscriber", () => t.server.hub.size === 1);
  await flood(t.server.hub, 200);
  await t.server.shutdown({ graceMs: 100 });
  // The peer never reads nor closes: only the forced abort ends the writer.
  assert.equal(t.server.hub.size, 0);
  assert.ok(
    t.logs.some((l) => l.includes("Grace period of 100 ms over")),
  );
});

Deno.test("a frozen client process (SIGSTOP) holds back the server's writes", async () => {
  await using t = await stallServer();
  const hub = t.server.hub;
  const name = "z".repeat(256); // ~300-byte messages outgrow kernel buffers
  await using client = new LineProcess([
    ...taskArgs("client"),
    name,
    "--target",
    t.target,
    "--mode",
    "stream",
  ]);
  await waitFor("subscriber", () => hub.size === 1, 20_000);
  client.child.kill("SIGSTOP");
  try {
    // 24 MB offered: far beyond what loopback socket buffers absorb.
    await flood(hub, 80_000);
    const [info] = hub.subscriptions();
    assert.ok(info.delivered < 60_000, `delivered ${info.delivered}`);
    assert.ok(info.dropped > 20_000, `dropped ${info.dropped}`);
  } finally {
    client.child.kill("SIGCONT");
  }
});

Deno.test("calls made on a stalled subscriber's connection do not make room for it", async () => {
  await using t = await stallServer({
    writer: { highWater: 16 * 1024, pollMs: 10 },
  });
  const { hub } = t.server;
  await using peer = await windowlessPeer(t.server.port);
  await peer.call(1, STREAM_REPLY, helloRequestFrame("stalled"));
  await waitFor("the subscriber", () => hub.size === 1);
  await flood(hub, 5000);
  const written = () => hub.subscriptions()[0].delivered;
  const atBound = written();
  let id = 3;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 300; i++, id += 2) {
      await peer.call(
        id,
        "/helloworld.Greeter/SayHello",
        helloRequestFrame("u".repeat(100)),
      );
      await peer.read(id);
    }
    await waitFor("the replies", () => (peer.received.get(id - 2) ?? 0) > 0);
    await flood(hub, 5000);
  }
  // 1,200 replies of ~120 bytes went out on that connection: had they made
  // room, the stalled stream would have written ~140 KB (~2,400 ticks) more.
  // What the charges leave out (HPACK header bytes, ~23 per call) makes
  // ~25 KB (measured: 250-270 ticks of ~60 counted bytes).
  assert.ok(
    written() < atBound + 600,
    `the stalled stream wrote ${written() - atBound} more messages`,
  );
});
