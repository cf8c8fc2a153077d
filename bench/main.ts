/**
 * `deno task bench`: starts the real server as users run it and measures
 * unary throughput, the clock tick's fan-out, broadcast fan-out at 1,000 /
 * 5,000 / 10,000 subscribers with delivery latency, subscribe rate, memory
 * per idle subscriber at 20,000, the time from subscribers' death to their
 * removal, and memory under stalled subscribers; each against a bare grpc-js
 * server where one applies. With nats-server installed, also several
 * instances on one NATS JetStream stream against the memory broker:
 * publish-to-delivery across two instances, resume from a fresh instance,
 * and two `--reuse-port` processes against one. Prints a table, then the
 * same figures as one JSON line. Figures, never assertions: tests do not
 * time anything.
 *
 * @module
 */

import os from "node:os";
import process from "node:process";
import { setTimeout as delay } from "node:timers/promises";
import { GreeterClient } from "../lib/client/client.ts";
import { runTicker } from "../lib/bus/ticker.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import http2 from "node:http2";
import {
  grpcFrame,
  helloRequestFrame,
  stalledCall,
} from "../testing/server.ts";
import { buildGoServer } from "./go_server.ts";
import { type PoolMethod, preciseNow, SubscriberPool } from "./pool.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { PYTHON, pythonGrpcMissing, seedProgram } from "../testing/python.ts";
import { join } from "node:path";
import {
  LineProcess,
  ROOT,
  scriptArgs,
  spawnServer,
  spawnSubscriberPool,
} from "../testing/process.ts";

const env = (name: string, fallback: number) =>
  Number(Deno.env.get(name) ?? fallback);
const SECONDS = env("BENCH_SECONDS", 4);
const FANOUT = env("BENCH_SUBSCRIBERS", 1000);
const BROADCAST = (Deno.env.get("BENCH_BROADCAST") ?? "1000,5000,10000")
  .split(",").map(Number);
const IDLE = env("BENCH_IDLE_SUBSCRIBERS", 20_000);
const STALLED = env("BENCH_STALLED", 100);
const STALLED_SECONDS = env("BENCH_STALLED_SECONDS", 20);
/** Milliseconds a fan-out runs before it is measured: the queues that fill at its start have settled. */
const WARM_UP_MS = 2000;
/** Milliseconds between two broadcast publishes. */
const PUBLISH_MS = env("BENCH_PUBLISH_MS", 10);
/** Sections to run (`BENCH_ONLY=tick,death`); all by default. */
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",");
const section = (name: string) => !ONLY || ONLY.includes(name);
/** Subscriptions per connection the generator opens. */
const PER_CONNECTION = 100;

interface Row {
  name: string;
  value: string;
  note?: string;
}
const rows: Row[] = [];
const json: Record<string, unknown> = {};
function report(name: string, value: number, unit: string, note?: string) {
  json[name] = value;
  rows.push({ name, value: `${format(value)} ${unit}`, note });
  // As it comes, so that a run that fails later still leaves its figures.
  console.error(`${name}: ${format(value)} ${unit}`);
}
const format = (n: number) =>
  n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);

/** Reads a /proc file through cat: Deno reads /proc only with --allow-all. */
function proc(path: string): string {
  const { stdout } = new Deno.Command("cat", { args: [path] }).outputSync();
  return new TextDecoder().decode(stdout);
}

