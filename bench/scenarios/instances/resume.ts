/**
 * Resume of `BENCH_RESUME_EVENTS` (10,000): from a long-running
 * memory-broker instance, against a fresh JetStream instance that reads the
 * window back from the stream at start, a fresh one whose window holds a
 * tenth of them (the rest is read from the stream itself, a consumer for
 * that resume), and the long-running JetStream instance that published
 * them, which holds them in its window already.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Bench, Greeter } from "../../bench.ts";
import { SubscriberPool } from "../../pool.ts";
import { format, type Report } from "../../report.ts";
import { GreeterClient } from "../../../lib/client/client.ts";
import { startNatsServer } from "../../../testing/nats.ts";
import { instanceFlags, RESUME_EVENTS } from "./flags.ts";

/** Where a resume starts: after this cursor. */
interface Cursor {
  epoch: string;
  seq: number;
}

/**
 * Publishes `RESUME_EVENTS` events on topic `resume` through `target` (32
 * calls in flight); returns the cursor just before the first of them.
 */
async function fillStream(
  report: Report,
  { target, label }: { target: string; label: string },
): Promise<Cursor> {
  using client = new GreeterClient(target);
  const payload = new Uint8Array(32);
  let first = Infinity;
  let epoch = "";
  let sent = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (sent < RESUME_EVENTS) {
      sent++;
      const { cursor } = await client.publish("resume", payload);
      epoch = cursor.epoch;
      first = Math.min(first, Number(cursor.seq));
    }
  }));
  report.figure(
    `${label}: ${RESUME_EVENTS.toLocaleString("en-US")} published`,
    RESUME_EVENTS / ((performance.now() - start) / 1000),
    "publishes/s",
    "32 in flight, from the bench's process",
  );
  return { epoch, seq: first - 1 };
}

/**
 * One subscriber resumes on `target` after `after` and reads until it has
 * `RESUME_EVENTS` events (bounded: 60 s); reports the time, and returns it.
 */
async function resumeOnce(
  report: Report,
  { target, after, label }: { target: string; after: Cursor; label: string },
): Promise<number> {
  const n = RESUME_EVENTS;
  const pool = new SubscriberPool(target, {
    subscribers: 1,
    connections: 1,
    method: "Subscribe",
    topics: ["resume"],
    after,
  });
  try {
    const start = performance.now();
    await pool.start();
    const deadline = start + 60_000;
    while (pool.events < n && performance.now() < deadline) await delay(1);
    const ms = performance.now() - start;
    report.figure(
      `${label}: resume of ${n.toLocaleString("en-US")}`,
      ms,
      "ms",
      `${format(pool.events / (ms / 1000))} events/s; ${pool.events} events, ${
        pool.received - pool.events - 1
      } other messages (gaps, heartbeats)`,
    );
    return ms;
  } finally {
    pool.close();
  }
}

/** Spawns a greeter with `args`; reports the time until it listened. */
async function timedStart(
  bench: Bench,
  { args, label }: { args: string[]; label: string },
): Promise<Greeter> {
  const start = performance.now();
  const server = await bench.spawnGreeter(args);
  bench.report.figure(
    `${label}: start until listening`,
    performance.now() - start,
    "ms",
    "process start, connect, read the window back",
  );
  return server;
}

/**
 * The four resumes, and JetStream's times over the memory broker's.
 *
 * @example
 * ```ts ignore
 * import { Bench } from "../../bench.ts";
 * import { instancesResume } from "./resume.ts";
 * await using bench = new Bench();
 * await instancesResume(bench);
 * ```
 */
export async function instancesResume(bench: Bench): Promise<void> {
  const { report } = bench;
  let fromMemory: number;
  {
    const server = await timedStart(bench, {
      args: instanceFlags(),
      label: "memory broker",
    });
    await using _ = server.process;
    const after = await fillStream(report, {
      target: server.target,
      label: "memory",
    });
    fromMemory = await resumeOnce(report, {
      target: server.target,
      after,
      label: "memory broker, long-running",
    });
  }
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, ...instanceFlags()];
  const a = await timedStart(bench, {
    args: flags,
    label: "JetStream, empty stream",
  });
  await using _a = a.process;
  const after = await fillStream(report, {
    target: a.target,
    label: "JetStream",
  });
  const fromWindow = await resumeOnce(report, {
    target: a.target,
    after,
    label: "JetStream, long-running instance",
  });
  const b = await timedStart(bench, {
    args: flags,
    label: `JetStream, fresh instance, ${
      RESUME_EVENTS.toLocaleString("en-US")
    } in the stream`,
  });
  await using _b = b.process;
  const fromEngine = await resumeOnce(report, {
    target: b.target,
    after,
    label: "JetStream, fresh instance",
  });
  const small = Math.max(1, Math.floor(RESUME_EVENTS / 10));
  const c = await timedStart(bench, {
    args: [
      "--broker",
      nats.url,
      "--interval",
      "3600000",
      // The stream exists with larger limits, and keeps them.
      "--replay-size",
      String(small),
    ],
    label: `JetStream, fresh instance, window of ${
      small.toLocaleString("en-US")
    }`,
  });
  await using _c = c.process;
  const fromStream = await resumeOnce(report, {
    target: c.target,
    after,
    label: `JetStream, beyond a window of ${
      small.toLocaleString("en-US")
    } (read from the stream)`,
  });
  report.figure(
    "resume: JetStream fresh / memory",
    fromEngine / fromMemory,
    "x",
  );
  report.figure(
    "resume: JetStream beyond the window / memory",
    fromStream / fromMemory,
    "x",
  );
  report.figure(
    "resume: JetStream long-running / memory",
    fromWindow / fromMemory,
    "x",
  );
}
