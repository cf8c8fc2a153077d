/**
 * Hostile clients (issue #13, the low items): each test does what the
 * attacker did, against a real server on loopback, bounded in count and
 * time.
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import type { GreetingMessage, SubscribeRequest } from "../lib/wire/proto.ts";
import {
  HeldStreams,
  helloRequestFrame,
  settles,
  startTestServer,
  waitFor,
} from "../testing/server.ts";
import { RawH2 } from "../testing/raw_h2.ts";
import { GreeterClient } from "../lib/client/client.ts";
import type { RpcError } from "../lib/errors.ts";
import { parseServeArgs } from "../lib/cli/config.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { runClient, spawnServer } from "../testing/process.ts";
import { PYTHON, pythonGrpcMissing, pythonProgram } from "../testing/python.ts";

const HOUR = 3_600_000;

/** A raw grpc-js Greeter client: requests go out exactly as written here. */
function rawClient(target: string) {
  const { Client } = loadGreeterProto();
  return new Client(target, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
}

/** What a `Subscribe` call yields before it ends: its messages and its status. */
function subscribeOutcome(
  client: grpc.Client,
  request: SubscribeRequest,
): Promise<{ messages: GreetingMessage[]; error?: grpc.ServiceError }> {
  const call = (client as unknown as {
    Subscribe(request: SubscribeRequest): grpc.ClientReadableStream<
      GreetingMessage
    >;
  }).Subscribe(request);
  const messages: GreetingMessage[] = [];
  return new Promise((resolve) => {
    call.on("data", (message: GreetingMessage) => {
      messages.push(message);
      // A subscription that started is not what these tests expect: end it.
      if (message.firstGreetingMessage) call.cancel();
    });
    call.on(
      "error",
      (error: grpc.ServiceError) => resolve({ messages, error }),
    );
    call.on("end", () => resolve({ messages }));
  });
}

Deno.test("Subscribe refuses a cursor seq of 2^64-1 with INVALID_ARGUMENT naming it, not rounded", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  const client = rawClient(t.target);
  try {
    const huge = "18446744073709551615";
    const refused = await settles(
      "the refusal",
      subscribeOutcome(client, {
        name: "mallory",
        after: { epoch: t.server.hub.epoch, seq: huge },
      }),
    );
    assert.equal(refused.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(
      refused.error.details,
      new RegExp(`seq ${huge} is out of range`),
    );
    assert.equal(refused.messages.length, 0);
    // The largest seq the hub holds exactly is still a cursor (ahead of it).
    const edge = await settles(
      "the first message",
      subscribeOutcome(client, {
        name: "edge",
        after: { epoch: t.server.hub.epoch, seq: "9007199254740991" },
      }),
    );
    const first = edge.messages[0]?.firstGreetingMessage;
    assert.equal(first?.recovered, false);
    assert.match(first?.reason ?? "", /seq 9007199254740991 is ahead/);
  } finally {
    client.close();
  }
});

Deno.test("client --after refuses a seq past 2^53-1 naming it", async () => {
  const result = await runClient([
    "--mode",
    "subscribe",
    "--after",
    "3f2a9c0d11e4b7a6:18446744073709551615",
  ]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /seq 18446744073709551615 is out of range, at most 9007199254740991/,
  );
  assert.equal(result.stdout, "");
});

Deno.test("a streamed message over --max-message-size fails the call with RESOURCE_EXHAUSTED instead of going out", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
    maxMessageBytes: 1024,
  });
  const client = rawClient(t.target);
  try {
    // The first message echoes the cursor's epoch in its reason: a request
    // under the limit makes a reply over it.
    const outcome = await settles(
      "the refusal",
      subscribeOutcome(client, {
        name: "mallory",
        after: { epoch: "e".repeat(1000), seq: 1 },
      }),
    );
    assert.equal(outcome.messages.length, 0);
    assert.equal(outcome.error?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(
      outcome.error.details,
      /message of \d+ bytes: the server's limit is 1024 bytes/,
    );
    assert.equal(t.server.hub.size, 0);
  } finally {
    client.close();
  }
});