function rssKb(pid: number): number {
  const status = proc(`/proc/${pid}/status`);
  const kb = status.match(/VmRSS:\s+(\d+)/)?.[1];
  if (kb === undefined) throw new Error(`Server process ${pid} is gone`);
  return Number(kb);
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const fields = proc(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/** The machine's CPU counters (jiffies): all, idle (and waiting for I/O), and stolen by the hypervisor. */
function cpuTimes(): { total: number; idle: number; steal: number } {
  const fields = proc("/proc/stat").split("\n")[0].trim().split(/\s+/)
    .slice(1).map(Number);
  return {
    total: fields.reduce((a, b) => a + b, 0),
    idle: fields[3] + (fields[4] ?? 0),
    steal: fields[7] ?? 0,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function environment() {
  const cpu = os.cpus()[0]?.model;
  const imports = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`))
    .imports;
  const env = {
    deno: Deno.version.deno,
    grpcJs: imports["@grpc/grpc-js"].replace("npm:@grpc/grpc-js@", ""),
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    date: new Date().toISOString(),
  };
  json.environment = env;
  return env;
}

/** Our own load generator: 10 channels x 10 calls in flight, for SECONDS. */
async function unary(target: string, label: string) {
  const clients = Array.from({ length: 10 }, () => new GreeterClient(target));
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    clients.flatMap((client) =>
      Array.from({ length: 10 }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await client.sayHello("bench");
          latencies.push(performance.now() - t);
        }
      })
    ),
  );
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  for (const client of clients) client.close();
  latencies.sort((a, b) => a - b);
  report(`unary ${label} req/s`, latencies.length / wall, "req/s");
  report(`unary ${label} p50`, percentile(latencies, 0.5), "ms");
  report(`unary ${label} p99`, percentile(latencies, 0.99), "ms");
  report(
    `unary ${label} generator CPU`,
    ((cpu.user + cpu.system) / 1e6 / wall) * 100,
    "% of a core",
    "near 100%: the generator, not the server, was the limit",
  );
  return latencies.length / wall;
}

/** h2load (Debian nghttp2-client) -c 10 -m 10 at `port`: req/s, or `undefined` when not installed. */
async function h2load(port: number): Promise<number | undefined> {
  const body = await Deno.makeTempFile();
  try {
    await Deno.writeFile(body, helloRequestFrame("bench"));
    const out = await new Deno.Command("h2load", {
      args: [
        "-n",
        String(SECONDS * 10_000),
        "-c",
        "10",
        "-m",
        "10",
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-d",
        body,
        `http://127.0.0.1:${port}/helloworld.Greeter/SayHello`,
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const rps = Number(text.match(/finished in [^,]+, ([\d.]+) req\/s/)?.[1]);
    return rps || NaN;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  } finally {
    await Deno.remove(body);
  }
}

/** A unary server the h2load comparison calls. */
interface UnaryPeer {
  label: string;
  port: number;
}

/**
 * The seed's own Python server, the issue's other yardstick for unary
 * calls, where this machine has it; stopped when `stack` is disposed; when
 * missing, reported as skipped.
 */
async function pythonUnaryPeer(
  stack: AsyncDisposableStack,
): Promise<UnaryPeer[]> {
  const missing = pythonGrpcMissing();
  if (missing) {
    rows.push({ name: "unary seed Python", value: "skipped", note: missing });
    return [];
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const dir = await seedProgram(
    "async_greeter_server.py",
    '"[::]:50051"',
    `"127.0.0.1:${port}"`,
  );
  stack.defer(() => Deno.remove(dir, { recursive: true }));
  const seed = stack.use(
    new LineProcess([join(dir, "async_greeter_server.py")], {
      command: PYTHON,
      cwd: dir,
      env: { PYTHONUNBUFFERED: "1" },
    }),
  );
  await seed.waitForLine("stderr", /Starting server on/);
  return [{ label: "seed Python grpc.aio", port }];
}

/**
 * h2load against every peer, three rounds interleaved (so that a noisy
 * moment hits all alike): reports each median and the greeter's ratio to
 * each other peer. The first peer is the greeter.
 */
async function unaryH2load(peers: UnaryPeer[]): Promise<void> {
  const runs = peers.map(() => [] as number[]);
  for (let round = 0; round < 3; round++) {
    for (const [i, peer] of peers.entries()) {
      const rps = await h2load(peer.port);
      if (rps === undefined) {
        rows.push({
          name: "unary h2load",
          value: "skipped",
          note: "h2load not installed (apt-get install nghttp2-client)",
        });
        return;
      }
      runs[i].push(rps);
    }
  }
  const medians = runs.map((r) => r.sort((a, b) => a - b)[1]);
  for (const [i, peer] of peers.entries()) {
    report(
      `unary ${peer.label} h2load req/s`,
      medians[i],
      "req/s",
      `median of 3, -c 10 -m 10 (${runs[i].map(format).join(", ")})`,
    );
  }
  for (const [i, peer] of peers.entries()) {
    if (i === 0) continue;
    report(
      `unary greeter / ${peer.label} (h2load)`,
      medians[0] / medians[i],
      "x",
    );
  }
}

/**
 * One series of the greeter's metrics page, summed over the processes at
 * `metricsPorts` (0 for the baseline, which has none).
 */
async function metric(name: string, metricsPorts: number[]): Promise<number> {
  return (await metrics([name], metricsPorts))[0];
}

/**
 * Several series of one reading of each process's metrics page, summed over
 * the processes (0s for the baseline, which has no page).
 */
async function metrics(
  names: string[],
  metricsPorts: number[],
): Promise<number[]> {
  const sums = names.map(() => 0);
  for (const port of metricsPorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`))
      .text();
    names.forEach((name, i) => {
      sums[i] += Number(
        text.match(new RegExp(`^${name} (\\S+)`, "m"))?.[1] ?? 0,
      );
    });
  }
  return sums;
}

/** The greeter's event counters, and when they were read (0s for the baseline). */
async function counters(metricsPorts: number[]) {
  const [published, written, dropped] = await metrics([
    "greeter_events_published_total",
    "greeter_events_delivered_total",
    "greeter_events_dropped_total",
  ], metricsPorts);
  // A busy server renders its page late, then answers at once: the time of
  // the answer is the time of the figures.
  const at = performance.now();
  return { at, published, written, dropped };
}

/** Starts the greeter with metrics on; returns it with its metrics port. */
async function spawnGreeter(args: string[]) {
  const spawned = await started(spawnServer([
    ...args,
    "--metrics-port",
    "0",
    // Every pool connects from 127.0.0.1: one peer.
    "--max-subscribers-per-peer",
    "10000000",
  ]));
  const [, metricsPort] = await spawned.process.waitForLine(
    "stderr",
    /Metrics on http:\/\/\S+:(\d+)\/metrics/,
  );
  return { ...spawned, metricsPort: Number(metricsPort) };
}

/** Every server the bench started, for {@linkcode diedOnTheirOwn}. */
const servers: LineProcess[] = [];

/** Keeps the server `spawning` resolves to in {@linkcode servers}. */
async function started<T extends { process: LineProcess }>(
  spawning: Promise<T>,
): Promise<T> {
  const spawned = await spawning;
  servers.push(spawned.process);
  return spawned;
}

/**
 * Servers that ended other than by the bench's SIGKILL (which every
 * disposal sends), with their last log lines: what to look at when a
 * section fails.
 */
async function diedOnTheirOwn(): Promise<string[]> {
  const found = [];
  for (const server of servers) {
    const status = await Promise.race([server.child.status, delay(100)]);
    if (status && status.signal !== "SIGKILL") {
      found.push(
        `server ${server.child.pid} ended with code ${status.code} (signal ${status.signal}):\n${
          server.stderr.slice(-20).join("\n")
        }`,
      );
    }
  }
  return found;
}

/** Connections for `n` subscriptions at {@linkcode PER_CONNECTION} each. */
const connectionsFor = (n: number) =>
  Math.max(1, Math.ceil(n / PER_CONNECTION));

/** Opens `n` subscriptions; reports the subscribe rate; returns the pool. */
async function subscribeAll(
  target: string,
  n: number,
  method: PoolMethod,
  label: string,
): Promise<SubscriberPool> {
  const pool = new SubscriberPool(target, {
    subscribers: n,
    connections: connectionsFor(n),
    method,
  });
  const start = performance.now();
  try {
    await pool.start();
  } catch (error) {
    pool.close(); // its connections must not weigh on what runs next
    throw error;
  }
  report(
    `${label} subscribe rate (${n.toLocaleString("en-US")} until all live)`,
    n / ((performance.now() - start) / 1000),
    "subs/s",
  );
  return pool;
}

/** CPU seconds the processes `pids` have used, together. */
const cpuOf = (pids: number[]) =>
  pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/**
 * What a measured window cost: server CPU (the processes `pids`, summed),
 * generator CPU, over wall seconds.
 */
function measure(pids: number[]) {
  const cpu = cpuOf(pids);
  const gen = process.cpuUsage();
  const machine = cpuTimes();
  const start = performance.now();
  return () => {
    const wall = (performance.now() - start) / 1000;
    const g = process.cpuUsage(gen);
    const now = cpuTimes();
    const busy = (now.total - now.idle) - (machine.total - machine.idle);
    return {
      wall,
      // Every process's, the generator's and other users' of the machine.
      machineCpu: (busy / 100 / wall) * 100, // USER_HZ
      serverCpu: ((cpuOf(pids) - cpu) / wall) * 100,
      generatorCpu: ((g.user + g.system) / 1e6 / wall) * 100,
    };
  };
}

function reportLatency(label: string, pool: SubscriberPool) {
  report(`${label} latency p50`, pool.percentile(0.5), "ms");
  report(`${label} latency p99`, pool.percentile(0.99), "ms");
  report(`${label} latency max`, pool.max(), "ms");
}

function reportCosts(
  label: string,
  costs: ReturnType<ReturnType<typeof measure>>,
) {
  report(`${label} server CPU`, costs.serverCpu, "% of a core");
  report(
    `${label} generator CPU`,
    costs.generatorCpu,
    "% of a core",
    "near 100%: the generator was the limit",
  );
  reportMachine(label, costs);
}

/** The machine's busy CPU over a window: near all its cores, the figures are CPU-bound. */
function reportMachine(
  label: string,
  costs: ReturnType<ReturnType<typeof measure>>,
) {
  report(
    `${label} machine CPU busy`,
    costs.machineCpu,
    "% of a core",
    `every process, ours and others', of ${navigator.hardwareConcurrency} cores`,
  );
}

/**
 * Waits until `pool` has stopped receiving events published inside its
 * window, which ended at `endMs` (ms since the Unix epoch): once an event
 * published after it has arrived, and no event of the window for 1 s; at
 * most one more window (`BENCH_SECONDS`). An event later than that does
 * not count: a server that queues without bound must not score by
 * delivering its window a minute late.
 */
async function settle(pool: SubscriberPool, endMs: number): Promise<void> {
  const deadline = performance.now() + SECONDS * 1000;
  let seen = -1;
  while (
    (pool.windowEvents !== seen || pool.latestTime < endMs) &&
    performance.now() < deadline
  ) {
    seen = pool.windowEvents;
    await delay(1000);
  }
}

/**
 * Lets `pool` warm up, then measures one window of `BENCH_SECONDS`: reports
 * what was delivered of what was published inside the window (and
 * dropped, from the greeter's metrics, summed over `metricsPorts`), the
 * latency and the CPU of `pids`; returns the delivered rate (the client's
 * count), the written rate (the servers' count; NaN without metrics) and the
 * servers' CPU (% of a core).
 */
async function measureFanOut(
  pool: SubscriberPool,
  pids: number[],
  name: string,
  offered: string,
  metricsPorts: number[] = [],
): Promise<{ delivered: number; written: number; serverCpu: number }> {
  await delay(WARM_UP_MS);
  pool.resetLatency();
  const countersBefore = await counters(metricsPorts);
  // After the metrics page answered: under overload it answers seconds
  // late, and what arrived meanwhile is not the window's.
  const before = pool.events;
  const done = measure(pids);
  pool.openWindow(Date.now());
  await delay(SECONDS * 1000);
  const end = Date.now();
  pool.closeWindow(end);
  const grace = performance.now();
  const costs = done();
  const received = (pool.events - before) / costs.wall;
  reportLatency(name, pool); // over the window alone
  const countersAfter = await counters(metricsPorts);
  // What was published inside the window, whenever it arrives: a backlog
  // from before the window must not count (it once read 853k/s of 500k/s).
  await settle(pool, end);
  const delivered = pool.windowEvents / costs.wall;
  report(
    `${name}: delivered`,
    delivered,
    "events/s",
    `${offered}; published in the window, arrived within ${
      ((performance.now() - grace) / 1000).toFixed(1)
    } s after it; ${format(received)}/s arrived in it, backlog included`,
  );
  let written = NaN;
  if (metricsPorts.length > 0) {
    // The server's own counters, over the time between the two readings.
    const rate = (key: "published" | "written" | "dropped") =>
      (countersAfter[key] - countersBefore[key]) /
      ((countersAfter.at - countersBefore.at) / 1000);
    report(
      `${name}: published`,
      rate("published"),
      "events/s",
      `what the server took in (the tick counts too)${
        metricsPorts.length > 1
          ? "; summed over the processes, each takes in every event"
          : ""
      }`,
    );
    written = rate("written");
    report(
      `${name}: written`,
      written,
      "msg/s",
      "what the server handed to the transport",
    );
    report(
      `${name}: dropped`,
      rate("dropped"),
      "events/s",
      "slow-consumer drops",
    );
  }
  reportCosts(name, costs);
  return { delivered, written, serverCpu: costs.serverCpu };
}

/**
 * Waits until the processes `pids` use less than 10% of a core (over 500
 * ms; at most 30 s): a server that queued without bound keeps writing to
 * closed streams, and would take its CPU from the next row's server.
 */
async function quiesce(pids: number[], label: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const before = cpuOf(pids);
    await delay(500);
    const busy = (cpuOf(pids) - before) / 0.5;
    if (busy < 0.1) return;
    if (performance.now() >= deadline) {
      rows.push({
        name: `${label}: still busy after its row`,
        value: `${Math.round(busy * 100)} % of a core`,
        note: "30 s after its subscribers left (a fresh peer is stopped here)",
      });
      return;
    }
  }
}

/** A server a fan-out row measures: the greeter or one it is compared with. */
interface FanOutPeer {
  label: string;
  target: string;
  /** Its processes, for CPU and RSS. */
  pids: number[];
  /** The greeter's metrics pages; none for the others. */
  metricsPorts?: number[];
}

/**
 * One fan-out row: `run` measures the greeter, then a fresh process of each
 * of `starters`, alone (it is stopped before the next starts: a naive
 * server buried by its row kept writing to closed streams at 100% of a core
 * for 30 s and more), and returns its delivered rate; reports the
 * greeter's against each other's. A peer that fails is reported as
 * failed, with the servers that died, and the others still run.
 */
async function fanOutRow(
  name: string,
  greeter: FanOutPeer,
  starters: PeerStarter[],
  run: (peer: FanOutPeer) => Promise<number>,
): Promise<void> {
  const delivered = new Map<string, number>();
  const peers = [
    { label: greeter.label, start: () => Promise.resolve(greeter) },
    ...starters,
  ];
  for (const starter of peers) {
    try {
      await using stack = new AsyncDisposableStack();
      const peer = await starter.start(stack);
      delivered.set(peer.label, await run(peer));
    } catch (error) {
      rows.push({
        name: `${starter.label} ${name}`,
        value: "failed",
        note: String(error).split("\n")[0],
      });
      console.error(`${starter.label} ${name} failed:`, error);
      for (const died of await diedOnTheirOwn()) console.error(died);
    }
  }
  const ours = delivered.get("greeter");
  if (ours === undefined) return;
  for (const [label, theirs] of delivered) {
    if (label === "greeter") continue;
    if (theirs === 0) {
      rows.push({
        name: `${name}: greeter / ${label}`,
        value: "n/a",
        note: `${label} delivered none of the window's events in time`,
      });
      continue;
    }
    report(
      `${name}: greeter / ${label}`,
      ours / theirs,
      "x",
      "delivered, same run",
    );
  }
}

/**
 * The seed's personalised tick, every 10 ms, to `n` subscribers over
 * `connections`: delivered, and RSS per subscriber under that load (from
 * before they subscribed to the end of the window).
 */
async function tickFanOut(
  peer: FanOutPeer,
  n: number,
  connections: number,
): Promise<number> {
  const rssBefore = rssOf(peer.pids);
  const name = `${peer.label} tick fan-out ${
    n.toLocaleString("en-US")
  } over ${connections} connections`;
  const pool = new SubscriberPool(peer.target, {
    subscribers: n,
    connections,
    method: "SayHelloStreamReply",
  });
  try {
    const start = performance.now();
    await pool.start();
    report(
      `${name}: subscribe rate`,
      n / ((performance.now() - start) / 1000),
      "subs/s",
    );
    const { delivered } = await measureFanOut(
      pool,
      peer.pids,
      name,
      `${n * 100} offered`,
      peer.metricsPorts,
    );
    report(
      `${name}: KB per subscriber`,
      (rssOf(peer.pids) - rssBefore) / n,
      "KB",
      "RSS under this load, less the RSS before they subscribed",
    );
    return delivered;
  } finally {
    pool.close();
    await quiesce(peer.pids, name);
  }
}

/** A server the greeter is compared with, running, with its port. */
type Peer = FanOutPeer & { port: number };

/** Starts fresh processes of one server the greeter is compared with. */
interface PeerStarter {
  label: string;
  /** Starts one; it is stopped when `stack` is disposed. */
  start(stack: AsyncDisposableStack): Promise<Peer>;
}

/** A process that prints `listening on PORT` to stderr, as a {@linkcode Peer}. */
async function listening(
  stack: AsyncDisposableStack,
  label: string,
  process: LineProcess,
): Promise<Peer> {
  stack.use(process);
  const [, port] = await process.waitForLine("stderr", /listening on (\d+)/);
  return {
    label,
    target: `127.0.0.1:${port}`,
    pids: [process.child.pid],
    port: Number(port),
  };
}

/**
 * The servers the greeter is compared with, where this machine has them:
 * the bare grpc-js baseline on Deno, grpc-go (`bench/go_tick_server/`,
 * built now; the build is removed when `stack` is disposed) and bare
 * grpc-js on Node (`bench/node_server.mjs`), all ticking every 10 ms. A
 * missing one is reported as skipped.
 */
async function peerStarters(
  stack: AsyncDisposableStack,
): Promise<PeerStarter[]> {
  const starters: PeerStarter[] = [{
    label: "baseline",
    start: (peers) =>
      listening(
        peers,
        "baseline",
        new LineProcess(scriptArgs("serve", "bench/baseline_server.ts")),
      ),
  }];
  try {
    const build = stack.use(await buildGoServer());
    json["grpc-go version"] = build.version;
    starters.push({
      label: "grpc-go",
      start: async (peers) => {
        const { process, port } = await build.spawn(10);
        peers.use(process);
        return {
          label: "grpc-go",
          target: `127.0.0.1:${port}`,
          pids: [process.child.pid],
          port,
        };
      },
    });
  } catch (error) {
    rows.push({
      name: "grpc-go",
      value: "skipped",
      note: error instanceof Error ? error.message.split("\n")[0] : `${error}`,
    });
  }
  try {
    json["node version"] = new TextDecoder().decode(
      new Deno.Command("node", { args: ["--version"] }).outputSync().stdout,
    ).trim();
    starters.push({
      label: "grpc-js on Node",
      start: (peers) =>
        listening(
          peers,
          "grpc-js on Node",
          new LineProcess(["bench/node_server.mjs", "10"], {
            command: "node",
          }),
        ),
    });
  } catch (error) {
    rows.push({
      name: "grpc-js on Node",
      value: "skipped",
      note: `node is not installed (${
        error instanceof Error ? error.message.split("\n")[0] : error
      })`,
    });
  }
  return starters;
}

/**
 * Starts a fresh process of each of `starters`, stopped when `stack` is
 * disposed; one that does not start is reported as failed.
 */
async function startPeers(
  starters: PeerStarter[],
  stack: AsyncDisposableStack,
): Promise<Peer[]> {
  const peers = [];
  for (const starter of starters) {
    try {
      peers.push(await starter.start(stack));
    } catch (error) {
      rows.push({
        name: starter.label,
        value: "failed",
        note: `did not start: ${String(error).split("\n")[0]}`,
      });
    }
  }
  return peers;
}

/** Subscribers of the multiplexed figure (the issue's shape). */
const MULTIPLEXED = env("BENCH_MULTIPLEXED_SUBSCRIBERS", 5000);
/** Connections they share, as a gateway's few channels would. */
const MULTIPLEXED_CONNECTIONS = env("BENCH_MULTIPLEXED_CONNECTIONS", 8);

/**
 * The multiplexed shape: `MULTIPLEXED` tick subscribers over
 * `MULTIPLEXED_CONNECTIONS` at a 10 ms tick, against a fresh greeter (its
 * defaults but the bench's), bare grpc-js on Deno, grpc-go and grpc-js on
 * Node, each a fresh process so that RSS per subscriber starts clean.
 */
async function multiplexed(starters: PeerStarter[]): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const greeter = await spawnGreeter(["--interval", "10"]);
  stack.use(greeter.process);
  await fanOutRow(
    `tick fan-out ${
      MULTIPLEXED.toLocaleString("en-US")
    } over ${MULTIPLEXED_CONNECTIONS} connections`,
    {
      label: "greeter",
      target: greeter.target,
      pids: [greeter.process.child.pid],
      metricsPorts: [greeter.metricsPort],
    },
    starters,
    (peer) => tickFanOut(peer, MULTIPLEXED, MULTIPLEXED_CONNECTIONS),
  );
}

/** Seconds the soak holds the multiplexed load (`BENCH_ONLY=soak`). */
const SOAK_SECONDS = env("BENCH_SOAK_SECONDS", 60);

/**
 * The multiplexed shape held for `SOAK_SECONDS` against a fresh greeter:
 * RSS per subscriber sampled every 10 s (is it flat?), the V8 heap at the
 * end, and what was delivered over the whole time (the server's counter).
 */
async function soak(): Promise<void> {
  await using stack = new AsyncDisposableStack();
  const greeter = await spawnGreeter(["--interval", "10"]);
  stack.use(greeter.process);
  const pids = [greeter.process.child.pid];
  const ports = [greeter.metricsPort];
  const name = `soak: tick fan-out ${
    MULTIPLEXED.toLocaleString("en-US")
  } over ${MULTIPLEXED_CONNECTIONS} connections`;
  const rssBefore = rssOf(pids);
  const pool = new SubscriberPool(greeter.target, {
    subscribers: MULTIPLEXED,
    connections: MULTIPLEXED_CONNECTIONS,
    method: "SayHelloStreamReply",
  });
  stack.defer(() => pool.close());
  await pool.start();
  const perSubscriber = () => (rssOf(pids) - rssBefore) / MULTIPLEXED;
  const delivered = () => metric("greeter_events_delivered_total", ports);
  const samples = [perSubscriber()];
  const startedAt = performance.now();
  const deliveredAtStart = await delivered();
  for (let t = 10; t <= SOAK_SECONDS; t += 10) {
    await delay(startedAt + t * 1000 - performance.now());
    samples.push(perSubscriber());
  }
  const rate = ((await delivered()) - deliveredAtStart) * 1000 /
    (performance.now() - startedAt);
  const kb = samples.map((value) => value.toFixed(1));
  json[`${name}: KB per subscriber every 10 s`] = samples;
  rows.push({
    name: `${name}: KB per subscriber every 10 s`,
    value: kb.join(" / "),
    note: "RSS under this load, less the RSS before they subscribed",
  });
  report(`${name}: KB per subscriber at the end`, samples.at(-1)!, "KB");
  reportLatency(name, pool);
  report(`${name}: delivered`, rate, "events/s", "the server's counter");
  report(
    `${name}: server V8 heap at the end`,
    (await metric("deno_heap_used_bytes", ports)) / 2 ** 20,
    "MB",
  );
}

/** RSS of the processes `pids`, together, in KB. */
const rssOf = (pids: number[]) =>
  pids.reduce((sum, pid) => sum + rssKb(pid), 0);

/**
 * One event published every `PUBLISH_MS` (10) to `n` subscribers of its
 * topic, served by the processes `pids` (several when they share a port),
 * with their metrics pages at `metricsPorts`.
 */
async function broadcast(
  target: string,
  pids: number[],
  n: number,
  label: string,
  metricsPorts: number[] = [],
) {
  const rssBefore = rssOf(pids);
  const pool = await subscribeAll(target, n, "Subscribe", label);
  const name = `${label} broadcast ${n.toLocaleString("en-US")}`;
  report(`${name}: KB per subscriber`, (rssOf(pids) - rssBefore) / n, "KB");
  if (metricsPorts.length > 1) {
    const split = [];
    for (const port of metricsPorts) {
      split.push(await metric("greeter_subscribers", [port]));
    }
    json[`${name}: subscribers per process`] = split;
    rows.push({
      name: `${name}: subscribers per process`,
      value: split.join(" / "),
      note: "as the kernel spread the connections",
    });
  }
  // Its own process: the subscribers' load here must not slow it.
  await using publisher = new LineProcess(
    scriptArgs(
      "client",
      "bench/publisher.ts",
      target,
      "bench",
      String(PUBLISH_MS),
      "32",
    ),
  );
  await publisher.waitForLine("stdout", /^ready$/);
  const rates = await measureFanOut(
    pool,
    pids,
    name,
    `${Math.round((n * 1000) / PUBLISH_MS)} offered`,
    metricsPorts,
  );
  publisher.child.kill("SIGTERM");
  report(`${name}: server RSS`, rssOf(pids) / 1024, "MB");
  if (metricsPorts.length > 0) {
    report(
      `${name}: reader lag at the end`,
      await metric("greeter_broker_lag_events", metricsPorts),
      "events",
      "a shared stream's events not read yet (summed; 0 with the memory broker)",
    );
    report(
      `${name}: server V8 heap`,
      (await metric("deno_heap_used_bytes", metricsPorts)) / 2 ** 20,
      "MB",
      "the rest of RSS is native",
    );
  }
  pool.close();
  await quiesce(pids, name);
  return rates;
}

/** RSS per idle subscription, `IDLE` of them: a server whose hub never ticks. */
async function idleMemory() {
  const { process: server, target } = await spawnServer([
    "--interval",
    "3600000",
    "--max-subscribers",
    String(Math.max(IDLE, 20_000)),
    "--max-subscribers-per-peer",
    String(Math.max(IDLE, 20_000)),
  ]);
  await using _ = server;
  const pid = server.child.pid;
  await delay(500);
  const before = rssKb(pid);
  const pool = await subscribeAll(target, IDLE, "Subscribe", "greeter idle");
  await delay(1000);
  report(
    `memory per idle subscriber (${IDLE.toLocaleString("en-US")})`,
    (rssKb(pid) - before) / IDLE,
    "KB",
  );
  report(
    `server RSS with ${IDLE.toLocaleString("en-US")} idle subscribers`,
    rssKb(pid) / 1024,
    "MB",
  );
  pool.close();
}

/**
 * 1,000 subscribers killed at once (their process), 10 ms tick, 3 rounds:
 * time until all are gone, and how much of it the killed process's own
 * teardown took (its sockets close only when the kernel reaps it).
 */
async function deathToRemoval() {
  const { process: server, target } = await spawnServer(["--interval", "10"]);
  await using _ = server;
  using client = new GreeterClient(target);
  const total: number[] = [];
  const afterReap: number[] = [];
  for (let round = 0; round < 3; round++) {
    await using pool = await spawnSubscriberPool(target, 1000, 20);
    const start = performance.now();
    pool.child.kill("SIGKILL");
    let reaped = 0;
    pool.child.status.then(() => reaped = performance.now());
    while ((await client.listSubscribers({ limit: 1 })).total > 0) {
      await delay(1);
    }
    const removed = performance.now();
    await pool.child.status;
    total.push(removed - start);
    afterReap.push(Math.max(0, removed - reaped));
  }
  const list = (times: number[]) => times.map((t) => Math.round(t)).join(", ");
  report(
    "1,000 subscribers killed: removal time, worst of 3",
    Math.max(...total),
    "ms",
    list(total),
  );
  report(
    "  of which after the killed process was reaped, worst of 3",
    Math.max(...afterReap),
    "ms",
    list(afterReap),
  );
}

/**
 * `STALLED` subscribers that stop reading but stay connected, each offered
 * 1 MB/s (1 KiB events, 1,000/s) for `STALLED_SECONDS`: server RSS growth.
 */
async function stalled() {
  const { process: server, target } = await spawnServer([
    "--interval",
    "3600000",
    "--max-publish-size",
    "4096",
    // The replay window (bounded; 10,000 x 1 KiB events by default) would
    // fill during the measure: keep it small to see the subscribers' cost.
    "--replay-size",
    "1000",
  ]);
  await using _ = server;
  const pid = server.child.pid;
  const { service } = loadGreeterProto();
  const frame = grpcFrame(
    service.Subscribe.requestSerialize({ name: "stalled", topics: ["bench"] }),
  );
  const sessions = Array.from(
    { length: connectionsFor(STALLED) },
    () => http2.connect(`http://${target}`),
  );
  const peers = Array.from(
    { length: STALLED },
    (_, i) =>
      stalledCall(sessions[i % sessions.length], service.Subscribe.path, frame),
  );
  using publisher = new GreeterClient(target);
  const payload = new Uint8Array(1024);
  const stop = new AbortController();
  let published = 0;
  const publishing = runTicker(() => {
    for (let i = 0; i < 10; i++) {
      publisher.publish("bench", payload).then(() => published++, () => {});
    }
  }, { intervalMs: 10, signal: stop.signal });
  await delay(3000); // windows fill, buffers reach their bound
  const rssStart = rssKb(pid);
  const publishedStart = published;
  const samples: number[] = [];
  for (let t = 0; t < STALLED_SECONDS; t += 5) {
    await delay(Math.min(5, STALLED_SECONDS - t) * 1000);
    samples.push(Math.round((rssKb(pid) - rssStart) / 1024));
  }
  const growth = (rssKb(pid) - rssStart) / 1024;
  const offered = (published - publishedStart) * 1024 * STALLED / 2 ** 20;
  stop.abort();
  await publishing;
  report(
    `RSS growth, ${STALLED} stalled subscribers, ${STALLED_SECONDS} s`,
    growth,
    "MB",
    `${Math.round(offered)} MB offered, ${
      ((published - publishedStart) / STALLED_SECONDS / 1024).toFixed(2)
    } MB/s each; growth every 5 s: ${samples.join(", ")} MB`,
  );
  for (const peer of peers) peer.close();
}

/** Subscribers of the publish-to-delivery figure: few, so the broker, not the fan-out, is measured. */
const INSTANCE_SUBSCRIBERS = env("BENCH_INSTANCE_SUBSCRIBERS", 10);
/** Paces of the publish-to-delivery figure (see `bench/publisher.ts`). */
const INSTANCE_PACES = (Deno.env.get("BENCH_INSTANCE_PACES") ??
  "rate=1000,max=32").split(",");
/** Events a resume reads back. */
const RESUME_EVENTS = env("BENCH_RESUME_EVENTS", 10_000);
/** Broadcast subscribers of the `--reuse-port` figure. */
const REUSE_SUBSCRIBERS = env("BENCH_REUSE_SUBSCRIBERS", 5000);

/** Publishes acknowledged and refused so far, their summed ack time, and when: a stamping publisher's last report. */
function publisherCounts(publisher: LineProcess) {
  for (let i = publisher.stdout.length - 1; i >= 0; i--) {
    const match = publisher.stdout[i].match(
      /^acked (\d+) (\S+) (\d+) (\S+)$/,
    );
    if (match) {
      const [acked, ackMs, failed, at] = match.slice(1).map(Number);
      return { acked, ackMs, failed, at };
    }
  }
  return { acked: 0, ackMs: 0, failed: 0, at: preciseNow() };
}

/**
 * Publish-to-delivery through one setup: a stamping publisher at `pace` on
 * `publishTarget`, `INSTANCE_SUBSCRIBERS` subscribers on `subscribeTarget`.
 * Reports the stream's rate as each subscriber sees it, what the publisher
 * had acknowledged, the latency from each payload's send time, and the CPU
 * of `pids` (the greeters and nats-server). Returns the rate and latency.
 */
async function deliveryRun(
  name: string,
  publishTarget: string,
  subscribeTarget: string,
  pids: number[],
  pace: string,
) {
  const pool = new SubscriberPool(subscribeTarget, {
    subscribers: INSTANCE_SUBSCRIBERS,
    connections: 1,
    method: "Subscribe",
    topics: ["latency"],
    latencyFrom: "payload",
  });
  try {
    await pool.start();
    // Its own process, as in the broadcast figure.
    await using publisher = new LineProcess(
      scriptArgs(
        "client",
        "bench/publisher.ts",
        publishTarget,
        "latency",
        pace,
        "32",
      ),
    );
    await publisher.waitForLine("stdout", /^ready$/);
    await delay(WARM_UP_MS);
    pool.resetLatency();
    const before = pool.events;
    const published = publisherCounts(publisher);
    const publisherCpu = cpuSeconds(publisher.child.pid);
    const done = measure(pids);
    await delay(SECONDS * 1000);
    const costs = done();
    const after = publisherCounts(publisher);
    const acked = after.acked - published.acked;
    const rate = (pool.events - before) / costs.wall / INSTANCE_SUBSCRIBERS;
    report(
      `${name}: delivered`,
      rate,
      "events/s",
      `to each of ${INSTANCE_SUBSCRIBERS} subscribers`,
    );
    report(
      `${name}: acknowledged`,
      acked / ((after.at - published.at) / 1000),
      "publishes/s",
      `mean ack ${
        (acked ? (after.ackMs - published.ackMs) / acked : NaN).toFixed(2)
      } ms, ${after.failed - published.failed} refused`,
    );
    reportLatency(name, pool);
    report(
      `${name}: servers CPU`,
      costs.serverCpu,
      "% of a core",
      "greeter(s) and nats-server",
    );
    report(
      `${name}: subscribers' and publisher's CPU`,
      costs.generatorCpu +
        ((cpuSeconds(publisher.child.pid) - publisherCpu) / costs.wall) * 100,
      "% of a core",
    );
    reportMachine(name, costs);
    return {
      rate,
      p50: pool.percentile(0.5),
      p99: pool.percentile(0.99),
    };
  } finally {
    pool.close();
  }
}

/** Flags of every greeter in the instances section: no clock traffic, a window that holds a resume. */
const instanceFlags = () => [
  "--interval",
  "3600000",
  "--replay-size",
  String(Math.max(2 * RESUME_EVENTS, 10_000)),
];

/**
 * Publish-to-delivery latency and throughput: publish on instance A,
 * subscribers on instance B, one nats-server behind them, against the
 * memory broker (publisher and subscribers on its one instance), at each
 * of `INSTANCE_PACES`.
 */
async function instancesDelivery() {
  const memory: Awaited<ReturnType<typeof deliveryRun>>[] = [];
  {
    const server = await spawnGreeter(instanceFlags());
    await using _ = server.process;
    for (const pace of INSTANCE_PACES) {
      memory.push(
        await deliveryRun(
          `memory broker, 1 instance, ${pace}`,
          server.target,
          server.target,
          [server.process.child.pid],
          pace,
        ),
      );
    }
  }
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, ...instanceFlags()];
  const a = await spawnGreeter(flags);
  await using _a = a.process;
  const b = await spawnGreeter(flags);
  await using _b = b.process;
  for (const [i, pace] of INSTANCE_PACES.entries()) {
    const name = `JetStream, publish on A, subscribers on B, ${pace}`;
    const shared = await deliveryRun(name, a.target, b.target, [
      a.process.child.pid,
      b.process.child.pid,
      nats.process.child.pid,
    ], pace);
    report(
      `${pace}: JetStream / memory, delivered rate`,
      shared.rate / memory[i].rate,
      "x",
    );
    report(
      `${pace}: JetStream / memory, latency p50`,
      shared.p50 / memory[i].p50,
      "x",
      `${shared.p50} ms / ${memory[i].p50} ms`,
    );
    report(
      `${pace}: JetStream / memory, latency p99`,
      shared.p99 / memory[i].p99,
      "x",
      `${shared.p99} ms / ${memory[i].p99} ms`,
    );
  }
}

/**
 * Publishes `n` events on topic `resume` through `target` (32 calls in
 * flight); returns the cursor just before the first of them.
 */
async function fillStream(target: string, n: number, label: string) {
  using client = new GreeterClient(target);
  const payload = new Uint8Array(32);
  let first = Infinity;
  let epoch = "";
  let sent = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (sent < n) {
      sent++;
      const { cursor } = await client.publish("resume", payload);
      epoch = cursor.epoch;
      first = Math.min(first, Number(cursor.seq));
    }
  }));
  report(
    `${label}: ${n.toLocaleString("en-US")} published`,
    n / ((performance.now() - start) / 1000),
    "publishes/s",
    "32 in flight, from the bench's process",
  );
  return { epoch, seq: first - 1 };
}

