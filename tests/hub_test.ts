import assert from "node:assert/strict";
import { MemoryBroker } from "../lib/bus/broker.ts";
import {
  InvalidArgumentError,
  SlowConsumerError,
  UnavailableError,
} from "../lib/errors.ts";
import {
  Hub,
  type HubOptions,
  normalizeTopics,
  type PresenceChange,
} from "../lib/bus/hub.ts";
import {
  type Gap,
  type HubItem,
  type LeaveReason,
  type SubscriptionInfo,
} from "../lib/bus/hub_items.ts";
import { TopicPattern } from "../lib/bus/topic_pattern.ts";

function recordingHub(options: HubOptions<string> = {}) {
  const left: [SubscriptionInfo, LeaveReason][] = [];
  const joined: SubscriptionInfo[] = [];
  const gaps: [string, Gap][] = [];
  const clock = { time: 1000 };
  const now = () => clock.time++;
  const hub = new Hub(new MemoryBroker<string>({ now }), {
    now,
    onJoin: (info) => joined.push(info),
    onLeave: (info, reason) => left.push([info, reason]),
    onGap: (info, gap) => gaps.push([info.name, gap]),
    ...options,
  });
  return { hub, left, joined, gaps, clock };
}

/** Publishes each of `data` on "t". */
async function publish(hub: Hub<string>, ...data: string[]) {
  for (const d of data) await hub.publish("t", d);
}

/** Reads `n` items, rendered compactly: events as their data, others by kind. */
async function take(
  reader: ReadableStreamDefaultReader<HubItem<string>>,
  n: number,
): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push(render(value));
  }
  return out;
}

function render(item: HubItem<string>): string {
  switch (item.kind) {
    case "event":
      return item.data;
    case "gap":
      return `gap ${item.from}-${item.to} missed ${item.missed} (${item.reason})`;
    case "heartbeat":
      return `heartbeat ${item.seq}`;
  }
}

Deno.test("Hub.publish() stamps events with increasing seq, topic and time", async () => {
  const { hub } = recordingHub();
  const reader = hub.subscribe("a").readable.getReader();
  const first = await hub.publish("t", "x");
  const second = await hub.publish("u", "y");
  assert.deepEqual([first.seq, second.seq], [1, 2]);
  assert.deepEqual([first.topic, second.topic], ["t", "u"]);
  assert.ok(second.time > first.time);
  assert.equal(hub.seq, 2);
  assert.deepEqual((await reader.read()).value, first);
  assert.deepEqual((await reader.read()).value, second);
  await reader.cancel();
  assert.equal(hub.stats.published, 2);
  assert.equal(hub.stats.delivered, 2);
});

Deno.test("Hub.subscribe() delivers every event in publish order", async () => {
  const { hub } = recordingHub({ bufferSize: 1000 });
  const reader = hub.subscribe("a").readable.getReader();
  const pending = take(reader, 3); // a read waiting before the publish
  await publish(hub, "1", "2", "3");
  assert.deepEqual(await pending, ["1", "2", "3"]);
  const many = Array.from({ length: 500 }, (_, i) => String(i));
  await publish(hub, ...many);
  assert.deepEqual(await take(reader, 500), many);
  await reader.cancel();
});

