import assert from "node:assert/strict";
import { SlowConsumerError, UnavailableError } from "../lib/errors.ts";
import {
  Hub,
  type HubEvent,
  type LeaveReason,
  type SubscriptionInfo,
} from "../lib/hub.ts";

function recordingHub(options: ConstructorParameters<typeof Hub>[0] = {}) {
  const left: [SubscriptionInfo, LeaveReason][] = [];
  const joined: SubscriptionInfo[] = [];
  let time = 1000;
  const hub = new Hub<string>({
    now: () => time++,
    onJoin: (info) => joined.push(info),
    onLeave: (info, reason) => left.push([info, reason]),
    ...options,
  });
  return { hub, left, joined };
}

async function take<T>(
  reader: ReadableStreamDefaultReader<HubEvent<T>>,
  n: number,
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push(value.data);
  }
  return out;
}

Deno.test("Hub.publish() stamps events with increasing seq and the time", async () => {
  const { hub } = recordingHub();
  const reader = hub.subscribe("a").readable.getReader();
  const first = hub.publish("x");
  const second = hub.publish("y");
  assert.deepEqual([first.seq, second.seq], [1, 2]);
  assert.ok(second.time > first.time);
  assert.equal(hub.seq, 2);
  assert.deepEqual((await reader.read()).value, first);
  assert.deepEqual((await reader.read()).value, second);
  await reader.cancel();
});

Deno.test("Hub.subscribe() delivers every event in publish order", async () => {
  const { hub } = recordingHub({ bufferSize: 1000 });
  const reader = hub.subscribe("a").readable.getReader();
  const pending = take(reader, 3); // a read waiting before the publish
  for (const data of ["1", "2", "3"]) hub.publish(data);
  assert.deepEqual(await pending, ["1", "2", "3"]);
  for (let i = 0; i < 500; i++) hub.publish(String(i));
  assert.deepEqual(
    await take(reader, 500),
    Array.from({ length: 500 }, (_, i) => String(i)),
  );
  await reader.cancel();
});

Deno.test("Hub.subscribe() keeps two subscribers with one name apart", async () => {
  const { hub, left } = recordingHub();
  const a = hub.subscribe("same");
  const b = hub.subscribe("same");
  assert.notEqual(a.id, b.id);
  assert.equal(hub.size, 2);
  const readerA = a.readable.getReader();
  const readerB = b.readable.getReader();
  hub.publish("one");
  assert.deepEqual(await take(readerA, 1), ["one"]);
  assert.deepEqual(await take(readerB, 1), ["one"]);

  await readerA.cancel();
  assert.equal(hub.size, 1);
  assert.deepEqual(left.map(([info, reason]) => [info.id, reason]), [
    [a.id, "cancelled"],
  ]);
  hub.publish("two");
  assert.deepEqual(await take(readerB, 1), ["two"]);
  await readerB.cancel();
  assert.equal(hub.size, 0);
});

Deno.test("Hub.subscribe() removes the subscription at once when the signal aborts", async () => {
  const { hub, left } = recordingHub();
  const controller = new AbortController();
  const reader = hub.subscribe("a", { signal: controller.signal }).readable
    .getReader();
  hub.publish("before");
  const reason = new Error("client went away");
  controller.abort(reason);
  assert.equal(hub.size, 0);
  hub.publish("after");
  assert.equal(hub.subscriptions().length, 0);
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
  const reader = readable.getReader();
  await reader.cancel();
  controller.abort();
  hub.close();
  assert.equal(left.length, 1);
});

Deno.test("Hub drop-oldest keeps the newest bufferSize events and counts drops", async () => {
  const { hub, left } = recordingHub({ bufferSize: 3 });
  const { readable } = hub.subscribe("slow");
  for (let i = 1; i <= 10; i++) hub.publish(String(i));
  assert.equal(hub.subscriptions()[0].buffered, 3);
  assert.equal(hub.subscriptions()[0].dropped, 7);
  assert.equal(hub.dropped, 7);
  const reader = readable.getReader();
  assert.deepEqual(await take(reader, 3), ["8", "9", "10"]);
  hub.publish("11");
  assert.deepEqual(await take(reader, 1), ["11"]);
  assert.equal(hub.subscriptions()[0].delivered, 4);
  await reader.cancel();
  assert.equal(left[0][0].dropped, 7);
});

Deno.test("Hub disconnect policy errors a full subscription and spares the others", async () => {
  const { hub, left } = recordingHub({ bufferSize: 2, policy: "disconnect" });
  const slow = hub.subscribe("slow").readable.getReader();
  const fast = hub.subscribe("fast").readable.getReader();
  const fastSeen: string[] = [];
  for (let i = 1; i <= 3; i++) {
    hub.publish(String(i));
    fastSeen.push(...await take(fast, 1));
  }
  assert.deepEqual(fastSeen, ["1", "2", "3"]);
  assert.equal(hub.size, 1);
  assert.deepEqual(left.map(([i, r]) => [i.name, r]), [[
    "slow",
    "slow-consumer",
  ]]);
  await assert.rejects(slow.read(), SlowConsumerError);
  await fast.cancel();
});

Deno.test("Hub memory stays bounded for a subscriber that never reads", () => {
  const { hub } = recordingHub({ bufferSize: 16 });
  hub.subscribe("stalled");
  for (let i = 0; i < 100_000; i++) hub.publish("x");
  const [info] = hub.subscriptions();
  assert.equal(info.buffered, 16);
  assert.equal(info.dropped, 100_000 - 16);
  hub.close();
});

Deno.test("Hub.close() lets readers drain, ends streams, refuses new subscribers", async () => {
  const { hub, left } = recordingHub();
  const busy = hub.subscribe("busy").readable.getReader();
  const idle = hub.subscribe("idle").readable.getReader();
  hub.publish("last");
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
  hub.publish("ignored"); // publishing to a closed hub is harmless
});

Deno.test("Hub rejects a buffer size that is not a positive integer", () => {
  assert.throws(() => new Hub({ bufferSize: 0 }), /positive integer, got 0/);
  assert.throws(() => new Hub({ bufferSize: 1.5 }), RangeError);
});
