// One process over several workers (lib/server/workers/): one sequence, one
// server to the outside, supervised. The bus's own tests also run over two
// workers (bus_test.ts); these are what only workers do.
import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { follow, type FollowMessage } from "../lib/client/follow.ts";
import { HeldStreams, startWorkersServer, waitFor } from "../testing/server.ts";
import { AccessControl } from "../lib/access/access.ts";
import { JetStreamBroker } from "../lib/bus/nats/jetstream_broker.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { Logger } from "../lib/log.ts";

const HOUR = 3_600_000;
const text = new TextEncoder();

/** A client on a connection of its own (grpc-js would share one by target). */
function ownConnection(target: string): GreeterClient {
  return new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
}

Deno.test("a worker killed under load is replaced; its subscribers resume by cursor: nothing lost, nothing twice", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR },
    2,
  );
  const followers = Array.from({ length: 8 }, () => ownConnection(t.target));
  using publisher = ownConnection(t.target);
  const stop = new AbortController();
  /** Per follower: seqs of the events read, and whatever else it was told. */
  const read: number[][] = followers.map(() => []);
  const told: FollowMessage[][] = followers.map(() => []);
  const following = followers.map(async (client, i) => {
    for await (
      const message of follow(client, `f${i}`, {
        topics: ["news"],
        initialMs: 10,
        signal: stop.signal,
      })
    ) {
      if (message.kind === "event") read[i].push(message.cursor.seq);
      else told[i].push(message);
    }
  });
  try {
    await waitFor(
      "every follower subscribed",
      async () => (await t.server.stats()).size === followers.length,
      20_000,
    );
    // The worker holding most of them dies a third of the way through.
    const byWorker = await t.server.byWorker();
    const victim = [...byWorker].sort((a, b) => b[1].size - a[1].size)[0];
    assert.ok(victim[1].size > 0);
    /** Seqs of the publishes acknowledged. */
    const acknowledged: number[] = [];
    for (let n = 0; n < 600; n++) {
      if (n === 200) t.server.crash(victim[0]);
      // A publish the dead worker took may fail: try again (it may then be
      // two events, each delivered once).
      for (let attempt = 0;; attempt++) {
        try {
          const { cursor } = await publisher.publish(
            "news",
            text.encode(`${n}`),
          );
          acknowledged.push(cursor.seq);
          break;
        } catch (error) {
          if (attempt > 50) throw error;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    const last = acknowledged.at(-1)!;
    await waitFor(
      "every follower to read the last event",
      () => read.every((seqs) => seqs.at(-1) === last),
      20_000,
      () => `read up to ${read.map((seqs) => seqs.at(-1)).join(", ")}`,
    );
    assert.equal(t.server.replaced, 1);
    assert.ok(
      t.logs.some((l) =>
        new RegExp(`ERROR Worker ${victim[0]} died: .*Crashed on purpose`)
          .test(l)
      ),
      t.logs.join("\n"),
    );
    for (const [i, seqs] of read.entries()) {
      // In order, each once, every acknowledged one, no gap said or unsaid.
      assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b));
      const missing = acknowledged.filter((seq) => !seqs.includes(seq));
      assert.deepEqual(missing, [], `follower ${i} missed events`);
      assert.deepEqual(told[i].filter((m) => m.kind === "gap"), []);
      const resumed = told[i].filter((m) => m.kind === "subscribed").slice(1);
      for (const m of resumed) {
        assert.ok(m.kind === "subscribed" && m.recovered, JSON.stringify(m));
      }
    }
    const moved = told.filter((messages) =>
      messages.some((m) => m.kind === "reconnecting")
    );
    assert.equal(moved.length, victim[1].size, "its subscribers reconnected");
  } finally {
    stop.abort();
    await Promise.allSettled(following);
    for (const client of followers) client.close();
  }
});

