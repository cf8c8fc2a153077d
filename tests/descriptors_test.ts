/**
 * Running out of descriptors (issue 13): a server under a 256-descriptor
 * limit is flooded with connections on both its ports, survives, says so,
 * and serves again once they go.
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import { GreeterClient } from "../lib/client/client.ts";
import { Logger } from "../lib/log.ts";
import { serveMetricsHttp } from "../lib/observe/metrics_server.ts";
import {
  type LineProcess,
  PRLIMIT,
  spawnLimitedServer,
} from "../testing/process.ts";
import { settles, startTestServer, waitFor } from "../testing/server.ts";

const NO_PRLIMIT = PRLIMIT ? undefined : "prlimit is not installed";
if (NO_PRLIMIT) {
  console.warn(`descriptors_test.ts ignored in part: ${NO_PRLIMIT}`);
}

/** 300 HTTP/2 connections that answer pings and never call; resolves once each is up or refused. */
async function idleConnections(port: number, count = 300) {
  const sessions = Array.from({ length: count }, () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    return session;
  });
  await Promise.all(sessions.map((session) =>
    settles(
      "a connection to be up or refused",
      new Promise<void>((resolve) => {
        session.once("connect", () => resolve());
        session.once("close", () => resolve());
      }),
      20_000,
    )
  ));
  return {
    /** How many the server kept. */
    get open() {
      return sessions.filter((s) => !s.closed && !s.destroyed).length;
    },
    close() {
      for (const session of sessions) session.destroy();
    },
  };
}

/** SayHello on a connection of its own, tried every 200 ms for up to 10 s. */
async function helloEventually(target: string): Promise<string> {
  let last: unknown;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (attempt > 0) await delay(200);
    using client = new GreeterClient(target, {
      channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    });
    try {
      return await client.sayHello("back", { timeoutMs: 2_000 });
    } catch (error) {
      last = error;
    }
  }
  throw new Error(`SayHello never succeeded: ${last}`);
}

/** Fails when `server` has exited: the attack must not kill it. */
async function assertRunning(server: LineProcess) {
  const exited = await Promise.race([
    server.child.status.then(() => true),
    delay(0).then(() => false),
  ]);
  assert.ok(!exited, `the server exited:\n${server.stderr.join("\n")}`);
}

/** SIGTERM, and the drain must end with exit 0. */
async function stopCleanly(server: LineProcess) {
  await assertRunning(server);
  server.signalGroup("SIGTERM"); // as Ctrl-C or kill -- -PGID would
  const status = await server.exit(15_000);
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(
    !server.stderr.some((line) => /Uncaught|panicked/.test(line)),
    server.stderr.join("\n"),
  );
}

Deno.test({
  name:
    "greeter serve --max-connections 128 under 256 descriptors sheds 300 idle HTTP/2 connections beyond its cap and serves again once they go",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const { process: server, port, target } = await spawnLimitedServer(256, [
      "--max-connections",
      "128",
      // One peer here: its share is the whole, so the cap in all is met.
      "--max-connections-per-peer",
      "128",
    ]);
    await using _ = server;
    const flood = await idleConnections(port);
    try {
      await server.waitForLine(
        "stderr",
        /Connection limit of 128 reached: refusing new connections/,
      );
      // The refused ones close on this side a moment later.
      await waitFor("at most 128 connections kept", () => flood.open <= 128);
      await assertRunning(server);
    } finally {
      flood.close();
    }
    assert.equal(await helloEventually(target), "Hello, back!");
    await stopCleanly(server);
  },
});

Deno.test({
  name:
    "greeter serve under 256 descriptors runs out with 300 idle HTTP/2 connections, says so, sheds the newest, and accepts again once they go",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const { process: server, port, target } = await spawnLimitedServer(256);
    await using _ = server;
    const flood = await idleConnections(port);
    try {
      const [, kept] = await server.waitForLine(
        "stderr",
        /Out of file descriptors with \d+ connections open: at most (\d+) from now on/,
      );
      await waitFor(
        "the newest to be closed",
        () => flood.open <= Number(kept),
        10_000,
      );
      await assertRunning(server);
    } finally {
      flood.close();
    }
    assert.equal(await helloEventually(target), "Hello, back!");
    await server.waitForLine(
      "stderr",
      /File descriptors available again: accepting connections/,
    );
    await stopCleanly(server);
  },
});