Deno.test("Hub.subscribe() filters by topic; * skips $ topics; presence on request", async () => {
  const changes: PresenceChange[] = [];
  const { hub } = recordingHub({
    presence: (change) => {
      changes.push(change);
      return `${change.action} ${change.subscription.name}`;
    },
  });
  const all = hub.subscribe("all").readable.getReader();
  const news = hub.subscribe("news", { topics: ["news", "news"] }).readable
    .getReader();
  const watcher = hub.subscribe("watcher", { topics: ["*", "$presence"] })
    .readable.getReader();
  const late = hub.subscribe("late", { topics: ["tick"] });
  await hub.publish("tick", "tick 1");
  await hub.publish("news", "headline");
  assert.deepEqual(await take(all, 2), ["tick 1", "headline"]);
  assert.deepEqual(await take(news, 1), ["headline"]);
  assert.deepEqual(await take(watcher, 4), [
    "join watcher",
    "join late",
    "tick 1",
    "headline",
  ]);
  await late.readable.cancel();
  assert.deepEqual(await take(watcher, 1), ["leave late"]);
  assert.equal(changes.at(-1)?.reason, "cancelled");
  assert.deepEqual(
    hub.subscriptions("news").map((s) => s.name),
    ["all", "news", "watcher"],
  );
  assert.deepEqual(hub.subscriptions()[2].topics, ["*", "$presence"]);
  assert.equal(hub.count("news"), 3);
  assert.equal(hub.count("*"), 2);
  assert.deepEqual(hub.subscriptions(undefined, 2).map((s) => s.name), [
    "all",
    "news",
  ]);
  for (const reader of [all, news, watcher]) await reader.cancel();
});

Deno.test("normalizeTopics() validates and folds the filter", () => {
  assert.deepEqual(normalizeTopics([]), ["*"]);
  assert.deepEqual(normalizeTopics(["*", "news", "$presence"]), [
    "*",
    "$presence",
  ]);
  assert.throws(() => normalizeTopics(["bad topic"]), InvalidArgumentError);
  assert.throws(() => normalizeTopics(["$secret"]), /reserved/);
  assert.throws(() => normalizeTopics([""]), InvalidArgumentError);
});

Deno.test("Hub.subscribe() keeps two subscribers with one name apart", async () => {
  const { hub, left } = recordingHub();
  const a = hub.subscribe("same");
  const b = hub.subscribe("same");
  assert.notEqual(a.id, b.id);
  assert.equal(hub.size, 2);
  const readerA = a.readable.getReader();
  const readerB = b.readable.getReader();
  await publish(hub, "one");
  assert.deepEqual(await take(readerA, 1), ["one"]);
  assert.deepEqual(await take(readerB, 1), ["one"]);
  await readerA.cancel();
  assert.equal(hub.size, 1);
  assert.deepEqual(left.map(([info, reason]) => [info.id, reason]), [
    [a.id, "cancelled"],
  ]);
  await publish(hub, "two");
  assert.deepEqual(await take(readerB, 1), ["two"]);
  await readerB.cancel();
  assert.equal(hub.size, 0);
});

Deno.test("Hub.subscribe() removes the subscription at once when the signal aborts", async () => {
  const { hub, left } = recordingHub();
  const controller = new AbortController();
  const reader = hub.subscribe("a", { signal: controller.signal }).readable
    .getReader();
  await publish(hub, "before");
  const reason = new Error("client went away");
  controller.abort(reason);
  assert.equal(hub.size, 0);
  await publish(hub, "after");
  await assert.rejects(reader.read(), (error) => error === reason);
  assert.equal(left.length, 1);
  assert.equal(left[0][1], "aborted");
  assert.equal(left[0][0].buffered, 0);
});

Deno.test("Hub.subscribe() throws when the signal has already aborted", () => {
  const { hub, joined } = recordingHub();
  const signal = AbortSignal.abort(new Error("gone"));
  assert.throws(() => hub.subscribe("a", { signal }), /gone/);
  assert.equal(hub.size, 0);
  assert.equal(joined.length, 0);
});

Deno.test("Hub calls onLeave exactly once whatever the paths taken", async () => {
  const { hub, left } = recordingHub();
  const controller = new AbortController();
  const { readable } = hub.subscribe("a", { signal: controller.signal });
  await readable.getReader().cancel();
  controller.abort();
  hub.close();
  assert.equal(left.length, 1);
});

