import assert from "node:assert/strict";
import type { BusEvent } from "../lib/bus/broker.ts";
import {
  SharedWindow,
  type SharedWindowOptions,
  SharedWindowReader,
} from "../lib/bus/shared_window.ts";
import { waitFor } from "../testing/server.ts";

const text = new TextEncoder();

const event = (
  seq: number,
  data: string,
  time = 0,
  topic = "t",
): BusEvent<Uint8Array> => ({
  kind: "event",
  seq,
  time,
  topic,
  data: text.encode(data),
});

function windowOf(options: Partial<SharedWindowOptions> = {}) {
  const window = new SharedWindow({
    size: 3,
    maxAgeMs: 1000,
    maxBytes: 1 << 20,
    maxRecordBytes: 4096,
    ...options,
  });
  const reader = () =>
    new SharedWindowReader(window.memory, { through: window.last });
  return { window, reader };
}

const payload = (e?: BusEvent<Uint8Array>) =>
  e && new TextDecoder().decode(e.data);

Deno.test("SharedWindow keeps the last `size` events, and a reader sees them", () => {
  const { window, reader } = windowOf();
  for (let seq = 1; seq <= 5; seq++) window.append(event(seq, `${seq}`), 0);
  const r = reader();
  assert.deepEqual([r.first, r.last, r.lost, r.length], [3, 5, 2, 3]);
  assert.deepEqual([window.first, window.lost, window.length], [3, 2, 3]);
  assert.equal(r.next(0)?.seq, 3);
  assert.equal(payload(r.next(3)), "4");
  assert.equal(r.next(5), undefined);
  assert.throws(() => window.append(event(5, "x"), 0), /out of order/);
});

Deno.test("SharedWindowReader holds numbers with holes and copies each event out once", () => {
  const { window, reader } = windowOf();
  for (const seq of [2, 5, 6, 9]) {
    window.append(event(seq, `${seq}`, seq, `topic.${seq}`), 0);
  }
  const r = reader();
  assert.deepEqual([r.first, r.last, r.lost, r.length], [5, 9, 2, 3]);
  const five = r.next(2)!;
  assert.deepEqual({ ...five, data: payload(five) }, {
    kind: "event",
    seq: 5,
    time: 5,
    topic: "topic.5",
    data: "5",
  });
  assert.ok(!(five.data.buffer instanceof SharedArrayBuffer));
  assert.equal(r.next(2), five, "decoded once, the same object again");
  assert.equal(r.next(6)?.seq, 9);
  assert.equal(r.next(9), undefined);
});

Deno.test("SharedWindowReader shows nothing past its hub's seq until the hub takes it in", () => {
  const { window } = windowOf({ size: 10 });
  for (let seq = 1; seq <= 3; seq++) window.append(event(seq, `${seq}`), 0);
  const r = new SharedWindowReader(window.memory, { through: 1 });
  assert.equal(r.next(1), undefined);
  assert.equal(r.first, 1);
  assert.equal(r.read(1)?.seq, 2, "read() takes events in live, ahead");
  r.append(r.read(1)!);
  assert.equal(r.next(1)?.seq, 2);
  assert.equal(r.next(2), undefined);
});

Deno.test("SharedWindow holds at most maxBytes by weight, the newest event always", () => {
  const { window, reader } = windowOf({
    size: 100,
    maxBytes: 10,
    sizeOf: (data) => data.length,
  });
  for (const [seq, data] of [[1, "aaaa"], [2, "bbbb"], [3, "cc"]] as const) {
    window.append(event(seq, data), 0);
  }
  assert.deepEqual([reader().first, window.bytes], [1, 10]);
  window.append(event(4, "d"), 0);
  assert.deepEqual([reader().first, window.bytes], [2, 7]);
  window.append(event(5, "e".repeat(50)), 0); // heavier than the bound alone
  assert.deepEqual([reader().first, reader().last, window.bytes], [5, 5, 50]);
  assert.equal(payload(reader().next(4)), "e".repeat(50));
});