Deno.test("workers are one server to the outside: one sequence, ids in join order, one listing, one presence", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR },
    2,
  );
  const clients = Array.from({ length: 8 }, () => ownConnection(t.target));
  const streams = clients.map((client, i) =>
    client.subscribe(`s${i}`, { topics: ["news"] })[Symbol.asyncIterator]()
  );
  try {
    const ids = [];
    for (const stream of streams) {
      const first = (await stream.next()).value!;
      assert.equal(first.kind, "subscribed");
      ids.push(first.subscriptionId);
    }
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
    const spread = [...(await t.server.byWorker()).values()].map((s) => s.size);
    assert.equal(spread.reduce((a, b) => a + b), 8);
    // Every subscriber reads the same events, whichever worker publishes.
    const seqs = [];
    for (const client of clients.slice(0, 4)) {
      seqs.push((await client.publish("news", text.encode("x"))).cursor.seq);
    }
    for (const stream of streams) {
      const got = [];
      for (let i = 0; i < seqs.length; i++) {
        const message = (await stream.next()).value!;
        assert.equal(message.kind, "event");
        got.push(message.cursor.seq);
      }
      assert.deepEqual(got, seqs);
    }
    // One listing, paged across workers in id order.
    const page1 = await clients[7].listSubscribers({ limit: 5 });
    assert.equal(page1.total, 8);
    assert.deepEqual(page1.subscribers.map((s) => s.subscriptionId), [
      1,
      2,
      3,
      4,
      5,
    ]);
    const page2 = await clients[0].listSubscribers({
      limit: 5,
      pageToken: page1.nextPageToken,
    });
    assert.deepEqual(page2.subscribers.map((s) => s.subscriptionId), [
      6,
      7,
      8,
    ]);
    assert.equal(page2.nextPageToken, "");
  } finally {
    for (const stream of streams) await stream.return?.(undefined);
    for (const client of clients) client.close();
  }
});

Deno.test("a worker's heartbeat carries the process's seq", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: 100 },
    2,
  );
  using client = ownConnection(t.target);
  const stream = client.subscribe("idle", { topics: ["quiet"] });
  try {
    assert.equal((await stream.next()).value?.kind, "subscribed");
    await client.publish("elsewhere", new Uint8Array());
    const { seq, epoch } = await t.server.stats();
    for (;;) {
      const { value } = await stream.next();
      assert.equal(value?.kind, "heartbeat");
      if (value.kind !== "heartbeat" || value.cursor.seq < seq) continue;
      assert.deepEqual(value.cursor, { epoch, seq });
      break;
    }
  } finally {
    await stream.return(undefined);
  }
});

Deno.test("a peer's limits are the process's, whichever workers its connections land on: subscriptions, patterns, connections", async () => {
  await using t = await startWorkersServer(
    {
      intervalMs: HOUR,
      heartbeatMs: HOUR,
      maxSubscribersPerPeer: 12,
      maxPatternsPerPeer: 3,
      maxConnectionsPerPeer: 14,
    },
    2,
  );
  const clients = Array.from({ length: 14 }, () => ownConnection(t.target));
  const held = new HeldStreams();
  try {
    for (let i = 0; i < 12; i++) void held.open(clients[i], `m${i}`);
    await waitFor("twelve", async () => (await t.server.stats()).size === 12);
    const spread = [...(await t.server.byWorker()).values()].map((s) => s.size);
    assert.ok(spread.every((n) => n > 0), `all on one worker: ${spread}`);
    await assert.rejects(
      held.open(clients[12], "m12"),
      (error: Error & { code?: string }) =>
        error.code === "RESOURCE_EXHAUSTED" &&
        /peer 127\.0\.0\.1 holds 12 subscriptions, the per-peer limit of 12/
          .test(error.message),
    );
    // One leaves: three patterns, on connections of either worker, fill
    // the peer's; a fourth is refused, a pattern in use is not.
    held.end(0);
    await waitFor("one left", async () => (await t.server.stats()).size === 11);
    const patterned = (client: GreeterClient, topics: string[]) =>
      client.subscribe("p", { topics })[Symbol.asyncIterator]().next();
    const opened = [];
    for (const [i, topic] of ["a.*", "b.*", "c.*"].entries()) {
      held.end(i + 1);
      await waitFor("room", async () => (await t.server.stats()).size < 11);
      opened.push(await patterned(clients[i + 1], [topic]));
    }
    held.end(4);
    await waitFor("room", async () => (await t.server.stats()).size < 11);
    await assert.rejects(
      patterned(clients[12], ["d.*"]),
      (error: Error & { code?: string }) =>
        error.code === "RESOURCE_EXHAUSTED" &&
        /uses 3 distinct topic patterns and this adds 1, over the per-peer limit of 3/
          .test(error.message),
    );
    assert.equal(
      (await patterned(clients[12], ["a.*"])).value?.kind,
      "subscribed",
    );
    // The fourteenth connection is the peer's last.
    assert.equal(await clients[13].sayHello("14th"), "Hello, 14th!");
    using fifteenth = ownConnection(t.target);
    await assert.rejects(
      fifteenth.sayHello("15th", { timeoutMs: 5000 }),
      (error: Error & { code?: string }) => error.code === "UNAVAILABLE",
    );
    await waitFor(
      "the refusal said",
      () =>
        t.logs.some((l) =>
          /Refused a connection: 127\.0\.0\.1 holds 14 connections, its share of 14/
            .test(l)
        ),
    );
    assert.equal(opened.length, 3);
  } finally {
    await held[Symbol.asyncDispose]();
    for (const client of clients) client.close();
  }
});