Deno.test("Hub drop-oldest keeps the newest events and reports the exact gap first", async () => {
  const { hub, left, gaps } = recordingHub({ bufferSize: 3 });
  const other = hub.subscribe("other", { topics: ["other"] });
  const { readable } = hub.subscribe("slow", { topics: ["t"] });
  await hub.publish("other", "not mine"); // seq 1
  await publish(hub, ...Array.from({ length: 10 }, (_, i) => String(i + 2))); // seq 2..11
  const info = hub.subscriptions("t")[0];
  assert.equal(info.buffered, 3);
  assert.equal(info.dropped, 7);
  assert.equal(hub.stats.dropped, 7);
  const reader = readable.getReader();
  assert.deepEqual(await take(reader, 4), [
    "gap 2-8 missed 7 (slow-consumer)",
    "9",
    "10",
    "11",
  ]);
  await publish(hub, "12");
  assert.deepEqual(await take(reader, 1), ["12"]);
  assert.deepEqual(gaps, [["slow", {
    kind: "gap",
    from: 2,
    to: 8,
    missed: 7,
    reason: "slow-consumer",
  }]]);
  await reader.cancel();
  await other.readable.cancel();
  assert.equal(left.find(([i]) => i.name === "slow")![0].dropped, 7);
});

Deno.test("Hub disconnect policy errors a full subscription and spares the others", async () => {
  const { hub, left } = recordingHub({ bufferSize: 2, policy: "disconnect" });
  const slow = hub.subscribe("slow").readable.getReader();
  const fast = hub.subscribe("fast").readable.getReader();
  const fastSeen: string[] = [];
  for (let i = 1; i <= 3; i++) {
    await publish(hub, String(i));
    fastSeen.push(...await take(fast, 1));
  }
  assert.deepEqual(fastSeen, ["1", "2", "3"]);
  assert.equal(hub.size, 1);
  assert.deepEqual(left.map(([i, r]) => [i.name, r]), [[
    "slow",
    "slow-consumer",
  ]]);
  await assert.rejects(slow.read(), SlowConsumerError);
  assert.equal(hub.stats.slowConsumerDisconnects, 1);
  await fast.cancel();
});

Deno.test("Hub memory stays bounded for a subscriber that never reads", async () => {
  const { hub } = recordingHub({ bufferSize: 16, replaySize: 64 });
  hub.subscribe("stalled");
  for (let i = 0; i < 100_000; i++) await hub.publish("t", "x");
  const [info] = hub.subscriptions();
  assert.equal(info.buffered, 16);
  assert.equal(info.dropped, 100_000 - 16);
  assert.equal(hub.held, 64);
  hub.close();
});

Deno.test("Hub resume inside the window continues exactly, with no duplicate", async () => {
  const { hub } = recordingHub({ bufferSize: 2 });
  const first = hub.subscribe("a");
  assert.equal(first.recovered, false);
  assert.deepEqual(first.cursor, { epoch: hub.epoch, seq: 0 });
  const reader = first.readable.getReader();
  await publish(hub, "1", "2");
  assert.deepEqual(await take(reader, 1), ["1"]); // then the client dies
  await reader.cancel();
  await publish(hub, "3", "4", "5", "6"); // more than its buffer size
  await hub.publish("elsewhere", "not for a");

  const again = hub.subscribe("a", {
    topics: ["t"],
    after: { epoch: hub.epoch, seq: 1 },
  });
  assert.equal(again.recovered, true);
  assert.equal(again.reason, undefined);
  assert.deepEqual(again.cursor, { epoch: hub.epoch, seq: 1 });
  const resumed = again.readable.getReader();
  const pending = take(resumed, 6);
  await publish(hub, "8"); // published while the replay is under way
  assert.deepEqual(await pending, ["2", "3", "4", "5", "6", "8"]);
  await publish(hub, "9");
  assert.deepEqual(await take(resumed, 1), ["9"]);
  await resumed.cancel();
  assert.equal(hub.stats.resumesRecovered, 1);
});

Deno.test("Hub resume at the head is recovered with nothing to replay", async () => {
  const { hub } = recordingHub();
  await publish(hub, "1");
  const sub = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 1 } });
  assert.equal(sub.recovered, true);
  const reader = sub.readable.getReader();
  await publish(hub, "2");
  assert.deepEqual(await take(reader, 1), ["2"]);
  await reader.cancel();
});

