import assert from "node:assert/strict";
import {
  GreeterClient,
  type SubscriptionMessage,
} from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import {
  backoffDelay,
  follow,
  type FollowMessage,
} from "../lib/client/follow.ts";
import type { ServerOptions } from "../lib/server/options.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { CuttableProxy } from "../testing/proxy.ts";
import {
  grpcFrame,
  settles,
  stalledCall,
  startBusServer,
  startTestServer,
  waitFor,
} from "../testing/server.ts";
import { type GreetingMessage, loadGreeterProto } from "../lib/wire/proto.ts";
import { Buffer } from "node:buffer";
import http2 from "node:http2";

const text = new TextEncoder();
const untext = new TextDecoder();
const HOUR = 3_600_000;

/** A server whose clock tick and heartbeat stay out of the way. */
function quietServer(options: ServerOptions = {}, workers = 1) {
  return startBusServer(
    { intervalMs: HOUR, heartbeatMs: HOUR, ...options },
    workers,
  );
}

/**
 * The tests of the bus that run on one thread and on two workers (one
 * sequence, one window, one server to the outside): the same assertions.
 */
const WORKERS = [1, 2];

/** Reads the next message of `stream`, failing if it has ended. */
async function next<T extends SubscriptionMessage | FollowMessage>(
  stream: AsyncIterator<T>,
): Promise<T> {
  const { done, value } = await stream.next();
  assert.ok(!done, "the stream ended");
  return value;
}

function payloadOf(message: SubscriptionMessage | FollowMessage): string {
  assert.equal(message.kind, "event");
  return untext.decode(message.payload);
}

for (const workers of WORKERS) {
  Deno.test(`Publish reaches subscribers of its topic with seq, epoch and publish time (workers: ${workers})`, async () => {
    await using t = await quietServer({}, workers);
    using client = new GreeterClient(t.target);
    const news = client.subscribe("reader", { topics: ["news"] });
    const first = await next(news);
    assert.equal(first.kind, "subscribed");
    assert.equal(first.recovered, false);
    assert.equal(first.reason, "");
    assert.equal(first.cursor.epoch, (await t.server.stats()).epoch);
    assert.equal(first.heartbeatIntervalMs, HOUR);

    const other = await client.publish("other", text.encode("not for news"));
    const published = await client.publish("news", text.encode("headline"));
    assert.equal(published.cursor.epoch, (await t.server.stats()).epoch);
    assert.equal(published.cursor.seq, other.cursor.seq + 1);
    const event = await next(news);
    assert.deepEqual(event, {
      kind: "event",
      cursor: published.cursor,
      timeMs: published.timeMs,
      topic: "news",
      payload: event.kind === "event" ? event.payload : undefined,
      replayed: false, // published after the subscription started
    });
    assert.equal(payloadOf(event), "headline");
    assert.ok(Math.abs(Date.now() - published.timeMs) < 60_000);
    await news.return(undefined);
    await waitFor(
      "the subscriber gone",
      async () => (await t.server.stats()).size === 0,
    );
  });
}

for (const workers of WORKERS) {
  Deno.test(`Publish refuses bad topics and oversized payloads with INVALID_ARGUMENT (workers: ${workers})`, async () => {
    await using t = await quietServer({ maxPublishBytes: 8 }, workers);
    using client = new GreeterClient(t.target);
    const cases: [string, Uint8Array, RegExp][] = [
      ["", new Uint8Array(), /Invalid topic ""/],
      ["has space", new Uint8Array(), /Invalid topic "has space"/],
      ["$presence", new Uint8Array(), /reserved/],
      // The clock's topic is the server's own too: a fake tick would reach
      // every SayHelloStreamReply subscriber.
      [
        "tick",
        new Uint8Array(),
        /Cannot publish on "tick": it is the server's clock/,
      ],
      ["news", new Uint8Array(9), /Payload is 9 bytes: at most 8/],
    ];
    for (const [topic, payload, message] of cases) {
      await assert.rejects(
        client.publish(topic, payload),
        (e: RpcError) =>
          e.code === "INVALID_ARGUMENT" && message.test(e.message),
      );
    }
    assert.equal((await t.server.stats()).published, 0);
    await assert.rejects(
      client.subscribe("x", { topics: ["bad topic"] }).next(),
      (e: RpcError) => e.code === "INVALID_ARGUMENT",
    );
    assert.equal((await t.server.stats()).size, 0);
  });
}

