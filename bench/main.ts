/**
 * `deno task bench`: starts the real server as users run it and measures
 * unary throughput, fan-out, memory per subscriber and memory under stalled
 * subscribers. Prints a table, then the same figures as one JSON line.
 * Figures, never assertions: tests do not time anything.
 *
 * @module
 */

import os from "node:os";
import process from "node:process";
import { setTimeout as delay } from "node:timers/promises";
import { GreeterClient } from "../lib/client.ts";
import {
  helloRequestFrame,
  stalledSubscriber,
} from "../tests/_support/server.ts";
import {
  LineProcess,
  ROOT,
  spawnServer,
  taskArgs,
} from "../tests/_support/process.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const FANOUT = Number(Deno.env.get("BENCH_SUBSCRIBERS") ?? 1000);
const STALLED = 50;

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
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]);
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const fields = proc(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
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

/** h2load (Debian nghttp2-client), if installed: -c 10 -m 10. */
async function h2load(port: number, label: string) {
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
    if (rps) report(`unary ${label} h2load req/s`, rps, "req/s", "-c 10 -m 10");
    return rps;
  } catch {
    rows.push({
      name: `unary ${label} h2load`,
      value: "skipped",
      note: "h2load not installed (apt-get install nghttp2-client)",
    });
  } finally {
    await Deno.remove(body);
  }
}

/** RSS per idle subscription: a server whose hub never ticks. */
async function idleMemory() {
  const { process: server, target } = await spawnServer([
    "--interval",
    "3600000",
    "--log-level",
    "debug",
  ]);
  await using _ = server;
  const pid = server.child.pid;
  const clients = Array.from(
    { length: CONNECTIONS },
    () => new GreeterClient(target, OWN_CONNECTION),
  );
  const controller = new AbortController();
  await delay(500);
  const before = rssKb(pid);
  const readers = Array.from({ length: FANOUT }, async (_, i) => {
    const stream = clients[i % clients.length].streamReply(`idle${i}`, {
      signal: controller.signal,
    });
    for await (const _ of stream) { /* never ticks */ }
  });
  const joined = () =>
    server.stderr.filter((l) => l.includes(" subscribed.")).length;
  while (joined() < FANOUT) await delay(50);
  await delay(1000);
  report(
    `memory per idle subscriber (${FANOUT})`,
    (rssKb(pid) - before) / FANOUT,
    "KB",
  );
  controller.abort();
  await Promise.allSettled(readers);
  for (const client of clients) client.close();
}

/** Connections the fan-out generator spreads its subscribers over. */
const CONNECTIONS = 100;
const OWN_CONNECTION = {
  channelOptions: { "grpc.use_local_subchannel_pool": 1 },
};

async function fanOut(target: string, pid: number, label: string) {
  const clients = Array.from(
    { length: CONNECTIONS },
    () => new GreeterClient(target, OWN_CONNECTION),
  );
  const controller = new AbortController();
  let received = 0;
  let live = 0;
  const subscribeStart = performance.now();
  let allLive = 0;
  const readers = Array.from({ length: FANOUT }, async (_, i) => {
    const client = clients[i % clients.length];
    let first = true;
    for await (
      const _ of client.streamReply(`s${i}`, { signal: controller.signal })
    ) {
      received++;
      if (first) {
        first = false;
        if (++live === FANOUT) allLive = performance.now();
      }
    }
  });
  while (!allLive) await delay(20);
  report(
    `${label} subscribe rate (${FANOUT} until all live)`,
    FANOUT / ((allLive - subscribeStart) / 1000),
    "subs/s",
  );
  const before = received;
  const cpuBefore = cpuSeconds(pid);
  const genBefore = process.cpuUsage();
  const start = performance.now();
  await delay(SECONDS * 1000);
  const wall = (performance.now() - start) / 1000;
  const gen = process.cpuUsage(genBefore);
  const delivered = (received - before) / wall;
  report(
    `${label} fan-out ${FANOUT} subs / ${CONNECTIONS} conns, 10 ms tick: delivered`,
    delivered,
    "msg/s",
    `${FANOUT * 100} offered`,
  );
  report(
    `${label} fan-out server CPU`,
    ((cpuSeconds(pid) - cpuBefore) / wall) * 100,
    "% of a core",
  );
  report(
    `${label} fan-out generator CPU`,
    ((gen.user + gen.system) / 1e6 / wall) * 100,
    "% of a core",
  );
  controller.abort();
  await Promise.allSettled(readers);
  for (const client of clients) client.close();
  return delivered;
}

/** Subscribers that stop reading but stay connected, 1 ms tick. */
async function stalled(target: string, pid: number) {
  const peers = Array.from(
    { length: STALLED },
    (_, i) => stalledSubscriber(target, `stalled${i}`),
  );
  await delay(2000); // windows fill, buffers reach their bound
  const rssStart = rssKb(pid);
  await delay(SECONDS * 2000);
  report(
    `RSS growth, ${STALLED} stalled subscribers, ${SECONDS * 2} s at 1 ms tick`,
    (rssKb(pid) - rssStart) / 1024,
    "MB",
    `~${Math.round(STALLED * 1000 * 45 * SECONDS * 2 / 2 ** 20)} MB offered`,
  );
  for (const peer of peers) peer.close();
}

async function main() {
  const env = environment();
  console.log(
    `greeter bench: Deno ${env.deno}, grpc-js ${env.grpcJs}, ${env.cores} x ${env.cpu}, ${env.memoryGiB} GiB\n`,
  );

  {
    const { process: server, target, port } = await spawnServer([
      "--interval",
      "10",
    ]);
    await using _ = server;
    const ours = await unary(target, "greeter");
    const oursH2 = await h2load(port, "greeter");
    const oursFan = await fanOut(target, server.child.pid, "greeter");
    await using baseline = new LineProcess([
      ...taskArgs("serve").slice(0, -2), // deno run + the serve flags
      "bench/baseline_server.ts",
    ]);
    const [, basePort] = await baseline.waitForLine(
      "stderr",
      /listening on (\d+)/,
    );
    const base = await unary(`127.0.0.1:${basePort}`, "baseline");
    const baseH2 = await h2load(Number(basePort), "baseline");
    const baseFan = await fanOut(
      `127.0.0.1:${basePort}`,
      baseline.child.pid,
      "baseline",
    );
    report("unary greeter / baseline", ours / base, "x");
    if (oursH2 && baseH2) {
      report("unary greeter / baseline (h2load)", oursH2 / baseH2, "x");
    }
    report("fan-out greeter / baseline", oursFan / baseFan, "x");
  }
  await idleMemory();
  {
    const { process: server, target } = await spawnServer([
      "--interval",
      "1",
    ]);
    await using _ = server;
    await stalled(target, server.child.pid);
  }

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