Deno.test("Hub resume from another epoch or ahead is not recovered, and starts live", async () => {
  const { hub } = recordingHub({ replaySize: 4, replayAgeMs: 1000 });
  await publish(hub, "1", "2", "3", "4", "5", "6");
  const cases = [
    [
      { epoch: "0123456789abcdef", seq: 5 },
      /epoch "0123456789abcdef" is not the server's "\w+": it is from before the server's last start, or from another server$/,
    ],
    [{ epoch: hub.epoch, seq: 1000 }, /1000 is ahead of the last event/],
  ] as const;
  for (const [after, reason] of cases) {
    const head = hub.seq;
    const sub = hub.subscribe("a", { after });
    assert.equal(sub.recovered, false);
    assert.match(sub.reason!, reason);
    assert.deepEqual(sub.cursor, { epoch: hub.epoch, seq: head }); // live from now
    const reader = sub.readable.getReader();
    await publish(hub, "live");
    assert.deepEqual(await take(reader, 1), ["live"]);
    await reader.cancel();
  }
  assert.equal(hub.stats.resumesMissed, 2);
});

Deno.test("Hub resume past the window is not recovered, says what is gone, and starts with the oldest event held", async () => {
  const { hub, clock } = recordingHub({ replaySize: 4, replayAgeMs: 1000 });
  await publish(hub, "1", "2", "3", "4", "5", "6");
  // --after EPOCH:0: the first two are gone, the four held are not lost too.
  const sub = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 0 } });
  assert.equal(sub.recovered, false);
  assert.equal(
    sub.reason,
    "events after seq 0 through 2 are no longer held; the stream goes on from the oldest still held",
  );
  assert.deepEqual(sub.cursor, { epoch: hub.epoch, seq: 2 });
  assert.deepEqual(sub.head, { epoch: hub.epoch, seq: 6 });
  const reader = sub.readable.getReader();
  assert.deepEqual(await take(reader, 4), ["3", "4", "5", "6"]);
  await publish(hub, "live");
  assert.deepEqual(await take(reader, 1), ["live"]);
  await reader.cancel();
  // Held by count, but older than the window's age: nothing is held.
  clock.time += 5000;
  const old = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 1 } });
  assert.equal(old.recovered, false);
  assert.match(old.reason!, /after seq 1 through 7 are no longer held/);
  assert.deepEqual(old.cursor, { epoch: hub.epoch, seq: 7 });
  await old.readable.cancel();
  assert.equal(hub.stats.resumesMissed, 2);
});

Deno.test("Hub.startAfter() puts a subscription at the first event held, the last N of its topics, or a time", async () => {
  const { hub, clock } = recordingHub({ replaySize: 5 });
  clock.time = 10_000;
  await publish(hub, "1", "2"); // seqs 1, 2 at 10000, 10001
  clock.time = 20_000;
  await hub.publish("other", "x"); // seq 3
  await publish(hub, "3", "4", "5"); // seqs 4-6 at 20001…
  const from = async (
    position: Parameters<Hub<string>["startAfter"]>[0],
    n: number,
  ) => {
    const after = await hub.startAfter(position, ["t"]);
    const sub = hub.subscribe("a", {
      topics: ["t"],
      after: { epoch: hub.epoch, seq: after },
      started: true,
    });
    assert.equal(sub.recovered, true);
    const reader = sub.readable.getReader();
    const read = await take(reader, n);
    await reader.cancel();
    return read;
  };
  // The window holds seqs 2-6: seq 1 is gone.
  assert.deepEqual(await from({ first: true }, 4), ["2", "3", "4", "5"]);
  assert.deepEqual(await from({ last: 2 }, 2), ["4", "5"]);
  assert.deepEqual(await from({ last: 50 }, 1), ["2"]); // all there is
  assert.deepEqual(await from({ timeMs: 20_000 }, 3), ["3", "4", "5"]);
  assert.equal(await hub.startAfter({ timeMs: 90_000 }, ["t"]), hub.seq); // live
  assert.equal(hub.stats.resumesRecovered, 0); // a start is no resume
});