Deno.test({
  name:
    "greeter serve raises its lowered connection cap once the open-file limit allows: shed under 256, limit raised to 1024 while it runs, then 300 idle connections are all kept",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    // Deno raises its soft limit to the hard one at start, and raising a
    // hard limit needs a privilege a container may lack: so the server runs
    // under 1024, is lowered to 256 while it runs, then given 1024 back,
    // with `prlimit --pid` on deno task's child, as an operator would.
    const { process: server, port } = await spawnLimitedServer(1024);
    await using _ = server;
    const children = new TextDecoder().decode(
      (await new Deno.Command("pgrep", {
        args: ["-P", String(server.child.pid)],
      }).output()).stdout,
    ).trim().split("\n").filter(Boolean);
    assert.equal(children.length, 1, `deno task's children: ${children}`);
    const limit = async (soft: number) => {
      const done = await new Deno.Command(PRLIMIT!, {
        args: ["--pid", children[0], `--nofile=${soft}:1024`],
      }).output();
      assert.ok(done.success, new TextDecoder().decode(done.stderr));
    };
    await limit(256);
    const flood = await idleConnections(port);
    try {
      await server.waitForLine("stderr", /Out of file descriptors with/);
    } finally {
      flood.close();
    }
    await server.waitForLine("stderr", /File descriptors available again/);
    await limit(1024);
    await waitFor(
      "the cap to be raised past 300",
      () =>
        server.stderr.some((line) =>
          Number(line.match(/Connection cap raised to (\d+)/)?.[1]) > 300
        ),
      20_000,
      () => server.stderr.slice(-10).join("\n"),
    );
    const again = await idleConnections(port);
    try {
      await waitFor("all 300 to be kept", () => again.open === 300, 10_000);
      await delay(1_500); // a check or more later: still all kept
      assert.equal(again.open, 300);
      assert.equal(
        server.stderr.filter((l) => /Out of file descriptors/.test(l)).length,
        1,
        server.stderr.join("\n"),
      );
    } finally {
      again.close();
    }
    await stopCleanly(server);
  },
});

Deno.test({
  name:
    "greeter serve under 256 descriptors survives 300 half-sent requests to its metrics port and serves metrics again",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const { process: server, target } = await spawnLimitedServer(256, [
      "--metrics-port",
      "0",
    ]);
    await using _ = server;
    const [, metricsPort] = await server.waitForLine(
      "stderr",
      /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/,
    );
    const half = new TextEncoder().encode(
      "GET /metrics HTTP/1.1\r\nHost: x\r\n",
    );
    const conns: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: Number(metricsPort),
        });
        conns.push(conn);
        await conn.write(half).catch(() => {}); // refused ones are closed
      }
      // One peer: its share of the 32 (8) is what it meets.
      await server.waitForLine(
        "stderr",
        /Refused a metrics connection: 127\.0\.0\.1 holds 8 metrics connections, its share of 8/,
      );
      await delay(1_500); // long enough for the old server to have died
      await assertRunning(server);
    } finally {
      for (const conn of conns) conn.close();
    }
    let body = "";
    for (let i = 0; i < 50 && !body.includes("greeter_subscribers"); i++) {
      if (i > 0) await delay(200);
      body = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
        .then((r) => r.text(), () => "");
    }
    assert.match(body, /^greeter_subscribers 0$/m);
    assert.equal(await helloEventually(target), "Hello, back!");
    await stopCleanly(server);
  },
});

Deno.test("the metrics server closes a silent and a half-sent request at its deadline, and refuses connections beyond its cap", async () => {
  const server = serveMetricsHttp({
    host: "127.0.0.1",
    port: 0,
    render: () => "up 1\n",
    log: new Logger({ write: () => {} }),
    maxConnections: 2,
    timeoutMs: 300,
  });
  const connect = () =>
    Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const silent = await connect();
  const half = await connect();
  const beyond = await connect();
  try {
    await half.write(new TextEncoder().encode("GET /metrics HTTP/1.1\r\n"));
    const buffer = new Uint8Array(64);
    // Beyond the cap: closed at once.
    assert.equal(await settles("the refusal", beyond.read(buffer)), null);
    // The others: closed at the deadline, with nothing sent.
    assert.equal(await settles("the deadline", silent.read(buffer)), null);
    assert.equal(await settles("the deadline", half.read(buffer)), null);
    await waitFor("the server to let go", () => server.connections === 0);
    // A whole request is answered.
    const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "up 1\n");
  } finally {
    for (const conn of [silent, half, beyond]) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    await server.stop();
  }
});

Deno.test("a connection that answers pings and makes no call is closed after --max-connection-idle", async () => {
  await using t = await startTestServer({ maxConnectionIdleMs: 300 });
  const session = http2.connect(`http://${t.target}`);
  session.on("error", () => {});
  try {
    await settles(
      "the idle connection to be closed",
      new Promise<void>((resolve) => {
        session.once("goaway", () => resolve());
        session.once("close", () => resolve());
      }),
    );
  } finally {
    session.destroy();
  }
});
