import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { RawH2 } from "../testing/raw_h2.ts";
import { helloRequestFrame, waitFor } from "../testing/server.ts";
import {
  LineProcess,
  runClient,
  spawnServer,
  taskArgs,
} from "../testing/process.ts";

/** `greeter client NAME --mode stream` against `target`, left running. */
function streamingClient(target: string, name: string): LineProcess {
  return new LineProcess([
    ...taskArgs("client"),
    name,
    "--target",
    target,
    "--mode",
    "stream",
  ]);
}

const STREAM2_LINES = [
  "Greeter client received: Hello, you!",
  "firstGreetingMessage received:",
  ...Array(5).fill("timerGreetingMessage received:"),
  "goodbyeGreetingMessage received:",
];

Deno.test("greeter client (stream2) prints what the seed's client prints", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  const result = await runClient(["you", "--target", target]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, STREAM2_LINES.join("\n") + "\n");
  assert.equal(result.stderr, "");
});

Deno.test("greeter client --mode stream --count N leaves cleanly and the server logs the leave", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  const result = await runClient([
    "alice",
    "--target",
    target,
    "--mode",
    "stream",
    "--count",
    "3",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  assert.equal(lines[0], "Greeter client received: Hello, alice!");
  for (const line of lines.slice(1)) {
    assert.match(
      line,
      /^Greeter client received: hello alice, it's \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
    );
  }
  await server.waitForLine(
    "stderr",
    // --count reached: the client cancelled its call.
    /client "alice" is leaving\. subscription=1 peer="[^"]+" transport="grpc" reason="client-cancelled"/,
  );
  // One line per leave: no separate "disconnected." line.
  assert.ok(!server.stderr.some((l) => l.includes("disconnected.")));
});

Deno.test("a client's name cannot forge fields in the server's log", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  const forged = 'eve is leaving. subscription=1 reason="closed" x=';
  const result = await runClient([
    forged,
    "--target",
    target,
    "--mode",
    "stream",
    "--count",
    "1",
  ]);
  assert.equal(result.code, 0, result.stderr);
  // The forged name itself holds "is leaving. subscription=1": wait for the
  // server's own leave line (its fields follow the quoted name), not the join.
  await server.waitForLine("stderr", /is leaving\. subscription=\d+ peer=/);
  const leaves = server.stderr.filter((l) =>
    /is leaving\. subscription=\d+ peer=/.test(l)
  );
  assert.equal(leaves.length, 1, leaves.join("\n"));
  // The name stays one quoted value; the fields after it are the server's.
  const quoted = JSON.stringify(forged);
  assert.ok(
    leaves[0].includes(
      `INFO client ${quoted} is leaving. subscription=1 peer="`,
    ),
    leaves[0],
  );
  assert.match(leaves[0], /reason="client-cancelled"$/);
  assert.ok(!server.stderr.some((l) => l.includes("INFO client eve ")));
});

Deno.test("greeter client --mode presence counts in good English", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  const presence = () => runClient(["--target", target, "--mode", "presence"]);
  const none = await presence();
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, "0 subscribers\n");
  await using client = streamingClient(target, "ann");
  await client.waitForLine("stdout", /hello ann, it's/);
  const one = await presence();
  assert.equal(one.code, 0, one.stderr);
  assert.match(
    one.stdout,
    /^subscriber: id=1 name="ann" topics=tick since=[^\n]+\n1 subscriber\n$/,
  );
});