Deno.test("Hub replay that falls behind the window reports an expired gap", async () => {
  const { hub } = recordingHub({ replaySize: 4 });
  await publish(hub, "1", "2", "3", "4");
  const sub = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 1 } });
  assert.equal(sub.recovered, true);
  const reader = sub.readable.getReader();
  assert.deepEqual(await take(reader, 1), ["2"]);
  await publish(hub, "5", "6", "7"); // the window is now 4..7
  assert.deepEqual(await take(reader, 5), [
    "gap 3-3 missed 0 (expired)",
    "4",
    "5",
    "6",
    "7",
  ]);
  await reader.cancel();
});

Deno.test("Hub replay stops at the window's age: what aged out is an expired gap", async () => {
  const { hub, clock } = recordingHub({ replayAgeMs: 1000 });
  await publish(hub, "1", "2", "3");
  const sub = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 0 } });
  const reader = sub.readable.getReader();
  assert.deepEqual(await take(reader, 1), ["1"]);
  clock.time += 2000; // "2" and "3" are now too old to replay
  assert.deepEqual(await take(reader, 1), ["gap 2-3 missed 0 (expired)"]);
  await publish(hub, "4");
  assert.deepEqual(await take(reader, 1), ["4"]);
  await reader.cancel();
});

Deno.test("Hub replay past the window disconnects under the disconnect policy", async () => {
  const { hub } = recordingHub({ replaySize: 2, policy: "disconnect" });
  await publish(hub, "1", "2");
  const sub = hub.subscribe("a", { after: { epoch: hub.epoch, seq: 0 } });
  const reader = sub.readable.getReader();
  assert.deepEqual(await take(reader, 1), ["1"]);
  await publish(hub, "3", "4");
  await assert.rejects(reader.read(), /fell behind the replay window/);
  assert.equal(hub.size, 0);
});

Deno.test("Hub.heartbeat() reaches only idle subscribers, with a safe cursor", async () => {
  const { hub } = recordingHub();
  const idle = hub.subscribe("idle").readable.getReader();
  const busy = hub.subscribe("busy").readable.getReader();
  const filtered = hub.subscribe("f", { topics: ["quiet"] }).readable
    .getReader();
  await publish(hub, "1");
  assert.deepEqual(await take(idle, 1), ["1"]);
  const idleNext = take(idle, 1);
  const filteredNext = take(filtered, 1);
  hub.heartbeat();
  assert.deepEqual(await idleNext, ["heartbeat 1"]);
  assert.deepEqual(await filteredNext, ["heartbeat 1"]);
  // "busy" holds an unread event: no heartbeat queued behind it.
  assert.deepEqual(await take(busy, 1), ["1"]);
  await publish(hub, "2");
  assert.deepEqual(await take(busy, 1), ["2"]);
  for (const reader of [idle, busy, filtered]) await reader.cancel();
});

Deno.test("Hub.close() lets readers drain, ends streams, refuses new work", async () => {
  const { hub, left } = recordingHub();
  const busy = hub.subscribe("busy").readable.getReader();
  const idle = hub.subscribe("idle").readable.getReader();
  await publish(hub, "last");
  assert.deepEqual(await take(idle, 1), ["last"]);
  const idleEnd = idle.read(); // waiting with nothing buffered
  hub.close();
  assert.equal((await idleEnd).done, true);
  assert.equal(hub.size, 1); // "busy" still holds an event
  assert.deepEqual(await take(busy, 1), ["last"]);
  assert.equal((await busy.read()).done, true);
  assert.equal(hub.size, 0);
  assert.deepEqual(left.map(([, r]) => r), ["closed", "closed"]);
  assert.throws(() => hub.subscribe("late"), UnavailableError);
  await assert.rejects(hub.publish("t", "late"), UnavailableError);
});