for (const workers of WORKERS) {
  Deno.test(`Subscribe after a cursor inside the window continues exactly, with no duplicate (workers: ${workers})`, async () => {
    await using t = await quietServer({ bufferSize: 2 }, workers);
    using client = new GreeterClient(t.target);
    const first = client.subscribe("a", { topics: ["news"] });
    await next(first);
    for (const n of [1, 2]) await client.publish("news", text.encode(`${n}`));
    assert.equal(payloadOf(await next(first)), "1");
    const seen = await next(first);
    assert.equal(seen.kind, "event");
    await first.return(undefined); // the subscriber goes away after "2"
    for (const n of [3, 4, 5, 6]) {
      await client.publish("news", text.encode(`${n}`));
    }
    const again = client.subscribe("a", {
      topics: ["news"],
      after: seen.cursor,
    });
    const subscribed = await next(again);
    assert.equal(subscribed.kind, "subscribed");
    assert.equal(subscribed.recovered, true);
    assert.deepEqual(subscribed.cursor, seen.cursor);
    const replayed = [];
    for (let i = 0; i < 4; i++) replayed.push(payloadOf(await next(again)));
    assert.deepEqual(replayed, ["3", "4", "5", "6"]);
    await client.publish("news", text.encode("7"));
    assert.equal(payloadOf(await next(again)), "7");
    await again.return(undefined);
    assert.equal((await t.server.stats()).resumesRecovered, 1);
  });
}

for (const workers of WORKERS) {
  Deno.test(`Subscribe after a cursor past the window or from another epoch is not recovered; one past the window starts with what is held (workers: ${workers})`, async () => {
    await using t = await quietServer({ replaySize: 4 }, workers);
    using client = new GreeterClient(t.target);
    for (let n = 1; n <= 8; n++) {
      await client.publish("news", text.encode(`${n}`));
    }
    const epoch = (await t.server.stats()).epoch;
    const cases = [
      // Too old: the four held follow (seq 5 to 8), not only live events.
      [
        { epoch, seq: 2 },
        /events after seq 2 through 4 are no longer held/,
        4,
      ],
      [{ epoch: "another", seq: 8 }, /"another" is not the server's/, "live"],
    ] as const;
    for (const [after, reason, from] of cases) {
      // Live: from the head (its own join is published after).
      const start = from === "live" ? (await t.server.stats()).seq : from;
      const stream = client.subscribe("late", { topics: ["news"], after });
      const subscribed = await next(stream);
      assert.equal(subscribed.kind, "subscribed");
      assert.equal(subscribed.recovered, false);
      assert.match(subscribed.reason, reason);
      assert.deepEqual(subscribed.cursor, { epoch, seq: start });
      if (from !== "live") {
        const first = await next(stream);
        assert.ok(first.kind === "event" && first.replayed, "replayed");
        assert.equal(first.cursor.seq, 5);
      }
      await stream.return(undefined);
      await waitFor(
        "its leave",
        async () => (await t.server.stats()).size === 0,
      );
    }
    assert.equal((await t.server.stats()).resumesMissed, 2);
  });
}

/** Publishes `n` events on "news" in batches; returns their seqs. */
async function flood(client: GreeterClient, n: number): Promise<number[]> {
  const seqs: number[] = [];
  const payload = text.encode("x".repeat(40));
  for (let i = 0; i < n; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 100); j++) {
      batch.push(client.publish("news", payload));
    }
    for (const { cursor } of await Promise.all(batch)) seqs.push(cursor.seq);
  }
  return seqs;
}

