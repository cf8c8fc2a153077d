/**
 * `BENCH_ONLY=unary`: `SayHello` throughput and latency from our own
 * generator against the greeter and the bare grpc-js baseline, then
 * `h2load -c 10 -m 10` against every server the greeter is compared with
 * and the seed's own Python server, with same-run ratios.
 *
 * @module
 */

import process from "node:process";
import { join } from "node:path";
import type { Bench, Scenario } from "../bench.ts";
import type { Peer, PeerStarter } from "../peers.ts";
import { format, type Report } from "../report.ts";
import { SECONDS } from "../settings.ts";
import { GreeterClient } from "../../lib/client/client.ts";
import { LineProcess } from "../../testing/process.ts";
import {
  PYTHON,
  pythonGrpcMissing,
  seedProgram,
} from "../../testing/python.ts";
import { helloRequestFrame } from "../../testing/server.ts";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Our own load generator: 10 channels x 10 calls in flight, for `BENCH_SECONDS`; returns req/s. */
async function generate(
  report: Report,
  { target, label }: { target: string; label: string },
): Promise<number> {
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
  report.figure(`unary ${label} req/s`, latencies.length / wall, "req/s");
  report.figure(`unary ${label} p50`, percentile(latencies, 0.5), "ms");
  report.figure(`unary ${label} p99`, percentile(latencies, 0.99), "ms");
  report.figure(
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
 * Starts a fresh process of each of `starters`, stopped when `stack` is
 * disposed; one that does not start is reported as failed.
 */
async function startPeers(
  report: Report,
  { starters, stack }: {
    starters: PeerStarter[];
    stack: AsyncDisposableStack;
  },
): Promise<Peer[]> {
  const peers = [];
  for (const starter of starters) {
    try {
      peers.push(await starter.start(stack));
    } catch (error) {
      report.row(
        starter.label,
        "failed",
        `did not start: ${String(error).split("\n")[0]}`,
      );
    }
  }
  return peers;
}

/**
 * The seed's own Python server, the other yardstick for unary
 * calls, where this machine has it; stopped when `stack` is disposed; when
 * missing, reported as skipped.
 */
async function pythonUnaryPeer(
  report: Report,
  stack: AsyncDisposableStack,
): Promise<UnaryPeer[]> {
  const missing = pythonGrpcMissing();
  if (missing) {
    report.row("unary seed Python", "skipped", missing);
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
async function h2loadRounds(report: Report, peers: UnaryPeer[]) {
  const runs = peers.map(() => [] as number[]);
  for (let round = 0; round < 3; round++) {
    for (const [i, peer] of peers.entries()) {
      const rps = await h2load(peer.port);
      if (rps === undefined) {
        report.row(
          "unary h2load",
          "skipped",
          "h2load not installed (apt-get install nghttp2-client)",
        );
        return;
      }
      runs[i].push(rps);
    }
  }
  const medians = runs.map((r) => r.sort((a, b) => a - b)[1]);
  for (const [i, peer] of peers.entries()) {
    report.figure(
      `unary ${peer.label} h2load req/s`,
      medians[i],
      "req/s",
      `median of 3, -c 10 -m 10 (${runs[i].map(format).join(", ")})`,
    );
  }
  for (const [i, peer] of peers.entries()) {
    if (i === 0) continue;
    report.figure(
      `unary greeter / ${peer.label} (h2load)`,
      medians[0] / medians[i],
      "x",
    );
  }
}

async function run(bench: Bench): Promise<void> {
  const { report } = bench;
  // The h2load rounds are interleaved: one process of each, for the whole
  // section.
  await using stack = new AsyncDisposableStack();
  const peers = await startPeers(report, {
    starters: await bench.peers(),
    stack,
  });
  const baseline = peers.find((peer) => peer.label === "baseline");
  if (!baseline) {
    throw new Error(
      "Cannot measure unary calls: the bare grpc-js baseline did not start (bench/baseline_server.ts)",
    );
  }
  const greeter = await bench.spawnGreeter(["--interval", "10"]);
  stack.use(greeter.process);
  const ours = await generate(report, {
    target: greeter.target,
    label: "greeter",
  });
  const base = await generate(report, {
    target: baseline.target,
    label: "baseline",
  });
  report.figure("unary greeter / baseline", ours / base, "x");
  await h2loadRounds(report, [
    { label: "greeter", port: greeter.port },
    ...peers,
    ...await pythonUnaryPeer(report, stack),
  ]);
}

/** The unary section. */
export const unaryScenario: Scenario = { name: "unary", run };