Deno.test("serve --token-file under GRPC_TRACE=server_call GRPC_VERBOSITY=DEBUG logs headers without the token", async () => {
  const token = "tok-trace-" + crypto.randomUUID();
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, `${token}\n`);
    const { process: server, target } = await spawnServer(
      ["--token-file", file],
      { GRPC_TRACE: "server_call", GRPC_VERBOSITY: "DEBUG" },
    );
    await using _ = server;
    const hello = await runClient(
      ["you", "--target", target, "--mode", "hello"],
      20_000,
      { GREETER_TOKEN: token },
    );
    assert.equal(hello.code, 0, hello.stderr);
    // Tracing is on (the headers are logged), the credential is not.
    const { input: line } = await server.waitForLine(
      "stderr",
      /SayHello received headers .*"authorization"/,
    );
    assert.match(line ?? "", /"authorization":\["<redacted>"\]/);
    assert.ok(!server.stderr.some((l) => l.includes(token)));
  } finally {
    await Deno.remove(file);
  }
});

// That the whole drain fits inside --grace is shown on a hand-driven clock
// (tests/shutdown_test.ts); here, the process's side of it.
Deno.test("serve drains, cancels what is left at the grace's end, and exits 0 even when a peer keeps a stream stuck open (SIGTERM to exit)", async () => {
  const graceMs = 1500;
  const { process: server, port } = await spawnServer([
    "--interval",
    "20",
    "--grace",
    String(graceMs),
  ]);
  await using _ = server;
  // A peer that never opens a stream window and never closes: the shutdown
  // must cancel its call, and cannot wait for its connection to close.
  await using peer = await RawH2.connect(port, { initialWindowSize: 0 });
  await peer.call(
    1,
    "/helloworld.Greeter/SayHelloStreamReply",
    helloRequestFrame("p"),
  );
  await server.waitForLine("stderr", /client "p" subscribed\./);
  server.child.kill("SIGTERM");
  const status = await server.exit(10_000);
  assert.equal(status.code, 0, server.stderr.join("\n"));
  // In order: the drain, the grace's end, the stop.
  const steps = [
    "Shutting down",
    `Grace period of ${graceMs} ms over`,
    "Server stopped",
  ].map((step) => server.stderr.findIndex((l) => l.includes(step)));
  assert.ok(
    steps[0] >= 0 && steps[0] < steps[1] && steps[1] < steps[2],
    server.stderr.join("\n"),
  );
});

Deno.test("one peer cannot take every subscription slot over many connections: RESOURCE_EXHAUSTED names the per-peer limit", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxSubscribers: 100,
    maxSubscribersPerConnection: 2,
    maxSubscribersPerPeer: 5,
  });
  // The attacker opens connection after connection, each under its own limit.
  const clients = Array.from({ length: 4 }, () =>
    new GreeterClient(t.target, {
      channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    }));
  const held = new HeldStreams();
  try {
    for (let i = 0; i < 5; i++) {
      void held.open(clients[Math.floor(i / 2)], `m${i}`);
    }
    await waitFor("five subscriptions", () => t.server.hub.size === 5);
    // A sixth, on a fresh connection with room of its own, is refused.
    await assert.rejects(
      settles("the refusal", held.open(clients[3], "m5")),
      (error: Error & { code?: string }) =>
        error.code === "RESOURCE_EXHAUSTED" &&
        /peer 127\.0\.0\.1 holds 5 subscriptions, the per-peer limit of 5 \(--max-subscribers-per-peer\)/
          .test(error.message),
    );
    assert.equal(t.server.hub.size, 5);
    // One leaves: the peer may subscribe again.
    held.end(0);
    await waitFor("a slot freed", () => t.server.hub.size === 4);
    void held.open(clients[3], "m6");
    await waitFor("the slot taken again", () => t.server.hub.size === 5);
  } finally {
    await held[Symbol.asyncDispose]();
    for (const client of clients) client.close();
  }
});