for (const workers of WORKERS) {
  Deno.test(`a subscriber that stops reading is told exactly which events it missed (drop-oldest) (workers: ${workers})`, async () => {
    await using t = await quietServer({
      bufferSize: 16,
      writer: { highWater: 4 * 1024, pollMs: 10 },
    }, workers);
    using publisher = new GreeterClient(t.target);
    using reader = new GreeterClient(t.target, {
      channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    });
    const stream = reader.subscribe("slow", { topics: ["news"] });
    await next(stream); // then stops reading
    const published = await flood(publisher, 3000);
    await waitFor("drops", async () => (await t.server.stats()).dropped > 0);
    const end = await publisher.publish("news", text.encode("end"));
    published.push(end.cursor.seq);

    const delivered: number[] = [];
    const gaps: { from: number; to: number; missed: number }[] = [];
    for (;;) {
      const message = await next(stream);
      if (message.kind === "gap") {
        assert.equal(message.reason, "slow-consumer");
        gaps.push({
          from: message.fromSeq,
          to: message.toSeq,
          missed: message.missed,
        });
      } else if (message.kind === "event") {
        delivered.push(message.cursor.seq);
        if (message.cursor.seq === end.cursor.seq) break;
      }
    }
    await stream.return(undefined);
    assert.ok(gaps.length > 0, "no gap reported");
    // Every published event was delivered once or fell in exactly one gap.
    const missed = published.filter((seq) =>
      gaps.some((g) => g.from <= seq && seq <= g.to)
    );
    assert.deepEqual(
      [...delivered, ...missed].sort((a, b) => a - b),
      published,
    );
    assert.deepEqual(delivered, [...delivered].sort((a, b) => a - b));
    assert.equal(
      gaps.reduce((sum, g) => sum + g.missed, 0),
      missed.length,
    );
    assert.equal((await t.server.stats()).dropped, missed.length);
  });
}

for (const workers of WORKERS) {
  Deno.test(`the disconnect policy ends a slow subscriber with Goodbye, then RESOURCE_EXHAUSTED (workers: ${workers})`, async () => {
    await using t = await quietServer({
      bufferSize: 16,
      policy: "disconnect",
      writer: { highWater: 4 * 1024, pollMs: 10 },
    }, workers);
    using publisher = new GreeterClient(t.target);
    // A raw peer: a grpc-js client drops the messages it has not handed to its
    // reader yet when an error status arrives, the Goodbye among them.
    const { service } = loadGreeterProto();
    const request = service.Subscribe.requestSerialize({
      name: "slow",
      topics: ["news"],
    });
    const peer = stalledCall(
      http2.connect(`http://${t.target}`),
      "/helloworld.Greeter/Subscribe",
      grpcFrame(request),
    );
    try {
      await waitFor(
        "the subscriber",
        async () => (await t.server.stats()).size === 1,
      );
      await flood(publisher, 3000);
      await waitFor(
        "the disconnect",
        async () => (await t.server.stats()).size === 0,
      );
      assert.equal((await t.server.stats()).slowConsumerDisconnects, 1);
      peer.resume();
      await waitFor("the end of the stream", () => peer.ended);
      assert.equal(peer.trailers!["grpc-status"], "8");
      assert.match(
        decodeURIComponent(String(peer.trailers!["grpc-message"])),
        /fell 16 events behind/,
      );
      const last = service.Subscribe.responseDeserialize(
        Buffer.from(peer.messages().at(-1)!),
      ) as GreetingMessage;
      assert.equal(last.shape_type, "goodbyeGreetingMessage");
      assert.equal(last.goodbyeGreetingMessage?.code, 8);
      assert.equal(last.goodbyeGreetingMessage?.reconnect, true);
      assert.match(last.goodbyeGreetingMessage!.reason!, /was disconnected/);
      await waitFor( // over workers, a worker's line comes a moment later
        "the leave said",
        () => t.logs.some((l) => /reason="slow-consumer"/.test(l)),
      );
    } finally {
      peer.close();
    }
  });
}

Deno.test("heartbeats reach an idle subscriber at the configured cadence, with a safe cursor", async () => {
  const clock = new ManualClock();
  const start = clock.now();
  await using t = await startTestServer({
    clock,
    intervalMs: HOUR,
    heartbeatMs: 1000,
  });
  using client = new GreeterClient(t.target);
  const stream = client.subscribe("idle", { topics: ["quiet"] });
  const first = await next(stream);
  assert.equal(first.kind, "subscribed");
  assert.equal(first.heartbeatIntervalMs, 1000);
  await waitFor("the subscriber", () => t.server.hub.size === 1);
  await client.publish("elsewhere", new Uint8Array());
  for (const at of [1000, 2000, 3000]) {
    await clock.advance(999);
    const pending = stream.next();
    await clock.advance(1);
    const { value } = await pending;
    assert.deepEqual(value, {
      kind: "heartbeat",
      cursor: { epoch: t.server.hub.epoch, seq: t.server.hub.seq },
      timeMs: start + at,
    });
  }
  await stream.return(undefined);
});