/**
 * One subscriber resumes on `target` after `after` and reads until it has
 * `n` events (bounded: 60 s); reports the time, and returns it.
 */
async function resumeOnce(
  target: string,
  after: { epoch: string; seq: number },
  n: number,
  label: string,
): Promise<number> {
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
    report(
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

/** Spawns a greeter; reports the time until it listened; returns it. */
async function timedStart(args: string[], label: string) {
  const start = performance.now();
  const server = await spawnGreeter(args);
  report(
    `${label}: start until listening`,
    performance.now() - start,
    "ms",
    "process start, connect, read the window back",
  );
  return server;
}

/**
 * Resume of `RESUME_EVENTS`: from a long-running memory-broker instance,
 * against a fresh JetStream instance that reads the window back from the
 * stream at start, a fresh one whose window holds a tenth of them (the rest
 * is read from the stream itself, a consumer for that resume), and the
 * long-running JetStream instance that published them, which holds them in
 * its window already.
 */
async function instancesResume() {
  let fromMemory: number;
  {
    const server = await timedStart(instanceFlags(), "memory broker");
    await using _ = server.process;
    const after = await fillStream(server.target, RESUME_EVENTS, "memory");
    fromMemory = await resumeOnce(
      server.target,
      after,
      RESUME_EVENTS,
      "memory broker, long-running",
    );
  }
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, ...instanceFlags()];
  const a = await timedStart(flags, "JetStream, empty stream");
  await using _a = a.process;
  const after = await fillStream(a.target, RESUME_EVENTS, "JetStream");
  const fromWindow = await resumeOnce(
    a.target,
    after,
    RESUME_EVENTS,
    "JetStream, long-running instance",
  );
  const b = await timedStart(
    flags,
    `JetStream, fresh instance, ${
      RESUME_EVENTS.toLocaleString("en-US")
    } in the stream`,
  );
  await using _b = b.process;
  const fromEngine = await resumeOnce(
    b.target,
    after,
    RESUME_EVENTS,
    "JetStream, fresh instance",
  );
  const small = Math.max(1, Math.floor(RESUME_EVENTS / 10));
  const c = await timedStart(
    [
      "--broker",
      nats.url,
      "--interval",
      "3600000",
      // The stream exists with larger limits, and keeps them.
      "--replay-size",
      String(small),
    ],
    `JetStream, fresh instance, window of ${small.toLocaleString("en-US")}`,
  );
  await using _c = c.process;
  const fromStream = await resumeOnce(
    c.target,
    after,
    RESUME_EVENTS,
    `JetStream, beyond a window of ${
      small.toLocaleString("en-US")
    } (read from the stream)`,
  );
  report("resume: JetStream fresh / memory", fromEngine / fromMemory, "x");
  report(
    "resume: JetStream beyond the window / memory",
    fromStream / fromMemory,
    "x",
  );
  report(
    "resume: JetStream long-running / memory",
    fromWindow / fromMemory,
    "x",
  );
}

/**
 * The broadcast fan-out (`REUSE_SUBSCRIBERS`, one publish every
 * `PUBLISH_MS`) served by two processes sharing one port with
 * `--reuse-port`, against one process; both on one nats-server.
 */
async function instancesReusePort() {
  await using nats = await startNatsServer();
  const flags = ["--broker", nats.url, "--interval", "3600000"];
  let one: Awaited<ReturnType<typeof broadcast>>;
  {
    const server = await spawnGreeter(flags);
    await using _ = server.process;
    one = await broadcast(
      server.target,
      [server.process.child.pid],
      REUSE_SUBSCRIBERS,
      "JetStream, 1 process",
      [server.metricsPort],
    );
  }
  const a = await spawnGreeter([...flags, "--reuse-port"]);
  await using _a = a.process;
  const b = await spawnGreeter([
    ...flags,
    "--reuse-port",
    "--port",
    String(a.port),
  ]);
  await using _b = b.process;
  const two = await broadcast(
    a.target,
    [a.process.child.pid, b.process.child.pid],
    REUSE_SUBSCRIBERS,
    "JetStream, 2 processes --reuse-port",
    [a.metricsPort, b.metricsPort],
  );
  const label = `broadcast ${
    REUSE_SUBSCRIBERS.toLocaleString("en-US")
  }: 2 processes / 1 (--reuse-port)`;
  report(
    `${label}, delivered`,
    two.delivered / one.delivered,
    "x",
    "the client's count: includes backlog caught in its window",
  );
  report(
    `${label}, written`,
    two.written / one.written,
    "x",
    "the servers' count: the conservative one",
  );
  report(
    `${label}, written per server CPU`,
    (two.written / two.serverCpu) / (one.written / one.serverCpu),
    "x",
    "near 1: a second process costs no more per message",
  );
}

/** The instances section: several greeters on one NATS JetStream stream. */
async function instances() {
  const missing = natsServerMissing();
  if (missing) {
    rows.push({ name: "instances", value: "skipped", note: missing });
    return;
  }
  for (const part of [instancesDelivery, instancesResume, instancesReusePort]) {
    try {
      await part();
    } catch (error) {
      // A part that fails says why and lets the others run.
      rows.push({ name: part.name, value: "failed", note: String(error) });
      console.error(`${part.name} failed:`, error);
      for (const died of await diedOnTheirOwn()) console.error(died);
    }
  }
}

async function main() {
  const env = environment();
  console.log(
    `greeter bench: Deno ${env.deno}, grpc-js ${env.grpcJs}, ${env.cores} x ${env.cpu}, ${env.memoryGiB} GiB\n`,
  );
  const started = performance.now();
  const cpuAtStart = cpuTimes();
  await using baseline = new LineProcess(
    scriptArgs("serve", "bench/baseline_server.ts"),
  );
  const [, basePort] = await baseline.waitForLine(
    "stderr",
    /listening on (\d+)/,
  );
  const baseTarget = `127.0.0.1:${basePort}`;
  await using references = new AsyncDisposableStack();
  const starters = ["unary", "tick", "multiplexed", "broadcast"].some(section)
    ? await peerStarters(references)
    : [];
  // The unary rounds are interleaved: one process of each.
  const others = section("unary")
    ? await startPeers(
      starters.filter((starter) => starter.label !== "baseline"),
      references,
    )
    : [];
  if (section("unary") || section("tick")) {
    const { process: server, target, port, metricsPort } = await spawnGreeter([
      "--interval",
      "10",
    ]);
    await using _ = server;
    const pid = server.child.pid;
    if (section("unary")) {
      const ours = await unary(target, "greeter");
      const base = await unary(baseTarget, "baseline");
      report("unary greeter / baseline", ours / base, "x");
      await using python = new AsyncDisposableStack();
      await unaryH2load([
        { label: "greeter", port },
        { label: "baseline", port: Number(basePort) },
        ...others,
        ...await pythonUnaryPeer(python),
      ]);
    }
    if (section("tick")) {
      await fanOutRow(
        `tick fan-out ${FANOUT.toLocaleString("en-US")} over ${
          connectionsFor(FANOUT)
        } connections`,
        { label: "greeter", target, pids: [pid], metricsPorts: [metricsPort] },
        starters,
        (peer) => tickFanOut(peer, FANOUT, connectionsFor(FANOUT)),
      );
    }
  }
  if (section("multiplexed")) await multiplexed(starters);
  if (section("broadcast")) {
    const { process: server, target, metricsPort } = await spawnGreeter([
      "--interval",
      "3600000",
    ]);
    await using _ = server;
    for (const n of BROADCAST) {
      await fanOutRow(
        `broadcast ${n.toLocaleString("en-US")}`,
        {
          label: "greeter",
          target,
          pids: [server.child.pid],
          metricsPorts: [metricsPort],
        },
        starters,
        async (peer) =>
          (await broadcast(
            peer.target,
            peer.pids,
            n,
            peer.label,
            peer.metricsPorts,
          )).delivered,
      );
    }
  }
  if (section("soak") && ONLY) await soak(); // 60 s: only when asked for
  if (section("idle")) await idleMemory();
  if (section("death")) await deathToRemoval();
  if (section("stalled")) await stalled();
  if (section("instances")) await instances();
  report("bench wall time", (performance.now() - started) / 1000, "s");
  const cpuAtEnd = cpuTimes();
  report(
    "CPU stolen by the hypervisor during the run",
    (100 * (cpuAtEnd.steal - cpuAtStart.steal)) /
      Math.max(1, cpuAtEnd.total - cpuAtStart.total),
    "%",
    "above a few %: figures are noisy",
  );

  const width = Math.max(...rows.map((r) => r.name.length));
  const valueWidth = Math.max(...rows.map((r) => r.value.length));
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(width)}  ${row.value.padStart(valueWidth)}${
        row.note ? `  (${row.note})` : ""
      }`,
    );
  }
  console.log("\n" + JSON.stringify(json));
}

await main();