Deno.test("--max-subscribers and --max-connections count every worker's", async () => {
  await using t = await startWorkersServer(
    {
      intervalMs: HOUR,
      maxSubscribers: 6,
      maxConnections: 8,
      maxConnectionsPerPeer: 8, // every connection here is one peer's
    },
    2,
  );
  const clients = Array.from({ length: 8 }, () => ownConnection(t.target));
  const held = new HeldStreams();
  try {
    for (let i = 0; i < 6; i++) void held.open(clients[i], `s${i}`);
    await waitFor("six", async () => (await t.server.stats()).size === 6);
    await assert.rejects(
      clients[6].streamReply("s6").next(),
      (error: Error & { code?: string }) =>
        error.code === "RESOURCE_EXHAUSTED" &&
        /at its limit of 6 subscribers/.test(error.message),
    );
    // Seven connections are open (one refused call's too); the eighth is the
    // last the process takes, the ninth is closed at once.
    assert.equal(await clients[7].sayHello("8th"), "Hello, 8th!");
    using ninth = ownConnection(t.target);
    await assert.rejects(
      ninth.sayHello("9th", { timeoutMs: 5000 }),
      (error: Error & { code?: string }) => error.code === "UNAVAILABLE",
    );
    // Said by the worker that refused it, written here once it arrives.
    await waitFor(
      "the refusal said",
      () => t.logs.some((l) => /Connection limit of 8 reached/.test(l)),
    );
  } finally {
    await held[Symbol.asyncDispose]();
    for (const client of clients) client.close();
  }
});

