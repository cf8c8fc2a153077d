// The hub's resume paths over a shared log, with a scripted broker: what it
// hands listeners (jumps included) and what its replay reads are the test's.
import assert from "node:assert/strict";
import { Hub } from "../lib/bus/hub.ts";
import { type HubItem } from "../lib/bus/hub_items.ts";
import { UnavailableError } from "../lib/errors.ts";
import { scriptedBroker } from "../testing/scripted_broker.ts";
import { waitFor } from "../testing/server.ts";
import { PeerShares } from "../lib/access/peer_shares.ts";

function render(item: HubItem<string> | undefined): string {
  if (!item) return "end";
  if (item.kind === "event") return item.data;
  if (item.kind === "gap") {
    return `gap ${item.from}-${item.to} (${item.reason})`;
  }
  return "heartbeat";
}

/** The next item, or a failure after 2 s (a read that would hang). */
async function nextItem(
  reader: ReadableStreamDefaultReader<HubItem<string>>,
): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the read hangs")), 2_000);
  });
  try {
    const { value } = await Promise.race([reader.read(), late]);
    return render(value);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Hub: a broker's skip during a replay reports every seq the replay had not reached as a gap", async () => {
  const { broker, hand } = scriptedBroker();
  const hub = new Hub(broker);
  for (let seq = 1; seq <= 4; seq++) hand(seq);
  const sub = hub.subscribe("r", { after: { epoch: "e", seq: 1 } });
  assert.equal(sub.recovered, true);
  const reader = sub.readable.getReader();
  assert.equal(await nextItem(reader), "e2");
  hand(8); // 5-7 are gone from the log; the window restarts after 7
  // 3 and 4 were in the window the replay was reading: lost with it.
  assert.deepEqual([await nextItem(reader), await nextItem(reader)], [
    "gap 3-7 (expired)",
    "e8",
  ]);
  await reader.cancel();
  hub.close();
});

Deno.test("Hub.close() ends a stream whose read waits on the broker's replay", async () => {
  const { broker, hand, replays } = scriptedBroker();
  const hub = new Hub(broker, { replaySize: 2 });
  for (let seq = 1; seq <= 4; seq++) hand(seq);
  const sub = hub.subscribe("r", { after: { epoch: "e", seq: 0 } });
  assert.equal(sub.recovered, true, sub.reason ?? "");
  const reader = sub.readable.getReader();
  const read = nextItem(reader);
  await waitFor("the read to wait on the broker's log", () => replays() === 1);
  hub.close();
  assert.equal(await read, "end");
  assert.equal(replays(), 0);
  assert.equal(hub.size, 0);
});

Deno.test("Hub: a broker's skip during a replay from the broker's log stops that read and reports the gap", async () => {
  const { broker, hand, replays } = scriptedBroker();
  const hub = new Hub(broker, { replaySize: 2 });
  for (let seq = 1; seq <= 4; seq++) hand(seq);
  const sub = hub.subscribe("r", { after: { epoch: "e", seq: 0 } });
  const reader = sub.readable.getReader();
  const read = nextItem(reader);
  await waitFor("the read to wait on the broker's log", () => replays() === 1);
  hand(8);
  assert.deepEqual([await read, await nextItem(reader)], [
    "gap 1-7 (expired)",
    "e8",
  ]);
  assert.equal(replays(), 0);
  await reader.cancel();
  hub.close();
});