Deno.test("serve --max-patterns-per-peer bounds the distinct wildcard patterns of one peer's subscriptions: RESOURCE_EXHAUSTED names it", async () => {
  const { process: server, target } = await spawnServer([
    "--max-patterns-per-peer",
    "3",
  ]);
  await using _ = server;
  using client = new GreeterClient(target);
  const open = (topics: string[]) => {
    const controller = new AbortController();
    const stream = client.subscribe("p", {
      topics,
      signal: controller.signal,
    });
    return { first: stream.next(), stop: () => controller.abort(), stream };
  };
  const first = open(["a.*", "b.>", "news"]);
  assert.equal((await first.first).value?.kind, "subscribed");
  // The same patterns again cost nothing new; one more is the third.
  const second = open(["a.*", "c.*"]);
  assert.equal((await second.first).value?.kind, "subscribed");
  await assert.rejects(
    open(["d.*", "a.*"]).first,
    (e: RpcError) =>
      e.code === "RESOURCE_EXHAUSTED" &&
      /peer 127\.0\.0\.1 uses 3 distinct topic patterns and this adds 1, over the per-peer limit of 3 \(--max-patterns-per-peer\)/
        .test(e.message),
  );
  // Patterns their subscriptions no longer use are free again.
  second.stop();
  await second.stream.return(undefined).catch(() => {});
  await waitFor("c.* released", async () => {
    const third = open(["d.*"]);
    const ok = await third.first.then(() => true, () => false);
    third.stop();
    await third.stream.return(undefined).catch(() => {});
    return ok;
  });
  first.stop();
  await first.stream.return(undefined).catch(() => {});
});

Deno.test("serve --max-subscribers-per-peer defaults to a quarter of the default total and reads GREETER_MAX_SUBSCRIBERS_PER_PEER", () => {
  const config = (args: string[], env = {}) => {
    const parsed = parseServeArgs(args, env);
    assert.ok(!parsed.help);
    return parsed.config;
  };
  assert.equal(config([]).maxSubscribersPerPeer, 5000);
  assert.equal(config([]).maxSubscribers, 20000);
  assert.equal(
    config([], { GREETER_MAX_SUBSCRIBERS_PER_PEER: "40" })
      .maxSubscribersPerPeer,
    40,
  );
  assert.equal(
    config(["--max-subscribers-per-peer", "7"], {
      GREETER_MAX_SUBSCRIBERS_PER_PEER: "40",
    }).maxSubscribersPerPeer,
    7,
  );
  assert.throws(
    () => config(["--max-subscribers-per-peer", "0"]),
    /max subscribers per peer/i,
  );
});

Deno.test("a header list over 16 KiB is refused on its own stream; the connection and its other calls go on", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  await using peer = await RawH2.connect(t.server.port);
  await waitFor("the server's SETTINGS acknowledged", () => peer.settled);
  const sayHello = "/helloworld.Greeter/SayHello";
  // 24 KB of metadata in three headers: over the limit, under nghttp2's
  // CONTINUATION guard (8 frames).
  const big = Object.fromEntries(
    [0, 1, 2].map((i) => [`x-big-${i}`, "a".repeat(8000)]),
  );
  await peer.call(1, sayHello, helloRequestFrame("big"), big);
  await peer.call(3, sayHello, helloRequestFrame("next"));
  await peer.read(3);
  await waitFor("the next call answered", () => peer.ended.has(3));
  assert.equal(peer.resets.get(1), 11); // ENHANCE_YOUR_CALM
  assert.ok(!peer.ended.has(1), "the oversized call was served");
  assert.equal(peer.closed, undefined);
});

Deno.test("a peer that never acknowledges the server's SETTINGS still gets RESOURCE_EXHAUSTED for metadata over 16 KiB", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  // Unacknowledged, the advertised header list limit does not bind it.
  await using peer = await RawH2.connect(t.server.port, { ackSettings: false });
  const big = Object.fromEntries(
    [0, 1, 2].map((i) => [`x-big-${i}`, "a".repeat(8000)]),
  );
  await peer.call(
    1,
    "/helloworld.Greeter/SayHello",
    helloRequestFrame("big"),
    big,
  );
  await peer.read(1);
  await waitFor(
    "the call ended",
    () => peer.ended.has(1) || peer.resets.has(1),
  );
  await waitFor(
    "the refusal counted",
    () =>
      t.server.metrics.render().includes(
        'greeter_rpcs_total{transport="grpc",method="/helloworld.Greeter/SayHello",code="RESOURCE_EXHAUSTED"} 1',
      ),
  );
  assert.equal(peer.closed, undefined);
});