for (const workers of WORKERS) {
  Deno.test(`presence: ListSubscribers says who is subscribed; $presence carries joins and leaves (workers: ${workers})`, async () => {
    await using t = await quietServer({}, workers);
    using client = new GreeterClient(t.target);
    const watcher = client.subscribe("watcher", { topics: ["$presence"] });
    await next(watcher);
    const joined = JSON.parse(payloadOf(await next(watcher)));
    assert.deepEqual(joined, {
      action: "join",
      subscription_id: 1,
      name: "watcher",
      topics: ["$presence"],
    });
    const ann = client.subscribe("ann", { topics: ["news"] });
    await next(ann);
    assert.deepEqual(JSON.parse(payloadOf(await next(watcher))), {
      action: "join",
      subscription_id: 2,
      name: "ann",
      topics: ["news"],
    });
    const listed = await client.listSubscribers();
    assert.equal(listed.total, 2);
    assert.deepEqual(
      listed.subscribers.map((s) => [s.subscriptionId, s.name, s.topics]),
      [[1, "watcher", ["$presence"]], [2, "ann", ["news"]]],
    );
    const ofNews = await client.listSubscribers({ topic: "news", limit: 1 });
    assert.deepEqual(ofNews.subscribers.map((s) => s.name), ["ann"]);
    const ofEverything = await client.listSubscribers({ topic: "*" });
    assert.equal(ofEverything.total, 0); // neither asked for every topic
    await assert.rejects(
      client.listSubscribers({ limit: 5000 }),
      (e: RpcError) => e.code === "INVALID_ARGUMENT",
    );
    await ann.return(undefined);
    assert.deepEqual(JSON.parse(payloadOf(await next(watcher))), {
      action: "leave",
      subscription_id: 2,
      name: "ann",
      topics: ["news"],
      reason: "client-cancelled",
    });
    await watcher.return(undefined);
  });
}

for (const workers of WORKERS) {
  Deno.test(`a drain sends every subscriber Goodbye (reconnect, jittered), then OK (workers: ${workers})`, async () => {
    const t = await quietServer({ reconnectJitterMs: 500 }, workers);
    using client = new GreeterClient(t.target);
    const streams = [0, 1, 2].map((i) => client.subscribe(`s${i}`));
    for (const stream of streams) await next(stream);
    const stopped = t.server.shutdown({ graceMs: 5000 });
    for (const stream of streams) {
      const goodbye = await next(stream);
      assert.equal(goodbye.kind, "goodbye");
      assert.equal(goodbye.code, 14);
      assert.equal(goodbye.reconnect, true);
      assert.ok(
        goodbye.reconnectAfterMs >= 0 && goodbye.reconnectAfterMs < 500,
      );
      assert.match(goodbye.reason, /shutting down/);
      assert.equal((await stream.next()).done, true); // OK
    }
    await stopped;
    assert.ok(!t.logs.some((l) => /Grace period/.test(l)));
  });
}

for (const workers of WORKERS) {
  Deno.test(`follow() survives a network cut and resumes exactly where it left off (workers: ${workers})`, async () => {
    await using t = await quietServer({}, workers);
    await using proxy = new CuttableProxy({
      hostname: "127.0.0.1",
      port: t.server.port,
    });
    using publisher = new GreeterClient(t.target);
    using client = new GreeterClient(proxy.target);
    const controller = new AbortController();
    const seen: string[] = [];
    const messages = follow(client, "survivor", {
      topics: ["news"],
      initialMs: 10,
      signal: controller.signal,
    });
    const iterator = messages[Symbol.asyncIterator]();
    const subscribed = await iterator.next();
    assert.equal(subscribed.value?.kind, "subscribed");
    for (const n of [1, 2]) {
      await publisher.publish("news", text.encode(`${n}`));
      seen.push(payloadOf((await iterator.next()).value!));
    }
    await proxy.cut();
    await waitFor(
      "the server to notice",
      async () => (await t.server.stats()).size === 0,
    );
    for (const n of [3, 4]) {
      await publisher.publish("news", text.encode(`${n}`));
    }
    const reconnect: FollowMessage[] = [];
    for (;;) {
      const { value } = await iterator.next();
      if (value!.kind === "event") {
        seen.push(payloadOf(value!));
        break;
      }
      reconnect.push(value!);
    }
    seen.push(payloadOf((await iterator.next()).value!));
    assert.deepEqual(seen, ["1", "2", "3", "4"]);
    assert.equal(reconnect[0].kind, "reconnecting");
    const resumed = reconnect.at(-1)!;
    assert.equal(resumed.kind, "subscribed");
    assert.equal(resumed.recovered, true);
    controller.abort();
    assert.equal((await iterator.next()).done, true);
  });
}