Deno.test("Hub shares one broker sequence with another hub", async () => {
  const broker = new MemoryBroker<string>({ epoch: "shared" });
  const a = new Hub(broker);
  const b = new Hub(broker);
  const reader = b.subscribe("on b").readable.getReader();
  const event = await a.publish("t", "from a");
  assert.equal(b.epoch, "shared");
  assert.deepEqual((await reader.read()).value, event);
  await reader.cancel();
  a.close();
  b.close();
});

Deno.test("Hub rejects a buffer size that is not a positive integer", () => {
  const broker = new MemoryBroker();
  assert.throws(
    () => new Hub(broker, { bufferSize: 0 }),
    /positive integer, got 0/,
  );
  assert.throws(() => new Hub(broker, { bufferSize: 1.5 }), RangeError);
});

Deno.test("Hub.listed() pages after an id, named and * subscribers merged in id order; count() agrees", async () => {
  const hub = new Hub(new MemoryBroker<string>());
  const controller = new AbortController();
  const { signal } = controller;
  const topics = (i: number) =>
    i % 3 === 0 ? ["*"] : i % 3 === 1 ? ["news"] : ["news", "$presence"];
  const subs = Array.from(
    { length: 300 },
    (_, i) => hub.subscribe(`s${i}`, { topics: topics(i), signal }),
  );
  // Leaving ones make holes in the index (and compact it).
  for (const sub of subs.filter((_, i) => i % 5 === 0)) {
    await sub.readable.cancel();
  }
  for (const topic of [undefined, "*", "news", "$presence", "other"]) {
    const all = hub.subscriptions(topic).map((s) => s.id);
    assert.equal(hub.count(topic), all.length, `count of ${topic}`);
    const paged: number[] = [];
    for (let after = 0, i = 0; i < 1000; i++) {
      const page = [...hub.listed(topic, after)].slice(0, 7);
      if (page.length === 0) break;
      paged.push(...page.map((s) => s.id));
      after = page.at(-1)!.id;
    }
    assert.deepEqual(paged, all, `pages of ${topic}`);
    assert.deepEqual(all, [...all].sort((a, b) => a - b));
  }
  assert.equal(hub.count("news"), 240); // all 240 left: "news" or "*"
  controller.abort();
  hub.close();
});

Deno.test("Hub.subscribe() takes NATS-style patterns: * one token, > one or more, never $ topics", async () => {
  const hub = new Hub(new MemoryBroker<string>(), {
    presence: () => "presence",
  });
  const one = hub.subscribe("one", { topics: ["news.*"] }).readable
    .getReader();
  const many = hub.subscribe("many", { topics: ["news.>", "news.a"] })
    .readable.getReader();
  const all = hub.subscribe("all", { topics: [">"] }).readable.getReader();
  for (const topic of ["news", "news.a", "news.a.b", "other", "news.b"]) {
    await hub.publish(topic, topic);
  }
  assert.deepEqual(await take(one, 2), ["news.a", "news.b"]);
  // In both its plain topic and its pattern, news.a comes once.
  assert.deepEqual(await take(many, 3), ["news.a", "news.a.b", "news.b"]);
  // ">" never takes the server's "$presence" (joins were published there).
  assert.deepEqual(await take(all, 5), [
    "news",
    "news.a",
    "news.a.b",
    "other",
    "news.b",
  ]);
  // Listings of a topic include those that get it through a pattern.
  assert.deepEqual(hub.subscriptions("news.a.b").map((s) => s.name), [
    "many",
    "all",
  ]);
  assert.equal(hub.count("news.a.b"), 2);
  assert.deepEqual(hub.subscriptions("news.a").map((s) => s.name), [
    "one",
    "many",
    "all",
  ]);
  assert.equal(hub.count("news.a"), 3);
  assert.deepEqual([...hub.listed("news.a", 1)].map((s) => s.name), [
    "many",
    "all",
  ]);
  assert.throws(
    () => hub.subscribe("bad", { topics: ["news.>.x"] }),
    InvalidArgumentError,
  );
  hub.close();
  for (const reader of [one, many, all]) {
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
  }
});

