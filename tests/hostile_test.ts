/**
 * Hostile clients (issue #13, the low items): each test does what the
 * attacker did, against a real server on loopback, bounded in count and
 * time.
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadGreeterProto } from "../lib/grpc/proto.ts";
import type { GreetingMessage, SubscribeRequest } from "../lib/grpc/proto.ts";
import {
  helloRequestFrame,
  settles,
  startTestServer,
} from "../testing/server.ts";
import { RawH2 } from "../testing/raw_h2.ts";
import { runClient, spawnServer } from "../testing/process.ts";

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

Deno.test("serve stops within --grace even when a peer keeps a stream stuck open (SIGTERM to exit)", async () => {
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
  await server.waitForLine("stderr", /client p subscribed\./);
  const started = performance.now();
  server.child.kill("SIGTERM");
  const status = await server.exit(10_000);
  const elapsed = performance.now() - started;
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(
    server.stderr.some((l) => l.includes(`Grace period of ${graceMs} ms over`)),
    server.stderr.join("\n"),
  );
  // The whole shutdown fits in the grace; the margin is the process's own
  // exit (it overran by the 1 s force wait before).
  assert.ok(
    elapsed < graceMs + 500,
    `exited ${Math.round(elapsed)} ms after SIGTERM`,
  );
});