Deno.test("SharedWindow lets events older than maxAgeMs go, and a reader counts them let go", () => {
  const { window } = windowOf({ size: 10, maxAgeMs: 100, after: 41 });
  window.append(event(42, "old", 0), 0);
  const r = new SharedWindowReader(window.memory, { through: 43 });
  window.append(event(43, "new", 50), 50);
  assert.deepEqual([r.first, r.lost], [42, 41]);
  r.expire(150); // the writer has not expired 42 yet: the reader does not show it
  assert.deepEqual([r.first, r.lost], [43, 42]);
  window.expire(1000);
  assert.equal(window.length, 0);
  assert.deepEqual([r.first, r.lost], [44, 43]);
});

Deno.test("SharedWindow.restart() promises no resume before a skip, and still hands what it holds live", () => {
  const { window } = windowOf({ size: 10 });
  for (const seq of [1, 2]) window.append(event(seq, `${seq}`), 0);
  window.restart(6); // 3 to 6 never came
  window.append(event(7, "7"), 0);
  const r = new SharedWindowReader(window.memory, { through: 7 });
  assert.deepEqual([r.first, r.lost], [7, 6]);
  assert.equal(r.next(0)?.seq, 7);
  assert.deepEqual([r.read(0)?.seq, r.read(1)?.seq, r.read(2)?.seq], [1, 2, 7]);
});

Deno.test("SharedWindow wraps its ring of bytes, evicting what the next event overwrites", () => {
  const { window, reader } = windowOf({
    size: 1000,
    maxBytes: 64,
    maxRecordBytes: 32,
  });
  for (let seq = 1; seq <= 500; seq++) {
    window.append(event(seq, `${seq}`.padStart(20, "x")), 0);
  }
  const r = reader();
  assert.ok(r.length > 1 && r.length < 10, `held ${r.length}`);
  for (let e = r.next(0); e; e = r.next(e.seq)) {
    assert.equal(payload(e), `${e.seq}`.padStart(20, "x"));
  }
});

Deno.test("SharedWindow holds an event over maxRecordBytes refused, without its payload", () => {
  const { window, reader } = windowOf({ maxRecordBytes: 64 });
  window.append(event(1, "x".repeat(100)), 0);
  const held = reader().next(0)!;
  assert.deepEqual([held.rejected, held.data.length, held.topic], [
    "size",
    0,
    "t",
  ]);
  window.append({ ...event(2, ""), rejected: "topic" }, 0);
  assert.equal(reader().next(1)?.rejected, "topic");
});

Deno.test("SharedWindowReader in another thread reads every event whole while the writer laps the ring", async () => {
  const { window } = windowOf({
    size: 64,
    maxBytes: 4096,
    maxRecordBytes: 256,
  });
  const worker = new Worker(
    new URL("../testing/shared_window_reader.ts", import.meta.url),
    { type: "module" },
  );
  try {
    const messages: { read: number; torn: number; gaps: number }[] = [];
    let failed: Error | undefined;
    worker.onmessage = (message) => messages.push(message.data);
    worker.onerror = (error) => {
      error.preventDefault();
      failed = new Error(error.message);
    };
    const total = 100_000;
    worker.postMessage({ memory: window.memory, total });
    await waitFor(
      "the reader",
      () => messages.length > 0 || !!failed,
      20_000,
    );
    for (let seq = 1; seq <= total; seq++) {
      // Payloads of varying length, each naming its seq.
      window.append(
        event(seq, `${seq}:`.padEnd(8 + (seq % 97), "z"), seq),
        seq,
      );
      if (seq % 200 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await waitFor("its count", () => messages.length > 1 || !!failed, 20_000);
    if (failed) throw failed;
    const answer = messages[1];
    const { read, torn } = answer;
    assert.equal(torn, 0);
    assert.ok(read > 1000, `read only ${read}`);
  } finally {
    worker.terminate();
  }
});