Deno.test("Hub delivers and lists through its pattern index exactly as trying every pattern would", async () => {
  // A small alphabet, so that patterns overlap, nest and repeat.
  let state = 12345;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  const words = ["a", "b", "c"];
  const topicOf = () =>
    Array.from({ length: 1 + random(3) }, () => words[random(3)]).join(".");
  const filterOf = () => {
    const tokens = Array.from(
      { length: 1 + random(3) },
      () => ["*", ...words][random(4)],
    );
    if (random(3) === 0) tokens[tokens.length - 1] = ">";
    return tokens.join(".");
  };
  const hub = new Hub(new MemoryBroker<string>(), { bufferSize: 1_000 });
  const subs = Array.from({ length: 120 }, (_, i) => {
    const topics = Array.from({ length: 1 + random(3) }, filterOf);
    const { id, readable } = hub.subscribe(`s${i}`, { topics });
    const patterns = [...new Set(topics)].map((t) => new TopicPattern(t));
    return { id, reader: readable.getReader(), patterns, left: false };
  });
  for (const sub of subs.filter(() => random(4) === 0)) {
    sub.left = true;
    await sub.reader.cancel();
  }
  const live = subs.filter((sub) => !sub.left);
  const published = Array.from({ length: 60 }, topicOf);
  for (const topic of published) await hub.publish(topic, topic);
  for (const sub of live) {
    const expected = published.filter((topic) =>
      sub.patterns.some((p) => p.matches(topic))
    );
    assert.deepEqual(await take(sub.reader, expected.length), expected);
  }
  for (const topic of new Set([...published, "c.c.c.c", "a"])) {
    const expected = live.filter((sub) =>
      sub.patterns.some((p) => p.matches(topic))
    ).map((sub) => sub.id);
    assert.deepEqual(hub.subscriptions(topic).map((s) => s.id), expected);
    assert.equal(hub.count(topic), expected.length, topic);
    const after = expected[Math.floor(expected.length / 2)] ?? 0;
    assert.deepEqual(
      [...hub.listed(topic, after)].map((s) => s.id),
      expected.filter((id) => id > after),
    );
  }
  hub.close();
});

Deno.test("Hub replays a resume through a pattern filter", async () => {
  const hub = new Hub(new MemoryBroker<string>());
  for (const topic of ["news.a", "x", "news.b"]) {
    await hub.publish(topic, topic);
  }
  const { readable, recovered } = hub.subscribe("late", {
    topics: ["news.*"],
    after: { epoch: hub.epoch, seq: 0 },
  });
  assert.equal(recovered, true);
  const reader = readable.getReader();
  assert.deepEqual(await take(reader, 2), ["news.a", "news.b"]);
  hub.close();
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
});

Deno.test("MemoryBroker: publishes with an id seen within the duplicate window are one event; after it, a new one", async () => {
  const clock = { now: 1_000_000 };
  const broker = new MemoryBroker<string>({
    now: () => clock.now,
    duplicateWindowMs: 120_000,
  });
  const handed: number[] = [];
  broker.listen((event) => handed.push(event.seq));
  const first = await broker.publish("news", "a", { id: "k" });
  clock.now += 60_000;
  const again = await broker.publish("other", "b", { id: "k" });
  assert.deepEqual(
    [again.seq, again.time, again.topic],
    [first.seq, first.time, "news"],
  );
  assert.equal((await broker.publish("news", "c", { id: "k2" })).seq, 2);
  assert.equal((await broker.publish("news", "d")).seq, 3);
  clock.now += 60_001; // "k" is out of the window now
  assert.equal((await broker.publish("news", "e", { id: "k" })).seq, 4);
  assert.deepEqual(handed, [1, 2, 3, 4]);
});
