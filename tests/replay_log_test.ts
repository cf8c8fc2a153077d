import assert from "node:assert/strict";
import { ReplayLog } from "../lib/bus/replay_log.ts";

const event = (seq: number, data: string, time = 0) => ({
  kind: "event" as const,
  seq,
  time,
  topic: "t",
  data,
});

Deno.test("ReplayLog keeps the last `size` events, by seq", () => {
  const log = new ReplayLog<string>({ size: 3, maxAgeMs: 1000 });
  for (let seq = 1; seq <= 5; seq++) log.append(event(seq, `${seq}`), 0);
  assert.deepEqual([log.first, log.last, log.length], [3, 5, 3]);
  assert.equal(log.get(2), undefined);
  assert.equal(log.get(4)?.data, "4");
  assert.throws(() => log.append(event(5, "x"), 0), /out of order/);
});

Deno.test("ReplayLog holds numbers with holes, finds by seq, and says what it let go", () => {
  const log = new ReplayLog<string>({ size: 3, maxAgeMs: 1000 });
  for (const seq of [2, 5, 6, 9]) log.append(event(seq, `${seq}`), 0);
  assert.deepEqual([log.first, log.last, log.lost, log.length], [5, 9, 2, 3]);
  assert.equal(log.get(5)?.data, "5");
  assert.equal(log.get(7), undefined);
  assert.equal(log.next(6)?.seq, 9);
  assert.equal(log.next(2)?.seq, 5);
  assert.equal(log.next(9), undefined);
});

Deno.test("ReplayLog holds at most maxBytes, the newest event always", () => {
  const log = new ReplayLog<string>({
    size: 100,
    maxAgeMs: 1000,
    maxBytes: 10,
    sizeOf: (data) => data.length,
  });
  for (const [seq, data] of [[1, "aaaa"], [2, "bbbb"], [3, "cc"]] as const) {
    log.append(event(seq, data), 0);
  }
  assert.deepEqual([log.first, log.bytes], [1, 10]);
  log.append(event(4, "d"), 0);
  assert.deepEqual([log.first, log.bytes], [2, 7]);
  log.append(event(5, "e".repeat(50)), 0); // heavier than the bound alone
  assert.deepEqual([log.first, log.last, log.bytes], [5, 5, 50]);
});

Deno.test("ReplayLog lets events older than maxAgeMs go", () => {
  const log = new ReplayLog<string>({ size: 10, maxAgeMs: 100, after: 41 });
  log.append(event(42, "old", 0), 0);
  log.append(event(43, "new", 150), 150);
  assert.deepEqual([log.first, log.last], [43, 43]);
  log.expire(1000);
  assert.equal(log.length, 0);
  assert.equal(log.first, 44);
});
