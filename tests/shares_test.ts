/**
 * Shares per peer of every bounded pool (issue #19 item 5): connections,
 * health watches, metrics connections and reads of the event stream, each
 * through `deno task serve` as a stranger and a user would meet them. The
 * stranger is another loopback address (`testing/peer_proxy.ts`).
 */

import assert from "node:assert/strict";
import net from "node:net";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { GreeterClient } from "../lib/client/client.ts";
import type { RpcError } from "../lib/errors.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import { PeerProxy } from "../testing/peer_proxy.ts";
import { spawnServer } from "../testing/process.ts";
import { grpcFrame, stalledCall, waitFor } from "../testing/server.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { startInstance } from "../testing/instances.ts";
import { resolveServerOptions } from "../lib/server/options.ts";

const Health = grpc.makeGenericClientConstructor(healthService, "Health");

/** A client with a connection of its own (grpc-js shares them otherwise). */
function ownConnection(target: string): GreeterClient {
  return new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
}

Deno.test("--max-connections-per-peer defaults to a quarter of --max-connections", () => {
  assert.equal(resolveServerOptions({}).maxConnectionsPerPeer, 2_500);
  assert.equal(
    resolveServerOptions({ maxConnections: 100 }).maxConnectionsPerPeer,
    25,
  );
  assert.equal(
    resolveServerOptions({ maxConnectionsPerPeer: 7 }).maxConnectionsPerPeer,
    7,
  );
});

Deno.test("serve --max-connections-per-peer: a peer's connections beyond its share are closed at once, said once; another peer connects", async () => {
  const { process: server, port, target } = await spawnServer([
    "--max-connections-per-peer",
    "3",
  ]);
  await using _ = server;
  await using stranger = await PeerProxy.start(port, "127.0.0.2");
  const held: GreeterClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const client = ownConnection(stranger.target);
      held.push(client);
      assert.equal(await client.sayHello("s"), "Hello, s!");
    }
    const fourth = ownConnection(stranger.target);
    held.push(fourth);
    await assert.rejects(
      fourth.sayHello("s", { signal: AbortSignal.timeout(10_000) }),
      (e: RpcError) => e.code === "UNAVAILABLE",
    );
    await server.waitForLine(
      "stderr",
      /WARN Refused a connection: 127\.0\.0\.2 holds 3 connections, its share of 3 \(--max-connections-per-peer\)/,
    );
    using user = ownConnection(target);
    assert.equal(await user.sayHello("u"), "Hello, u!");
  } finally {
    for (const client of held) client.close();
  }
});

Deno.test("serve: Health.Watch slots are shared per peer: one peer stops at a quarter of them, another still watches", async () => {
  // --max-subscribers 20: 20 watches in all, 5 per peer.
  const { process: server, port, target } = await spawnServer([
    "--max-subscribers",
    "20",
  ]);
  await using _ = server;
  await using stranger = await PeerProxy.start(port, "127.0.0.2");
  const clients = [stranger.target, target].map((t) =>
    new Health(t, grpc.credentials.createInsecure())
  );
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  const watch = (client: grpc.Client) =>
    new Promise<string>((resolve, reject) => {
      // deno-lint-ignore no-explicit-any
      const call = (client as any).Watch({ service: "" });
      calls.push(call);
      call.once("data", (reply: { status: string }) => resolve(reply.status));
      call.once("error", reject);
    });
  try {
    for (let i = 0; i < 5; i++) {
      assert.equal(await watch(clients[0]), "SERVING");
    }
    await assert.rejects(
      watch(clients[0]),
      (e: grpc.ServiceError) =>
        e.code === grpc.status.RESOURCE_EXHAUSTED &&
        /127\.0\.0\.2 holds 5 health watches, its share of 5/.test(e.details),
    );
    assert.equal(await watch(clients[1]), "SERVING");
  } finally {
    for (const call of calls) {
      call.on("error", () => {});
      call.cancel();
    }
    for (const client of clients) client.close();
  }
});

