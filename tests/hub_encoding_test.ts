/**
 * A subscription whose stream carries what an encoding makes of its items
 * (a transport writing the hub's stream as its response body): first and
 * last chunks, each item in place, the same buffering and leaving.
 */

import assert from "node:assert/strict";
import { MemoryBroker } from "../lib/bus/broker.ts";
import { Hub } from "../lib/bus/hub.ts";
import type { LeaveReason, StreamEncoding } from "../lib/bus/hub_items.ts";
import { SlowConsumerError } from "../lib/errors.ts";

/** Renders items as text lines; counts what it was asked. */
function textEncoding() {
  const asked = { items: 0 };
  const encoding: StreamEncoding<string, string> = {
    first: (start) =>
      `first ${start.id} ${start.cursor.seq} ${start.recovered}`,
    item: (item) => {
      asked.items++;
      return item.kind === "event"
        ? `event ${item.seq} ${item.data}`
        : item.kind === "gap"
        ? `gap ${item.from}-${item.to} ${item.reason}`
        : `heartbeat ${item.seq}`;
    },
    last: (start, error) =>
      error instanceof SlowConsumerError
        ? `too slow ${start.id}: ${error.constructor.name}`
        : error === undefined
        ? `bye ${start.id}`
        : undefined, // a cut
  };
  return { encoding, asked };
}

async function readAll(readable: ReadableStream<string>): Promise<string[]> {
  return await Array.fromAsync(readable);
}

Deno.test("Hub.subscribe() with an encoding: first chunk, items encoded, last chunk when the hub closes", async () => {
  const hub = new Hub(new MemoryBroker<string>());
  const { encoding } = textEncoding();
  const left: LeaveReason[] = [];
  const subscription = hub.subscribe("ann", {
    topics: ["t"],
    encoding,
    onLeave: (reason) => left.push(reason),
  });
  await hub.publish("t", "a");
  await hub.publish("other", "x");
  await hub.publish("t", "b");
  hub.heartbeat(); // not idle: nothing
  hub.close();
  assert.deepEqual(await readAll(subscription.readable), [
    "first 1 0 false",
    "event 1 a",
    "event 3 b",
    "bye 1",
  ]);
  assert.deepEqual(left, ["closed"]);
});

Deno.test("Hub.subscribe() with an encoding: a resume's first chunk says where, replayed items are encoded too", async () => {
  const hub = new Hub(new MemoryBroker<string>());
  for (const data of ["a", "b", "c"]) await hub.publish("t", data);
  const { encoding } = textEncoding();
  const subscription = hub.subscribe("ann", {
    topics: ["t"],
    after: { epoch: hub.epoch, seq: 1 },
    encoding,
  });
  const reader = subscription.readable.getReader();
  const read = async () => (await reader.read()).value;
  assert.equal(await read(), "first 1 1 true");
  assert.equal(await read(), "event 2 b");
  assert.equal(await read(), "event 3 c");
  const idle = read();
  hub.heartbeat(); // idle now: a heartbeat, encoded
  assert.equal(await idle, "heartbeat 3");
  await reader.cancel();
  assert.equal(hub.size, 0);
  hub.close();
});

Deno.test("Hub.subscribe() with an encoding: a slow consumer's stream closes after its last chunk (no error)", async () => {
  const hub = new Hub(new MemoryBroker<string>(), {
    bufferSize: 2,
    policy: "disconnect",
  });
  const { encoding } = textEncoding();
  const left: LeaveReason[] = [];
  const subscription = hub.subscribe("slow", {
    topics: ["t"],
    encoding,
    onLeave: (reason) => left.push(reason),
  });
  for (const data of ["a", "b", "c"]) await hub.publish("t", data);
  assert.deepEqual(left, ["slow-consumer"]);
  // What it held goes with it: first, then the goodbye.
  assert.deepEqual(await readAll(subscription.readable), [
    "first 1 0 false",
    "too slow 1: SlowConsumerError",
  ]);
  hub.close();
});

Deno.test("Hub.subscribe() with an encoding: an abort errors the stream where the encoding has no last chunk for its reason, else closes after it", async () => {
  const hub = new Hub(new MemoryBroker<string>());
  const { encoding, asked } = textEncoding();
  const cut = new AbortController();
  const subscription = hub.subscribe("cut", {
    topics: ["t"],
    encoding,
    signal: cut.signal,
  });
  const reader = subscription.readable.getReader();
  assert.equal((await reader.read()).value, "first 1 0 false");
  const pending = reader.read();
  cut.abort(new RangeError("cut"));
  await assert.rejects(pending, RangeError);
  assert.equal(asked.items, 0);
  assert.equal(hub.size, 0);
  const ended = new AbortController();
  const other = hub.subscribe("ended", {
    topics: ["t"],
    encoding,
    signal: ended.signal,
  });
  ended.abort(new SlowConsumerError("ended"));
  assert.deepEqual(await readAll(other.readable), [
    "first 2 0 false",
    "too slow 2: SlowConsumerError",
  ]);
  hub.close();
});

