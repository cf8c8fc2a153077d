/**
 * Signals as people deliver them: a terminal's Ctrl-C (and `timeout`, and
 * systemd's `KillMode=control-group`) signals the whole process group, so
 * `deno run` gets it once from the terminal and once more from `deno task`,
 * which forwards it. Each test runs `deno task` in a process group of its own
 * and signals the group, several times, since the double delivery races.
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { spawnServer, spawnTask } from "../testing/process.ts";
import { RawH2 } from "../testing/raw_h2.ts";
import {
  helloRequestFrame,
  startTestServer,
  waitFor,
} from "../testing/server.ts";

/** Rounds per signal kind: the second copy's timing varies run to run. */
const ROUNDS = 5;

/**
 * `deno task serve` in a process group of its own, with a subscriber, gets
 * `signal`: the subscriber is told goodbye (UNAVAILABLE advice, code 14) and
 * ends OK, and the server says "Server stopped" and exits 0.
 */
async function serverDrainsOn(signal: Deno.Signal, what: string) {
  const { process: server, target } = await spawnServer(
    ["--grace", "10000"],
    undefined,
    true,
  );
  await using _ = server;
  using client = new GreeterClient(target);
  const stream = client.subscribe("ann", { topics: ["news"] });
  assert.equal((await stream.next()).value?.kind, "subscribed");
  server.signalGroup(signal);
  const goodbye = (await stream.next()).value;
  assert.equal(goodbye?.kind, "goodbye", what);
  assert.equal(goodbye.code, 14);
  assert.equal((await stream.next()).done, true); // OK, not UNAVAILABLE
  const status = await server.exit(15_000);
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(
    server.stderr.some((l) => l.includes("Server stopped")),
    server.stderr.join("\n"),
  );
}

/**
 * `deno task client --mode subscribe` in a process group of its own, on
 * `target`, gets `signal`: it exits 0 and prints its last cursor.
 */
async function clientEndsOn(signal: Deno.Signal, target: string) {
  await using cli = spawnTask("client", [
    "--target",
    target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
  ]);
  await cli.waitForLine("stdout", /^subscribed: /);
  cli.signalGroup(signal);
  const status = await cli.exit(15_000);
  assert.equal(status.code, 0, cli.stderr.join("\n"));
  assert.ok(
    cli.stderr.some((l) => /^last cursor: \w+:\d+$/.test(l)),
    cli.stderr.join("\n"),
  );
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} to deno task serve's process group drains once: goodbye and OK, "Server stopped", exit 0`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      await serverDrainsOn(signal, `round ${round}`);
    }
  });

  Deno.test(`${signal} to deno task client's process group ends the subscription with exit 0 and the last cursor`, async () => {
    await using t = await startTestServer();
    for (let round = 0; round < ROUNDS; round++) {
      await clientEndsOn(signal, t.target);
    }
  });
}

Deno.test("SIGHUP to deno task serve's process group without --token-file drains and stops (a closed terminal), exit 0", async () => {
  await serverDrainsOn("SIGHUP", "SIGHUP");
});

Deno.test("SIGHUP to deno task client's process group ends the subscription with exit 0 and the last cursor", async () => {
  await using t = await startTestServer();
  await clientEndsOn("SIGHUP", t.target);
  // It cancelled its call, and the server says so.
  await waitFor(
    "the leave",
    () => t.logs.some((l) => l.includes("is leaving.")),
  );
  assert.match(
    t.logs.find((l) => l.includes("is leaving."))!,
    /reason="client-cancelled"/,
  );
});

Deno.test("Ctrl-C to deno task serve --workers 2's process group: every worker drains within --grace (what is stuck is cancelled), then exit 0", async () => {
  const { process: server, port, target } = await spawnServer(
    [
      "--workers",
      "2",
      "--grace",
      "1000",
      "--interval",
      "20",
      "--metrics-port",
      "0",
    ],
    undefined,
    true,
  );
  await using _ = server;
  const [, metricsPort] = await server.waitForLine(
    "stderr",
    /Metrics on http:\/\/127\.0\.0\.1:(\d+)/,
  );
  /** Live subscriptions of each worker, by its index. */
  const perWorker = async () => {
    const page = await (await fetch(
      `http://127.0.0.1:${metricsPort}/metrics`,
    )).text();
    return [
      ...page.matchAll(/^greeter_worker_subscribers\{worker="(\d)"\} (\d+)/gm),
    ]
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => Number(m[2]));
  };
  // Peers that never open a stream window, until each worker holds one:
  // the ticks queue behind it, and its call cannot end before the grace does.
  const peers: RawH2[] = [];
  const clients: GreeterClient[] = [];
  try {
    for (
      let n = 0;
      n < 32 && (await perWorker()).some((size) => size === 0);
      n++
    ) {
      const peer = await RawH2.connect(port, { initialWindowSize: 0 });
      peers.push(peer);
      const before = (await perWorker()).reduce((a, b) => a + b, 0);
      await peer.call(
        1,
        "/helloworld.Greeter/SayHelloStreamReply",
        helloRequestFrame(`p${n}`),
      );
      await waitFor(
        "the peer's call in the hub",
        async () =>
          (await perWorker()).reduce((a, b) => a + b, 0) === before + 1,
      );
    }
    assert.deepEqual((await perWorker()).map((size) => size > 0), [true, true]);
    // And a subscriber on each worker that reads: told goodbye, then OK.
    const streams: {
      worker: number;
      name: string;
      stream: ReturnType<GreeterClient["subscribe"]>;
    }[] = [];
    for (let n = 0; n < 32 && streams.length < 2; n++) {
      const before = await perWorker();
      const client = new GreeterClient(target, {
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      });
      clients.push(client);
      const stream = client.subscribe(`s${n}`, { topics: ["news"] });
      assert.equal((await stream.next()).value?.kind, "subscribed");
      const after = await perWorker();
      const worker = after.findIndex((size, i) => size > before[i]);
      if (streams.some((s) => s.worker === worker)) {
        await stream.return(undefined);
        continue;
      }
      streams.push({ worker, name: `s${n}`, stream });
    }
    assert.equal(streams.length, 2, "a reading subscriber on each worker");
    server.signalGroup("SIGINT");
    for (const { stream } of streams) {
      const goodbye = (await stream.next()).value;
      assert.equal(goodbye?.kind, "goodbye");
      assert.equal((await stream.next()).done, true); // OK, not UNAVAILABLE
    }
    const status = await server.exit(15_000);
    assert.equal(status.code, 0, server.stderr.join("\n"));
    const lines = server.stderr.join("\n");
    // A worker's lines read as one thread's, the name in the message.
    for (const { name } of streams) {
      assert.match(lines, new RegExp(`INFO client "${name}" subscribed\\. `));
    }
    // Each worker's own grace ran out, on its stuck peer.
    assert.equal(
      server.stderr.filter((l) => l.includes("Grace period of 1000 ms over"))
        .length,
      2,
      lines,
    );
    assert.equal(
      server.stderr.filter((l) => l.includes("Server stopped")).length,
      1,
      lines,
    );
  } finally {
    for (const client of clients) client.close();
    for (const peer of peers) await peer[Symbol.asyncDispose]();
  }
});