Deno.test("serve --metrics-port: a stranger's idle connections take only its share, each closed within the 2 s head timeout; scrapes from elsewhere go on", async () => {
  const { process: server } = await spawnServer(["--metrics-port", "0"]);
  await using _ = server;
  const [, metricsPort] = await server.waitForLine(
    "stderr",
    /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/,
  );
  // 32 idle connections, what once blinded the port for 10 s at a time.
  const idle = Array.from({ length: 32 }, () => {
    const socket = net.connect({
      host: "127.0.0.1",
      port: Number(metricsPort),
      localAddress: "127.0.0.2",
    });
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) =>
      socket.once("close", () => resolve())
    );
    return { socket, closed };
  });
  try {
    await Promise.all(
      idle.map(({ socket }) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === "open") resolve();
          else socket.once("connect", () => resolve());
          socket.once("close", () => resolve());
        })
      ),
    );
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /greeter_subscribers/);
    await server.waitForLine(
      "stderr",
      /WARN Refused a metrics connection: 127\.0\.0\.2 holds 8 metrics connections, its share of 8/,
    );
    // Those let in said nothing: each is closed by the head timeout (2 s),
    // well before the exchange's 10 s.
    await Promise.race([
      Promise.all(idle.map(({ closed }) => closed)),
      new Promise((_, reject) =>
        setTimeout(
          () =>
            reject(new Error("idle metrics connections still open after 6 s")),
          6_000,
        )
      ),
    ]);
  } finally {
    for (const { socket } of idle) socket.destroy();
    await Promise.all(idle.map(({ closed }) => closed));
  }
});

Deno.test({
  name:
    "serve --broker nats://: one peer's resumes older than the window take only its share of the stream's reads; another peer still resumes",
  ignore: natsServerMissing() !== undefined,
  async fn() {
    await using nats = await startNatsServer();
    // The first instance makes the stream (10,000 events); this one keeps
    // 10 in memory: older cursors are read from the stream.
    await using _maker = await startInstance(nats.url);
    await using greeter = await startInstance(nats.url, {
      extra: ["--replay-size", "10"],
    });
    using publisher = new GreeterClient(greeter.target);
    const payload = new Uint8Array(1024);
    let epoch = "";
    for (let i = 0; i < 300; i++) {
      epoch = (await publisher.publish("deep", payload)).cursor.epoch;
    }
    await using stranger = await PeerProxy.start(greeter.port, "127.0.0.2");
    // 16 resumes from seq 1, never read: each holds a read of the stream.
    const session = http2.connect(`http://${stranger.target}`);
    session.on("error", () => {});
    const { Subscribe } = loadGreeterProto().service;
    const frame = grpcFrame(
      Subscribe.requestSerialize({
        name: "hoarder",
        topics: ["deep"],
        after: { epoch, seq: "1" },
      }),
    );
    for (let i = 0; i < 16; i++) stalledCall(session, Subscribe.path, frame);
    try {
      await waitFor(
        "16 stalled resumes subscribed",
        () =>
          greeter.process.stderr.filter((line) =>
            line.includes('client "hoarder" subscribed.')
          ).length === 16,
        10_000,
      );
      using more = new GreeterClient(stranger.target);
      await assert.rejects(
        more.subscribe("hoarder", {
          topics: ["deep"],
          after: { epoch, seq: 1 },
        }).next(),
        (e: RpcError) =>
          e.code === "UNAVAILABLE" &&
          /127\.0\.0\.2 holds 16 reads of the event stream, its share of 16/
            .test(e.message),
      );
      using user = new GreeterClient(greeter.target);
      const resumed = user.subscribe("user", {
        topics: ["deep"],
        after: { epoch, seq: 1 },
      });
      const first = await resumed.next();
      assert.equal(first.value?.kind, "subscribed");
      assert.equal(
        first.value?.kind === "subscribed" && first.value.recovered,
        true,
      );
      const event = await resumed.next();
      assert.equal(event.value?.kind, "event");
      await resumed.return(undefined);
    } finally {
      session.destroy();
    }
  },
});
