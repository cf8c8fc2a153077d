import assert from "node:assert/strict";
import { runTicker } from "../lib/bus/ticker.ts";
import { ManualClock } from "../testing/manual_clock.ts";

Deno.test("runTicker() ticks once per interval and clears its timer on abort", async () => {
  const clock = new ManualClock();
  const controller = new AbortController();
  const times: number[] = [];
  const start = clock.now();
  const done = runTicker(() => times.push(clock.now() - start), {
    intervalMs: 1000,
    clock,
    signal: controller.signal,
  });
  await clock.advance(3500);
  assert.deepEqual(times, [1000, 2000, 3000]);
  controller.abort();
  await done;
  assert.equal(clock.pending, 0);
  await clock.advance(5000);
  assert.equal(times.length, 3);
});

/** A clock whose n-th sleep overshoots by `lags[n]` milliseconds. */
function lateClock(lags: number[]) {
  const clock = new ManualClock();
  let n = 0;
  return Object.assign(Object.create(clock), {
    now: () => clock.now(),
    sleep: (ms: number, signal?: AbortSignal) =>
      clock.sleep(ms + (lags[n++] ?? 0), signal),
    advance: (ms: number) => clock.advance(ms),
  }) as ManualClock;
}

/** Tick times (ms from start) over `advanceMs` when sleeps overshoot by `lags`. */
async function tickTimes(lags: number[], advanceMs: number): Promise<number[]> {
  const clock = lateClock(lags);
  const controller = new AbortController();
  const times: number[] = [];
  const start = clock.now();
  const done = runTicker(() => times.push(clock.now() - start), {
    intervalMs: 100,
    clock,
    signal: controller.signal,
  });
  await clock.advance(advanceMs);
  controller.abort();
  await done;
  return times;
}

Deno.test("runTicker() stays on its grid when a timer fires late", async () => {
  // The second tick comes 30 ms late; the third is back on the grid.
  assert.deepEqual(await tickTimes([0, 30], 400), [100, 230, 300, 400]);
});

Deno.test("runTicker() skips ticks missed by more than a period instead of bursting", async () => {
  assert.deepEqual(await tickTimes([0, 250], 600), [100, 450, 500, 600]);
});

Deno.test("runTicker() rejects a non-positive interval", async () => {
  await assert.rejects(
    runTicker(() => {}, {
      intervalMs: 0,
      signal: new AbortController().signal,
    }),
    /interval must be positive, got 0/,
  );
});

Deno.test("runTicker() aligned ticks on the wall clock's multiples of the interval, named by them", async () => {
  const clock = new ManualClock();
  await clock.advance(1234 - clock.now() % 1000); // mid-interval: …234
  const controller = new AbortController();
  const scheduled: number[] = [];
  const done = runTicker((_, at) => scheduled.push(at), {
    intervalMs: 1000,
    clock,
    signal: controller.signal,
    aligned: true,
  });
  await clock.advance(2000);
  controller.abort();
  await done;
  assert.equal(scheduled.length, 2);
  for (const at of scheduled) {
    assert.equal(at % 1000, 0, `${at} is on the grid`);
  }
  assert.equal(scheduled[1] - scheduled[0], 1000);
});
