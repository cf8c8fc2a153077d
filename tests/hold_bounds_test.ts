/**
 * Attacks of issue 13 ("hostile clients") against a real server on
 * loopback, each bounded in count and time: what a stranger can make the
 * server hold.
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { GreeterClient } from "../lib/client/client.ts";
import type { RpcError } from "../lib/errors.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { runClient, spawnServer } from "../testing/process.ts";
import { settles, startTestServer, waitFor } from "../testing/server.ts";

/** Protobuf varint bytes of `n`. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field. */
function field(tag: number, bytes: Uint8Array): Uint8Array {
  return new Uint8Array([
    ...varint((tag << 3) | 2),
    ...varint(bytes.length),
    ...bytes,
  ]);
}

/** Concatenates byte arrays. */
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Publishes `PublishRequest{topic, payload}` with an unknown field of
 * `padding` bytes after it, gzip-compressed on the wire, as a raw request.
 */
function publishPadded(
  client: grpc.Client,
  topic: string,
  payload: Uint8Array,
  padding: number,
): Promise<void> {
  const body = concat(
    field(1, new TextEncoder().encode(topic)),
    field(2, payload),
    field(15, new Uint8Array(padding)),
  );
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/helloworld.Greeter/Publish",
      (bytes: Uint8Array) => Buffer.from(bytes),
      (reply: Buffer) => reply,
      body,
      (error) => error ? reject(error) : resolve(),
    )
  );
}

Deno.test("Publish: a 1-byte payload padded with a 60 KB unknown field keeps 1 byte in the replay window, not 60 KB", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    replayBytes: 64 * 1024,
  });
  const client = new grpc.Client(t.target, grpc.credentials.createInsecure(), {
    "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip,
  });
  try {
    for (let i = 0; i < 200; i++) {
      await settles(
        "a publish",
        publishPadded(client, "news", new Uint8Array([i]), 60_000),
      );
    }
  } finally {
    client.close();
  }
  // What the window holds, read back through a resume from the start.
  const { hub } = t.server;
  const probe = hub.subscribe("probe", {
    topics: ["news"],
    after: { epoch: hub.epoch, seq: 0 },
  });
  const reader = probe.readable.getReader();
  const retained = new Set<ArrayBufferLike>();
  let events = 0;
  try {
    for (let i = 0; i < 200; i++) {
      const { value } = await settles("a replayed event", reader.read());
      if (value?.kind !== "event") break;
      events++;
      assert.equal(value.data.length, 1);
      retained.add(value.data.buffer);
    }
  } finally {
    await reader.cancel();
  }
  assert.ok(events > 100, `only ${events} events were held`);
  const bytes = [...retained].reduce((n, b) => n + b.byteLength, 0);
  assert.ok(
    bytes <= 64 * 1024,
    `${events} held events of 1 byte keep ${bytes} bytes of buffers alive, over --replay-bytes 65536`,
  );
});

/** `count` subscriptions over `client`, each to `topics(i)`, named `name(i)`; abort `signal` to end them. */
async function subscribeMany(
  client: GreeterClient,
  count: number,
  name: (i: number) => string,
  topics: (i: number) => string[],
  signal: AbortSignal,
): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const stream = client.subscribe(name(i), { topics: topics(i), signal });
      const first = await settles("a subscription", stream.next());
      assert.equal(first.value?.kind, "subscribed");
      // Read on, so that the stream ends when the signal aborts.
      (async () => {
        try {
          for await (const _ of stream);
        } catch {
          // Aborted.
        }
      })();
    }),
  );
}

/** Every page of a listing, followed by its tokens (bounded). */
async function allPages(client: GreeterClient, topic?: string) {
  const pages: Awaited<ReturnType<GreeterClient["listSubscribers"]>>[] = [];
  let pageToken = "";
  for (let i = 0; i < 1000; i++) {
    const page = await client.listSubscribers({ topic, pageToken });
    pages.push(page);
    pageToken = page.nextPageToken;
    if (!pageToken) return pages;
  }
  throw new Error("Listing did not end within 1,000 pages");
}

const longTopics = (prefix: string, count: number) =>
  Array.from(
    { length: count },
    (_, t) => `${prefix}.${t}.`.padEnd(128, "t"),
  );

Deno.test("ListSubscribers: ten subscriptions of 64 topics of 128 characters no longer break the listing; topics are shortened", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxMessageBytes: 64 * 1024,
  });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  try {
    await subscribeMany(
      client,
      10,
      (i) => `wide${i}`,
      (i) => longTopics(`w${i}`, 64),
      controller.signal,
    );
    const { subscribers, total, nextPageToken } = await client
      .listSubscribers();
    assert.equal(total, 10);
    assert.equal(nextPageToken, "");
    assert.equal(subscribers.length, 10);
    for (const s of subscribers) {
      assert.equal(s.topics.length, 8);
      assert.equal(s.topicCount, 64);
    }
  } finally {
    controller.abort();
  }
});