Deno.test("follow() with several clients moves to the next at each reconnect, round the list, resuming from its cursor", async () => {
  await using t = await quietServer();
  const upstream = { hostname: "127.0.0.1", port: t.server.port };
  await using pathA = new CuttableProxy(upstream);
  await using pathB = new CuttableProxy(upstream);
  using publisher = new GreeterClient(t.target);
  using viaA = new GreeterClient(pathA.target);
  using viaB = new GreeterClient(pathB.target);
  const controller = new AbortController();
  const iterator = follow([viaA, viaB], "mover", {
    topics: ["news"],
    initialMs: 10,
    signal: controller.signal,
  })[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value?.kind, "subscribed");
  const seen: string[] = [];
  const moves: string[] = [];
  /** Reads until the event `payload`, noting where it reconnected to. */
  const readUntil = async (payload: string) => {
    for (let i = 0; i < 20; i++) {
      const { value } = await iterator.next();
      if (value!.kind === "reconnecting") moves.push(value!.target!);
      if (value!.kind === "subscribed") {
        assert.equal(value!.recovered, true, value!.reason);
      }
      if (value!.kind !== "event") continue;
      seen.push(payloadOf(value!));
      if (seen.at(-1) === payload) return;
    }
    throw new Error(`No event ${payload}`);
  };
  await publisher.publish("news", text.encode("1"));
  await readUntil("1");
  pathA.refusing = true; // the server it is on goes away for good
  await pathA.cut();
  await publisher.publish("news", text.encode("2"));
  await readUntil("2");
  pathA.refusing = false;
  pathB.refusing = true;
  await pathB.cut();
  await publisher.publish("news", text.encode("3"));
  await readUntil("3");
  assert.deepEqual(seen, ["1", "2", "3"]);
  // To B when A went; back to A when B went (a failed attempt on the way
  // would add a round, never skip a server).
  assert.equal(moves[0], pathB.target);
  assert.equal(moves.at(-1), pathA.target);
  moves.forEach((target, i) =>
    assert.equal(target, i % 2 === 0 ? pathB.target : pathA.target)
  );
  controller.abort();
  assert.equal((await iterator.next()).done, true);
});

Deno.test("follow() gets out of a dead network path, even while resubscribing on it", async () => {
  await using t = await quietServer({ heartbeatMs: 50 });
  await using proxy = new CuttableProxy({
    hostname: "127.0.0.1",
    port: t.server.port,
  });
  using client = new GreeterClient(proxy.target);
  const controller = new AbortController();
  const iterator = follow(client, "frozen", {
    topics: ["news"],
    silenceSlackMs: 100,
    firstMessageMs: 300,
    initialMs: 10,
    maxMs: 20,
    signal: controller.signal,
  })[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value?.kind, "subscribed");
  proxy.frozen = true; // no FIN, no reset: silence
  const reasons: string[] = [];
  while (reasons.length < 2) {
    const { value } = await settles("a reconnect", iterator.next());
    if (value?.kind === "reconnecting") reasons.push(value.reason);
  }
  assert.match(reasons[0], /fell silent for longer than its heartbeat/);
  assert.match(reasons[1], /no answer within 300 ms/);
  proxy.frozen = false;
  await proxy.cut(); // the path heals; the dead connection is gone
  for (;;) {
    const { value } = await settles("a resubscription", iterator.next());
    if (value?.kind !== "subscribed") continue;
    assert.equal(value.recovered, true);
    break;
  }
  controller.abort();
  assert.equal((await iterator.next()).done, true);
});

Deno.test("follow() does not count a slow consumer's own time as the server's silence", async () => {
  await using t = await quietServer({ heartbeatMs: 100 });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  const kinds: string[] = [];
  for await (
    const message of follow(client, "thinker", {
      topics: ["news"],
      silenceSlackMs: 50, // presumed dead after 250 ms of silence
      signal: controller.signal,
    })
  ) {
    // At most 3 heartbeats can be queued when a wrong verdict would come.
    kinds.push(message.kind);
    if (kinds.length === 6) break;
    await new Promise((resolve) => setTimeout(resolve, 400)); // thinking
  }
  assert.deepEqual(kinds, ["subscribed", ...Array(5).fill("heartbeat")]);
});