Deno.test("Hub: only so many resumes read from the broker's log at once; the next is refused as retryable, and admitted once one ends", () => {
  const { broker, hand } = scriptedBroker();
  const hub = new Hub(broker, { replaySize: 2, maxBrokerReplays: 2 });
  for (let seq = 1; seq <= 10; seq++) hand(seq);
  const resume = (signal?: AbortSignal) =>
    hub.subscribe("r", { after: { epoch: "e", seq: 1 }, signal });
  const first = new AbortController();
  resume(first.signal);
  resume();
  assert.throws(
    () => resume(),
    (error: Error) =>
      error instanceof UnavailableError &&
      /all 2 reads of the event stream are taken \(resumes older than this instance's window read it\); retry/
        .test(
          error.message,
        ),
  );
  first.abort();
  assert.equal(resume().recovered, true);
  hub.close();
});

Deno.test("Hub: an event the broker marks rejected is a gap (rejected) for the subscribers it would have reached, live, held or replayed, and is never handed over", async () => {
  const { broker, hand } = scriptedBroker({ log: false });
  const hub = new Hub(broker);
  const waiting = hub.subscribe("waiting", { topics: ["t"] });
  const holding = hub.subscribe("holding", { topics: ["t"] });
  const elsewhere = hub.subscribe("elsewhere", { topics: ["other"] });
  const reader = waiting.readable.getReader();
  const first = nextItem(reader); // a read waits: the next item goes straight to it
  hand(1, { rejected: "size", data: "" });
  assert.equal(await first, "gap 1-1 (rejected)");
  hand(2);
  hand(3, { rejected: "topic", data: "" });
  hand(4);
  assert.deepEqual(
    [await nextItem(reader), await nextItem(reader), await nextItem(reader)],
    ["e2", "gap 3-3 (rejected)", "e4"],
  );
  const held = holding.readable.getReader(); // read after all were held
  const items = [];
  for (let i = 0; i < 4; i++) items.push(await nextItem(held));
  assert.deepEqual(items, [
    "gap 1-1 (rejected)",
    "e2",
    "gap 3-3 (rejected)",
    "e4",
  ]);
  const resumed = hub.subscribe("back", {
    topics: ["t"],
    after: { epoch: "e", seq: 0 },
  });
  const replay = resumed.readable.getReader();
  const replayed = [];
  for (let i = 0; i < 4; i++) replayed.push(await nextItem(replay));
  assert.deepEqual(replayed, items, "from the window, as live");
  assert.deepEqual(
    hub.subscriptions().map((info) => [info.name, info.delivered]),
    [["waiting", 2], ["holding", 2], ["elsewhere", 0], ["back", 2]],
  );
  // Whom it would not have reached hears nothing of it.
  hand(5, { topic: "other" });
  const other = elsewhere.readable.getReader();
  assert.equal(await nextItem(other), "e5");
  await other.cancel();
  await reader.cancel();
  await held.cancel();
  await replay.cancel();
  hub.close();
});

Deno.test("Hub: each holder gets only its share of the reads from the broker's log; another holder still resumes", () => {
  const { broker, hand } = scriptedBroker();
  const hub = new Hub(broker, {
    replaySize: 2,
    brokerReplaySlots: new PeerShares({
      total: 4,
      perPeer: 2,
      what: "reads of the event stream",
    }),
  });
  for (let seq = 1; seq <= 10; seq++) hand(seq);
  const resume = (holder: string) =>
    hub.subscribe("r", { after: { epoch: "e", seq: 1 }, holder });
  assert.equal(resume("10.0.0.2:5000").recovered, true);
  assert.equal(resume("10.0.0.2:5001").recovered, true);
  assert.throws(
    () => resume("10.0.0.2:5002"),
    (error: Error) =>
      error instanceof UnavailableError &&
      /Cannot resume after seq 1 now: 10\.0\.0\.2 holds 2 reads of the event stream, its share of 2/
        .test(error.message),
  );
  assert.equal(resume("10.0.0.3:5000").recovered, true);
  hub.close();
});

Deno.test("Hub: a read from the broker's log whose reader has not asked for longer than brokerReplayIdleMs gives its slot to the next resume, and its reader gets a slow-consumer gap", async () => {
  const { broker, hand } = scriptedBroker();
  const clock = { now: 1_000_000 };
  const hub = new Hub(broker, {
    replaySize: 3,
    maxBrokerReplays: 1,
    brokerReplayIdleMs: 30_000,
    now: () => clock.now,
  });
  for (let seq = 1; seq <= 10; seq++) hand(seq);
  const idle = hub.subscribe("idle", { after: { epoch: "e", seq: 1 } });
  const resume = () => hub.subscribe("next", { after: { epoch: "e", seq: 2 } });
  // Not idle for long yet: the one slot stays its.
  clock.now += 29_000;
  assert.throws(resume, UnavailableError);
  clock.now += 2_000;
  const next = resume();
  assert.equal(next.recovered, true);
  // What it had not read of the log is a gap; then the window's events.
  const reader = idle.readable.getReader();
  assert.deepEqual(
    [await nextItem(reader), await nextItem(reader), await nextItem(reader)],
    ["gap 2-7 (slow-consumer)", "e8", "e9"],
  );
  await reader.cancel();
  await next.readable.cancel();
  hub.close();
});

Deno.test("Hub.heartbeat() lets go of reads from the broker's log whose reader has not asked for longer than brokerReplayIdleMs, not of those waiting on the log", async () => {
  const { broker, hand, replays } = scriptedBroker();
  const clock = { now: 1_000_000 };
  const hub = new Hub(broker, {
    replaySize: 3,
    brokerReplayIdleMs: 30_000,
    now: () => clock.now,
  });
  for (let seq = 1; seq <= 10; seq++) hand(seq);
  const idle = hub.subscribe("idle", { after: { epoch: "e", seq: 0 } });
  const stuck = hub.subscribe("stuck", { after: { epoch: "e", seq: 0 } });
  const stuckReader = stuck.readable.getReader();
  // Its reader asks: the read waits on the log (an engine slow to answer
  // is no idle reader).
  const first = nextItem(stuckReader);
  await waitFor("the read to wait on the broker's log", () => replays() === 1);
  clock.now += 60_000;
  hub.heartbeat();
  assert.equal(replays(), 1);
  const idleReader = idle.readable.getReader();
  assert.deepEqual([await nextItem(idleReader), await nextItem(idleReader)], [
    "gap 1-7 (slow-consumer)",
    "e8",
  ]);
  hub.close();
  assert.equal(await first, "end");
});