Deno.test("ListSubscribers: 100 subscribers with long names are listed in pages under the size limit, each once, in order", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxMessageBytes: 64 * 1024,
  });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  try {
    await subscribeMany(
      client,
      100,
      (i) => `${i}.`.padEnd(256, "n"),
      (i) => i % 3 ? longTopics(`n${i}`, 8) : ["*"],
      controller.signal,
    );
    for (const topic of [undefined, "*", "n4.".padEnd(128, "t")]) {
      const pages = await allPages(client, topic);
      const ids = pages.flatMap((p) =>
        p.subscribers.map((s) => s.subscriptionId)
      );
      const expected = t.server.hub.subscriptions(topic).map((s) => s.id);
      assert.deepEqual(ids, expected, `listing of ${topic ?? "all"}`);
      for (const page of pages) assert.equal(page.total, expected.length);
      if (topic === undefined) assert.ok(pages.length > 1, "one page only");
    }
    await assert.rejects(
      client.listSubscribers({ pageToken: "x" }),
      (error: RpcError) =>
        error.code === "INVALID_ARGUMENT" &&
        /Invalid page token "x"/.test(error.message),
    );
  } finally {
    controller.abort();
  }
});

Deno.test("greeter client --mode presence follows every page and says how many topics it left out", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  const controller = new AbortController();
  // Two connections: the server takes 100 subscriptions per connection.
  using one = new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  using two = new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  try {
    await subscribeMany(
      one,
      75,
      (i) => `a${i}`,
      (i) => i === 0 ? longTopics("a", 64) : ["news"],
      controller.signal,
    );
    await subscribeMany(
      two,
      75,
      (i) => `b${i}`,
      () => ["*"],
      controller.signal,
    );
    const { code, stdout, stderr } = await runClient([
      "--target",
      target,
      "--mode",
      "presence",
    ]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.filter((l) => l.startsWith("subscriber: ")).length, 150);
    assert.equal(lines.at(-1), "150 subscribers");
    assert.match(lines[0], /name="a0" topics=a\.0\.t+,.*,…\(56 more\) since=/);
  } finally {
    controller.abort();
  }
});

Deno.test("Subscribe/cancel churn that publishes nothing leaves a real event resumable, even with a $presence listener; its join lines are bounded", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    replaySize: 100,
  });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  try {
    // A presence listener: joins and leaves are published and kept.
    await subscribeMany(
      client,
      1,
      () => "watcher",
      () => ["$presence"],
      controller.signal,
    );
    const { cursor } = await client.publish(
      "news",
      new TextEncoder().encode("real"),
    );
    // 300 joins and 300 leaves: six times the replay window.
    const wide = longTopics("c", 64);
    for (let i = 0; i < 300; i++) {
      const churn = new AbortController();
      const stream = client.subscribe("churn", {
        topics: wide,
        signal: churn.signal,
      });
      assert.equal(
        (await settles("a churn", stream.next())).value?.kind,
        "subscribed",
      );
      churn.abort();
      await stream.next().catch(() => {});
    }
    await waitFor("the churn to leave", () => t.server.hub.size === 1);
    const resumed = client.subscribe("back", {
      topics: ["news"],
      after: { epoch: cursor.epoch, seq: cursor.seq - 1 },
      signal: controller.signal,
    });
    const first = (await settles("the resume", resumed.next())).value;
    assert.equal(first?.kind, "subscribed");
    assert.ok(first.recovered, `not recovered: ${first.reason}`);
    const event = (await settles("the real event", resumed.next())).value;
    assert.equal(event?.kind, "event");
    assert.equal(new TextDecoder().decode(event.payload), "real");
    // Bounded lines, and a bounded number of them for this peer.
    const joins = t.logs.filter((line) =>
      line.includes('client "churn" subscribed.')
    );
    const churnLines = t.logs.filter((line) =>
      /client "churn" (subscribed|disconnected|is leaving)\./.test(line)
    );
    // 600 without the budget: a join and a leave each.
    assert.ok(joins.length > 0, "no join line at all");
    assert.ok(
      churnLines.length <= 20,
      `${churnLines.length} churn lines:\n${churnLines.join("\n")}`,
    );
    for (const line of joins) {
      assert.ok(
        line.length < 1_500,
        `a join line of ${line.length} characters`,
      );
      assert.match(line, / topicCount=64$/); // 8 topics named, 56 more
    }
  } finally {
    controller.abort();
  }
});
