import assert from "node:assert/strict";
import { LocalTally, SharedTally } from "../lib/access/tally.ts";
import { CapacityError } from "../lib/errors.ts";
import { waitFor } from "../testing/server.ts";

Deno.test("LocalTally counts by key against a limit", () => {
  const tally = new LocalTally();
  assert.ok(tally.take("a", 2));
  assert.ok(tally.take("a", 2));
  assert.ok(!tally.take("a", 2));
  assert.ok(tally.take("b", 2));
  tally.give("a");
  assert.deepEqual([tally.count("a"), tally.count("b"), tally.count("c")], [
    1,
    1,
    0,
  ]);
});

Deno.test("SharedTally counts one key over every column, and keeps each key apart through deletes", () => {
  // A small table: runs of colliding rows, moved back as rows empty.
  const memory = SharedTally.allocate(6, 3); // 16 rows for 10 keys
  const columns = [0, 1, 2].map((c) => new SharedTally(memory, c));
  const expected = new Map<string, number>();
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let step = 0; step < 20_000; step++) {
    const key = `10.0.${Math.floor(random() * 10)}.1`;
    const tally = columns[Math.floor(random() * 3)];
    const count = expected.get(key) ?? 0;
    if (random() < 0.55 || count === 0) {
      const taken = tally.take(key, 5);
      assert.equal(taken, count < 5, `${key} at ${count}`);
      if (taken) expected.set(key, count + 1);
    } else {
      // Give back from a column that holds one.
      const holder = columns.find((c) =>
        c.counts(key)[columns.indexOf(c)] > 0
      )!;
      holder.give(key);
      expected.set(key, count - 1);
    }
  }
  for (const [key, count] of expected) {
    assert.equal(columns[0].count(key), count, key);
  }
});

Deno.test("SharedTally.release() takes a dead worker's counts out, and its lock", () => {
  const memory = SharedTally.allocate(16, 2);
  const [a, b] = [new SharedTally(memory, 0), new SharedTally(memory, 1)];
  for (let i = 0; i < 3; i++) a.take("peer", 10);
  b.take("peer", 10);
  a.take("only-a", 10);
  // Worker 0 dies holding the lock.
  new Int32Array(memory.buffer)[0] = 1;
  SharedTally.release(memory, 0);
  assert.deepEqual([b.count("peer"), b.count("only-a")], [1, 0]);
  assert.ok(b.take("peer", 2));
  assert.ok(!b.take("peer", 2));
});

Deno.test("SharedTally refuses a key beyond its room with CapacityError", () => {
  const memory = SharedTally.allocate(1, 1); // 16 rows: 12 keys
  const tally = new SharedTally(memory, 0);
  for (let i = 0; i < 12; i++) assert.ok(tally.take(`k${i}`, 1));
  assert.throws(() => tally.take("one more", 1), CapacityError);
  assert.ok(!tally.take("k0", 1), "an existing key is still counted");
});

Deno.test("SharedTally in two threads at once never lets a key past its limit", async () => {
  const memory = SharedTally.allocate(64, 2);
  const worker = new Worker(
    new URL("../testing/tally_worker.ts", import.meta.url),
    { type: "module" },
  );
  try {
    let done: { over: number } | undefined;
    let failed: string | undefined;
    worker.onmessage = (message) => done = message.data;
    worker.onerror = (error) => {
      error.preventDefault();
      failed = error.message;
    };
    const rounds = 20_000;
    worker.postMessage({ memory, column: 1, rounds });
    const tally = new SharedTally(memory, 0);
    let over = 0;
    for (let i = 0; i < rounds; i++) {
      if (tally.take("hot", 3)) {
        if (tally.count("hot") > 3) over++;
        tally.give("hot");
      }
    }
    await waitFor("the other thread", () => !!done || !!failed, 20_000);
    assert.equal(failed, undefined);
    assert.deepEqual([over, done!.over], [0, 0]);
    assert.equal(tally.count("hot"), 0);
  } finally {
    worker.terminate();
  }
});