Deno.test("Hub.subscribe() with an encoding: the gap is encoded in place, before the events after it", async () => {
  const hub = new Hub(new MemoryBroker<string>(), { bufferSize: 2 });
  const { encoding } = textEncoding();
  const subscription = hub.subscribe("lag", { topics: ["t"], encoding });
  const reader = subscription.readable.getReader();
  assert.equal((await reader.read()).value, "first 1 0 false");
  for (const data of ["a", "b", "c", "d"]) await hub.publish("t", data);
  const read = async () => (await reader.read()).value;
  assert.equal(await read(), "gap 1-2 slow-consumer");
  assert.equal(await read(), "event 3 c");
  assert.equal(await read(), "event 4 d");
  await reader.cancel();
  hub.close();
});

Deno.test("Hub.subscribe() with an encoding: a stream cancelled as its last chunk is handed over ends quietly, on a close or an abort", async () => {
  // Deno cancels a response body from inside enqueue() when it finds the
  // peer gone as it writes the chunk (a tab closed as the server drains):
  // here, the encoding's last() cancels. close() threw "The stream
  // controller cannot close or enqueue" from Hub.close().
  const { encoding } = textEncoding();
  let reader: ReadableStreamDefaultReader<string> | undefined;
  const cancelling: StreamEncoding<string, string> = {
    ...encoding,
    last: (start, error) => {
      void reader!.cancel();
      return encoding.last(start, error);
    },
  };
  const hub = new Hub(new MemoryBroker<string>());
  const left: LeaveReason[] = [];
  const subscription = hub.subscribe("gone", {
    topics: ["t"],
    encoding: cancelling,
    onLeave: (reason) => left.push(reason),
  });
  reader = subscription.readable.getReader();
  assert.equal((await reader.read()).value, "first 1 0 false");
  const pending = reader.read(); // waiting: the close ends it at once
  hub.close();
  assert.deepEqual(await pending, { done: true, value: undefined });
  assert.deepEqual(left, ["cancelled"]);
  assert.equal(hub.size, 0);

  const other = new Hub(new MemoryBroker<string>());
  const ended = new AbortController();
  const aborted = other.subscribe("gone", {
    topics: ["t"],
    encoding: cancelling,
    signal: ended.signal,
  });
  reader = aborted.readable.getReader();
  assert.equal((await reader.read()).value, "first 1 0 false");
  ended.abort(new SlowConsumerError("ended"));
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(other.size, 0);
  other.close();
});

Deno.test("Hub.subscribe() with an encoding that joins: a reader behind takes what is held in one chunk (64 at most), after a gap older than it", async () => {
  const hub = new Hub(new MemoryBroker<string>(), { bufferSize: 100 });
  const { encoding } = textEncoding();
  const joined: StreamEncoding<string, string> = {
    ...encoding,
    join: (chunks) => chunks.join(" | "),
  };
  const subscription = hub.subscribe("lag", {
    topics: ["t"],
    encoding: joined,
  });
  const reader = subscription.readable.getReader();
  const read = async () => (await reader.read()).value;
  assert.equal(await read(), "first 1 0 false");
  for (const data of ["a", "b", "c"]) await hub.publish("t", data);
  assert.equal(await read(), "event 1 a | event 2 b | event 3 c");
  // One held: as it is, not joined.
  await hub.publish("t", "d");
  assert.equal(await read(), "event 4 d");
  // Waiting: the next event is handed over at once, alone.
  const waiting = read();
  await hub.publish("t", "e");
  assert.equal(await waiting, "event 5 e");
  for (let i = 0; i < 70; i++) await hub.publish("t", String(i));
  const full = (await read())!.split(" | ");
  assert.equal(full.length, 64);
  assert.equal(full[0], "event 6 0");
  assert.equal((await read())!.split(" | ").length, 6);
  // Over the buffer: the gap (older than all held) first, then the rest joined.
  for (let i = 0; i < 102; i++) await hub.publish("t", String(i));
  assert.equal(await read(), "gap 76-77 slow-consumer");
  const rest = [(await read())!, (await read())!].join(" | ").split(" | ");
  assert.equal(rest.length, 100);
  assert.equal(rest[0], "event 78 2");
  assert.equal(hub.subscriptions()[0].delivered, 175);
  await reader.cancel();
  hub.close();
});