Deno.test("greeter serve --log-level debug logs each call: method, peer, status, duration", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/tokens.txt`;
    await Deno.writeTextFile(file, "0123456789abcdef0123\n", { mode: 0o600 });
    const { process: server, target } = await spawnServer([
      "--log-level",
      "debug",
      "--token-file",
      file,
    ]);
    await using _ = server;
    const hello = ["you", "--target", target, "--mode", "hello"];
    assert.equal(
      (await runClient(hello, 20_000, { GREETER_TOKEN_FILE: file })).code,
      0,
    );
    assert.equal((await runClient(hello)).code, 64 + 16); // UNAUTHENTICATED
    const line = (code: string) =>
      new RegExp(
        `DEBUG Call ended method="/helloworld\\.Greeter/SayHello" peer="127\\.0\\.0\\.1:\\d+" code="${code}" ms=\\d`,
      );
    await server.waitForLine("stderr", line("OK"));
    await server.waitForLine("stderr", line("UNAUTHENTICATED"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // At info (the default), none.
  const { process: quiet, target } = await spawnServer();
  await using _ = quiet;
  const result = await runClient([
    "you",
    "--target",
    target,
    "--mode",
    "hello",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!quiet.stderr.some((l) => l.includes("Call ended")));
});

Deno.test("greeter client --mode hello and --mode bidi", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  const hello = await runClient(["bob", "--target", target, "--mode", "hello"]);
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout, "Greeter client received: Hello, bob!\n");
  const bidi = await runClient([
    "a",
    "b",
    "c",
    "--target",
    target,
    "--mode",
    "bidi",
  ]);
  assert.equal(bidi.code, 0, bidi.stderr);
  assert.equal(
    bidi.stdout,
    ["a", "b", "c"].map((n) => `Greeter client received: Hello, ${n}!\n`)
      .join(""),
  );
});

Deno.test("greeter client exits 0 on SIGINT mid-stream and the server sees it leave", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  await using client = streamingClient(target, "carol");
  await client.waitForLine("stdout", /hello carol, it's/);
  client.child.kill("SIGINT");
  const status = await client.exit();
  assert.equal(status.code, 0, client.stderr.join("\n"));
  assert.deepEqual(client.stderr, []);
  await server.waitForLine("stderr", /client "carol" is leaving\./);
});

Deno.test("a killed client's subscription is removed by the server", async () => {
  const { process: server, target } = await spawnServer(["--interval", "50"]);
  await using _ = server;
  await using client = streamingClient(target, "dave");
  await client.waitForLine("stdout", /hello dave, it's/);
  client.child.kill("SIGKILL");
  await client.exit();
  await server.waitForLine(
    "stderr",
    // Killed: no cancel, its connection closed.
    /client "dave" is leaving\. subscription=1 peer="[^"]+" transport="grpc" reason="disconnected"/,
  );
});

Deno.test("greeter client reports an unreachable server in one line and its likely cause, and exits 64 + UNAVAILABLE", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const result = await runClient(["--target", `127.0.0.1:${port}`]);
  assert.equal(result.code, 64 + 14);
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, result.stderr);
  // Without grpc-js' timestamp and doubled "Error:".
  assert.equal(
    lines[0],
    `error: 127.0.0.1:${port}: UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:${port}`,
  );
  assert.match(lines[1], /^hint: nothing listens there: start the server/);
});

Deno.test("greeter client reports an error status and exits 64 + its code", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  const result = await runClient(["", "--target", target, "--mode", "hello"]);
  assert.equal(result.code, 64 + 3); // INVALID_ARGUMENT
  assert.match(
    result.stderr,
    /^error: 127\.0\.0\.1:\d+: INVALID_ARGUMENT: Name must not be empty/,
  );
});

Deno.test("bad command lines exit 2 with a usage hint", async () => {
  const bad = await runClient(["--count", "-3"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: [^]*\nRun with --help for usage\.\n$/);
  const mode = await runClient(["--mode", "nope"]);
  assert.equal(mode.code, 2);
  assert.match(
    mode.stderr,
    /Invalid mode "nope": expected one of stream2, stream, hello, bidi/,
  );
  const help = await runClient(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: greeter client/);
});

Deno.test("greeter serve: env settings apply, flags win, SIGTERM stops it with exit 0", async () => {
  const { process: server, target } = await spawnServer([], {
    GREETER_INTERVAL_MS: "40",
    GREETER_LOG_FORMAT: "json",
    GREETER_HOST: "0.0.0.0", // the --host 127.0.0.1 flag wins
  });
  const started = JSON.parse(server.stderr[0]);
  assert.equal(started.level, "info");
  assert.equal(started.msg, `Starting server on ${target}`);
  await using client = streamingClient(target, "eve");
  await client.waitForLine("stdout", /hello eve/);
  // JSON lines for log pipelines: one msg per kind of record, the client's
  // name and topics in fields of their own.
  const joined = server.stderr.map((l) => JSON.parse(l)).find((r) =>
    r.msg === "client subscribed."
  );
  assert.deepEqual(
    { ...joined, time: undefined, peer: undefined },
    {
      time: undefined,
      level: "info",
      msg: "client subscribed.",
      name: "eve",
      subscription: 1,
      peer: undefined,
      transport: "grpc",
      topics: ["tick"],
    },
  );
  server.child.kill("SIGTERM");
  const status = await server.exit();
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(server.stderr.some((l) => l.includes("Server stopped")));
  // The subscription stream ended with OK: the client exits 0 by itself.
  assert.equal((await client.exit()).code, 0, client.stderr.join("\n"));
});

Deno.test("greeter serve names an address it cannot bind and exits 1", async () => {
  const { process: first, port } = await spawnServer();
  await using _ = first;
  await using second = new LineProcess([
    ...taskArgs("serve"),
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
  ]);
  const status = await second.exit();
  assert.equal(status.code, 1);
  assert.ok(
    second.stderr.some((l) =>
      l.startsWith(`error: Cannot bind "127.0.0.1:${port}"`)
    ),
    second.stderr.join("\n"),
  );
});

Deno.test("greeter serve exits 0 on SIGTERM even when a peer keeps a stream stuck open", async () => {
  const { process: server, port, target } = await spawnServer([
    "--interval",
    "20",
    "--grace",
    "300",
  ]);
  await using _ = server;
  // A peer that never opens any stream window: not even the trailers that
  // end its call can be sent, and it never closes the connection.
  await using peer = await RawH2.connect(port, { initialWindowSize: 0 });
  await peer.call(
    1,
    "/helloworld.Greeter/SayHelloStreamReply",
    helloRequestFrame("p"),
  );
  // Signalling before the call reaches the hub would test an empty drain.
  await server.waitForLine("stderr", /client "p" subscribed\./);
  {
    using client = new GreeterClient(target);
    await waitFor(
      "a few ticks to queue up behind the shut window",
      async () => {
        const { subscribers } = await client.listSubscribers();
        return subscribers.some((s) => s.name === "p" && s.delivered >= 3);
      },
    );
  }
  server.child.kill("SIGTERM");
  const status = await server.exit(10_000); // SIGKILL (137) past the bound
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(
    server.stderr.some((l) => l.includes("Grace period of 300 ms over")),
    server.stderr.join("\n"),
  );
});