Deno.test("follow() gives up on a status not worth retrying", async () => {
  await using t = await quietServer();
  using client = new GreeterClient(t.target);
  await assert.rejects(
    async () => {
      for await (const _ of follow(client, "")) { /* nothing comes */ }
    },
    (e: RpcError) => e.code === "INVALID_ARGUMENT",
  );
});

Deno.test("follow() retries UNAUTHENTICATED a bounded number of times in a row, saying so in each reconnecting message", async () => {
  await using t = await quietServer({ tokens: ["0123456789abcdef-ok"] });
  using client = new GreeterClient(t.target, { token: "0123456789abcdef-no" });
  const reasons: string[] = [];
  await assert.rejects(
    async () => {
      for await (
        const message of follow(client, "locked", {
          initialMs: 1,
          unauthenticatedRetries: 2,
        })
      ) {
        if (message.kind === "reconnecting") reasons.push(message.reason);
      }
    },
    (e: RpcError) => e.code === "UNAUTHENTICATED",
  );
  assert.equal(reasons.length, 2);
  for (const [i, reason] of reasons.entries()) {
    assert.match(
      reason,
      new RegExp(
        `UNAUTHENTICATED: .*\\(retry ${
          i + 1
        } of 2 after UNAUTHENTICATED: the token may be being rotated\\)`,
      ),
    );
  }
});

for (const workers of WORKERS) {
  Deno.test(`follow() after a cursor ahead of the server takes the server's cursor and misses nothing after it (workers: ${workers})`, async () => {
    await using t = await quietServer({}, workers);
    using client = new GreeterClient(t.target);
    const { cursor } = await client.publish("news", text.encode("one"));
    const controller = new AbortController();
    const messages = follow(client, "ahead", {
      topics: ["news"],
      after: { epoch: cursor.epoch, seq: 99_999 },
      signal: controller.signal,
    });
    try {
      const first = await next(messages);
      assert.equal(first.kind, "subscribed");
      assert.equal(first.recovered, false);
      assert.match(first.reason, /ahead/);
      await client.publish("news", text.encode("two"));
      await client.publish("news", text.encode("three"));
      for (const payload of ["two", "three"]) {
        const event = await settles(`event "${payload}"`, next(messages));
        assert.equal(payloadOf(event), payload);
      }
    } finally {
      controller.abort(); // ends a next() still waiting, then the iteration
      await messages.return(undefined);
    }
  });
}

Deno.test("backoffDelay() grows exponentially to its cap, with full jitter", () => {
  const top = () => 0.999999;
  const delays = [1, 2, 3, 4, 5, 6, 50].map((attempt) =>
    backoffDelay(attempt, { initialMs: 100, maxMs: 1000 }, top)
  );
  assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
  assert.equal(backoffDelay(3, {}, () => 0), 0);
  assert.equal(backoffDelay(1, {}, () => 0.5), 125);
});

Deno.test("a subscriber that stays behind is logged once per 10 s, with what the quiet time held", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({
    clock,
    intervalMs: HOUR,
    heartbeatMs: HOUR,
    bufferSize: 2,
  });
  const { hub } = t.server;
  const reader = hub.subscribe("behind", { topics: ["news"] }).readable
    .getReader();
  const lines = () => t.logs.filter((l) => l.includes("missed events."));
  // Runs of 5 events into a buffer of 2: 3 dropped each, handed over as a
  // gap (then the 2 kept events) before the next run.
  const run = async () => {
    for (let i = 0; i < 5; i++) await hub.publish("news", text.encode("x"));
    const kinds = [];
    for (let i = 0; i < 3; i++) kinds.push((await reader.read()).value?.kind);
    assert.deepEqual(kinds, ["gap", "event", "event"]);
  };
  for (let i = 0; i < 3; i++) await run();
  assert.equal(lines().length, 1);
  await clock.advance(10_000);
  await run();
  assert.equal(lines().length, 2);
  // The two runs left out of the log in between, and their 6 events.
  assert.match(lines()[1], /gapsSinceLastLine=2 missedSinceLastLine=6/);
  await reader.cancel();
});