Deno.test("publish:news.* does not allow news.: topics and patterns with an empty token are refused, as NATS refuses them", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "n3ws-0123456789abcdef publish:news.*\n");
    const { process: server, target } = await spawnServer([
      "--token-file",
      file,
    ]);
    await using _ = server;
    const publish = (topic: string) =>
      runClient(
        ["--target", target, "--mode", "publish", "--topic", topic],
        20_000,
        { GREETER_TOKEN: "n3ws-0123456789abcdef" },
      );
    assert.equal((await publish("news.sport")).code, 0);
    for (const topic of ["news.", ".news", "news..sport"]) {
      const refused = await publish(topic);
      // 64 + INVALID_ARGUMENT, or 64 + PERMISSION_DENIED.
      assert.ok([64 + 3, 64 + 7].includes(refused.code), topic);
      assert.match(
        refused.stderr,
        /(INVALID_ARGUMENT: Invalid topic|PERMISSION_DENIED).*"news|"\.news/,
        topic,
      );
    }
    using client = new GreeterClient(target, {
      token: "n3ws-0123456789abcdef",
    });
    for (const pattern of ["news.*.", "news..>", ".*"]) {
      await assert.rejects(
        client.subscribe("x", { topics: [pattern] }).next(),
        (e: RpcError) =>
          ["INVALID_ARGUMENT", "PERMISSION_DENIED"].includes(e.code),
        pattern,
      );
    }
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("INVALID_ARGUMENT details quote the client's bad topic and page token escaped, never raw", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  using client = new GreeterClient(target);
  const raw = "bad\ntopic\u001b[31m\u202e";
  const rawCharacters = (text: string) =>
    ["\n", "\u001b", "\u202e"].some((c) => text.includes(c));
  const escaped = (e: RpcError) =>
    e.code === "INVALID_ARGUMENT" &&
    e.message.includes('"bad\\ntopic\\u001b[31m\\u202e"') &&
    !rawCharacters(e.message);
  await assert.rejects(client.publish(raw, new Uint8Array()), escaped);
  await assert.rejects(
    client.subscribe("x", { topics: [raw] }).next(),
    escaped,
  );
  await assert.rejects(
    client.subscribe("x", { topics: [`${raw}.*`] }).next(),
    (e: RpcError) => e.code === "INVALID_ARGUMENT" && !rawCharacters(e.message),
  );
  await assert.rejects(
    client.listSubscribers({ pageToken: "1\n2" }),
    (e: RpcError) =>
      e.code === "INVALID_ARGUMENT" && e.message.includes('"1\\n2"'),
  );
});

/** A gRPC C-core client (Python grpcio): 60 KB then 200 KB of metadata beside a stream; prints what each got. */
const CORE_METADATA_CLIENT = `
import sys, threading, time, grpc
import helloworld_pb2 as pb, helloworld_pb2_grpc as rpc
stub = rpc.GreeterStub(grpc.insecure_channel(sys.argv[1]))
sibling = stub.SayHelloStreamReply(pb.HelloRequest(name="sibling"))
ended = []
def read():
    try:
        for _ in sibling: pass
    except grpc.RpcError as e:
        ended.append(e.code().name)
threading.Thread(target=read, daemon=True).start()
time.sleep(0.5)
for kb in (60, 200):
    try:
        stub.SayHello(pb.HelloRequest(name="big"), timeout=10,
            metadata=[("x-big-%d" % i, "a" * 8000) for i in range(kb // 8)])
        print(kb, "OK")
    except grpc.RpcError as e:
        print(kb, e.code().name)
    time.sleep(0.5)
    print("sibling", ended[0] if ended else "open", flush=True)
print(stub.SayHello(pb.HelloRequest(name="after")).message, flush=True)
`;

Deno.test({
  name:
    "a 200 KB header list from a gRPC C-core client is refused on its own stream, as 60 KB is: its sibling streams and its connection go on",
  ignore: pythonGrpcMissing() !== undefined,
  async fn() {
    const { process: server, target } = await spawnServer();
    await using _ = server;
    const dir = await pythonProgram("client.py", CORE_METADATA_CLIENT);
    try {
      const run = await new Deno.Command(PYTHON, {
        args: [`${dir}/client.py`, target],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(30_000),
      }).output();
      const out = new TextDecoder().decode(run.stdout);
      assert.equal(
        out,
        "60 RESOURCE_EXHAUSTED\nsibling open\n200 RESOURCE_EXHAUSTED\nsibling open\nHello, after!\n",
        new TextDecoder().decode(run.stderr),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