/** The value of the sample `series` in `page`, or undefined. */
function sample(page: string, series: string): number | undefined {
  const line = page.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("one /metrics: the workers' counts summed, the process's own once, nothing counted lost with a worker", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR, metricsPort: 0 },
    2,
  );
  const scrape = async () =>
    await (await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`))
      .text();
  const clients = Array.from({ length: 6 }, () => ownConnection(t.target));
  const streams = clients.map((client, i) =>
    client.subscribe(`s${i}`, { topics: ["news"] })[Symbol.asyncIterator]()
  );
  try {
    for (const stream of streams) await stream.next();
    for (const client of clients) await client.sayHello("x");
    await clients[0].publish("news", text.encode("n"));
    const hello =
      'greeter_rpcs_total{transport="grpc",method="/helloworld.Greeter/SayHello",code="OK"}';
    const page = await scrape();
    assert.equal(sample(page, "greeter_subscribers"), 6);
    assert.equal(sample(page, hello), 6);
    assert.equal(sample(page, "greeter_workers"), 2);
    const { published } = await t.server.stats();
    assert.equal(sample(page, "greeter_events_published_total"), published);
    assert.equal(
      page.split("\n").filter((l) =>
        l.startsWith("process_resident_memory_bytes ")
      ).length,
      1,
    );
    // A worker dies: what it counted stays in the sums.
    const byWorker = await t.server.byWorker();
    const victim = [...byWorker].find(([, s]) => s.size > 0)![0];
    t.server.crash(victim);
    await waitFor("the replacement", async () => {
      const now = await scrape();
      return sample(now, "greeter_workers_replaced_total") === 1 &&
        (await t.server.byWorker()).size === 2;
    }, 20_000);
    const after = await scrape();
    assert.ok(sample(after, hello)! >= 6, after);
  } finally {
    for (const stream of streams) await stream.return?.(undefined);
    for (const client of clients) client.close();
  }
});

Deno.test("a token file reloaded is in force in every worker; refusals are the process's lines", async () => {
  const old = "old-token-0123456789abcdef";
  const renewed = "new-token-0123456789abcdef";
  const log = new Logger({ write: () => {} });
  const access = new AccessControl([old], { log });
  await using t = await startWorkersServer({ access, intervalMs: HOUR }, 2);
  // Connections of their own, so that both workers answer.
  const withToken = (token: string) =>
    Array.from({ length: 6 }, () =>
      new GreeterClient(t.target, {
        token,
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      }));
  const before = withToken(old);
  const after = withToken(renewed);
  try {
    for (const client of before) {
      assert.equal(await client.sayHello("a"), "Hello, a!");
    }
    access.replace([renewed]);
    await waitFor("the new token in force everywhere", async () => {
      const answers = await Promise.allSettled(
        after.map((client) => client.sayHello("b")),
      );
      return answers.every((a) => a.status === "fulfilled");
    });
    for (const client of before) {
      await assert.rejects(
        client.sayHello("a"),
        (error: Error & { code?: string }) => error.code === "UNAUTHENTICATED",
      );
    }
    await waitFor(
      "the refusal said",
      () =>
        t.logs.some((l) =>
          /WARN Refused a call: missing or invalid bearer token/.test(l)
        ),
    );
  } finally {
    for (const client of [...before, ...after]) client.close();
  }
});

Deno.test("over workers: a start position and StreamInfo read the process's one window, and a retried publish counts once", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR },
    2,
  );
  using client = ownConnection(t.target);
  for (const payload of ["a", "b", "c"]) {
    await client.publish("news", text.encode(payload), {
      idempotencyKey: `key-${payload}`,
    });
  }
  await client.publish("news", text.encode("a"), { idempotencyKey: "key-a" });
  // The retry is the first "a": no event of its own.
  assert.equal((await t.server.stats()).published, 3);
  const info = await client.streamInfo();
  assert.equal(info.store, "memory");
  assert.equal(info.lastSeq, 3);
  assert.equal(info.events, 3);
  const read: string[] = [];
  for await (
    const message of client.subscribe("s", {
      topics: ["news"],
      start: { last: 2 },
    })
  ) {
    if (message.kind !== "event") continue;
    assert.ok(message.replayed);
    read.push(new TextDecoder().decode(message.payload));
    if (read.length === 2) break;
  }
  assert.deepEqual(read, ["b", "c"]);
});

Deno.test({
  name:
    "over workers on JetStream, a resume older than the shared window is read from the stream through the main thread, then from the window: nothing missed, nothing twice",
  ignore: natsServerMissing() !== undefined,
  async fn() {
    await using nats = await startNatsServer();
    const broker = await JetStreamBroker.connect({
      servers: [nats.url],
      maxEvents: 1_000,
      maxBytes: 1 << 20,
      maxAgeMs: 60_000,
      preload: 3,
    });
    try {
      await using t = await startWorkersServer(
        { broker, replaySize: 3, intervalMs: HOUR, heartbeatMs: HOUR },
        2,
      );
      using client = ownConnection(t.target);
      const cursors = [];
      for (let n = 1; n <= 10; n++) {
        cursors.push(
          (await client.publish("news", text.encode(`${n}`))).cursor,
        );
      }
      // The window holds the last 3: the 8 after the first come from the
      // stream (through the main thread's one connection), the rest from it.
      const stream = client.subscribe("late", {
        topics: ["news"],
        after: cursors[0],
      })[Symbol.asyncIterator]();
      try {
        const first = (await stream.next()).value!;
        assert.ok(first.kind === "subscribed" && first.recovered);
        const read = [];
        for (let i = 0; i < 9; i++) {
          const message = (await stream.next()).value!;
          assert.equal(message.kind, "event");
          read.push(new TextDecoder().decode(message.payload));
        }
        assert.deepEqual(read, ["2", "3", "4", "5", "6", "7", "8", "9", "10"]);
      } finally {
        await stream.return?.(undefined);
      }
    } finally {
      await broker.close();
    }
  },
});

Deno.test("a worker stuck (no answer to its pings) is said, not replaced, and the server fails: a stuck thread cannot be stopped, the process must", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR },
    2,
    { unresponsiveMs: 2_000 },
  );
  let failed: Error | undefined;
  t.server.failed.then((error) => failed = error);
  // Blocked past the test's end: asleep, it costs no CPU meanwhile.
  t.server.crash(1, { hangMs: 30_000 });
  await waitFor("the server to fail", () => failed !== undefined, 15_000);
  assert.match(
    failed!.message,
    /^Worker 1 answered no ping for 2 s: its event loop is stuck/,
  );
  assert.ok(
    t.logs.some((l) => /ERROR Worker 1 answered no ping for 2 s/.test(l)),
    t.logs.join("\n"),
  );
  assert.equal(t.server.replaced, 0);
  // The other answers on (a new connection, though, may be hashed to the
  // stuck one's listener, which accepts into a queue nobody reads).
  assert.deepEqual([...(await t.server.byWorker()).keys()], [0]);
});

Deno.test("a drain with a worker stuck before its pings tell ends: the last counts are not waited for from a worker that cannot answer", async () => {
  await using t = await startWorkersServer(
    { intervalMs: HOUR, heartbeatMs: HOUR },
    2,
  );
  // Blocked past the test's end, and stopped before the pings notice.
  t.server.crash(1, { hangMs: 30_000 });
  let stopped = false;
  const stopping = t.server.shutdown({ graceMs: 100 }).then(() => {
    stopped = true;
  });
  // Before, the shutdown waited for the stuck worker's counts: 30 s.
  await waitFor("the shutdown to end", () => stopped, 15_000);
  await stopping;
});
