import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import {
  LineProcess,
  runClient,
  spawnServer,
  taskArgs,
} from "../testing/process.ts";
import http2 from "node:http2";
import { helloRequestFrame } from "../testing/server.ts";

const text = new TextEncoder();

for (const workers of [1, 2]) {
  Deno.test(`SIGTERM drains: subscribers get Goodbye then OK, the process exits 0 within its grace (workers: ${workers})`, async () => {
    const { process: server, target } = await spawnServer([
      "--grace",
      "20000",
      "--workers",
      String(workers),
    ]);
    await using _ = server;
    // Connections of their own: over workers, each lands where the kernel says.
    const clients = ["a", "b", "c", "d"].map(() =>
      new GreeterClient(target, {
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      })
    );
    try {
      const streams = clients.map((client, i) => client.subscribe(`s${i}`));
      for (const stream of streams) {
        assert.equal((await stream.next()).value?.kind, "subscribed");
      }
      server.child.kill("SIGTERM");
      for (const stream of streams) {
        const goodbye = (await stream.next()).value;
        assert.equal(goodbye?.kind, "goodbye");
        assert.equal(goodbye.code, 14);
        assert.equal(goodbye.reconnect, true);
        assert.equal((await stream.next()).done, true); // ended with OK
      }
      const status = await server.exit(15_000); // far below the 20 s grace
      assert.equal(status.code, 0);
      assert.ok(server.stderr.some((l) => l.includes("Server stopped")));
      assert.ok(!server.stderr.some((l) => l.includes("Grace period")));
    } finally {
      for (const client of clients) client.close();
    }
  });
}

Deno.test("a second signal, a second or more after the first, forces the shutdown at once", async () => {
  const { process: server, target } = await spawnServer(["--grace", "600000"]);
  await using _ = server;
  // A bidi call its caller never half-closes holds the graceful drain open.
  const session = http2.connect(`http://${target}`);
  try {
    const call = session.request({
      ":method": "POST",
      ":path": "/helloworld.Greeter/SayHelloBidiStream",
      "content-type": "application/grpc",
      te: "trailers",
    });
    call.on("error", () => {});
    const replied = new Promise((resolve) => call.once("data", resolve));
    call.write(helloRequestFrame("open"));
    await replied;
    server.child.kill("SIGTERM");
    await server.waitForLine("stderr", /Shutting down/);
    // Sooner, it would be taken as the first one delivered twice.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    server.child.kill("SIGTERM");
    const status = await server.exit(15_000); // not the 10-minute grace
    assert.equal(status.code, 130);
    assert.ok(!server.stderr.some((l) => l.includes("Server stopped")));
  } finally {
    session.destroy();
  }
});

Deno.test("the CLI subscriber reconnects after a server restart, says it did not recover, never repeats", async () => {
  const first = await spawnServer(["--reconnect-jitter", "200"]);
  const port = first.port;
  await using cli = new LineProcess([
    ...taskArgs("client"),
    "--target",
    first.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
  ]);
  await cli.waitForLine("stdout", /^subscribed: id=\d+ cursor=\w+:\d+/);
  {
    using publisher = new GreeterClient(first.target);
    await publisher.publish("news", text.encode("one"));
  }
  await cli.waitForLine("stdout", /payload="one"/);
  first.process.child.kill("SIGTERM");
  assert.equal((await first.process.exit()).code, 0);
  await first.process[Symbol.asyncDispose]();
  await cli.waitForLine("stdout", /^goodbye: code=14 .*reconnect after \d+ ms/);

  const second = await spawnServer(["--port", String(port)]);
  await using _ = second.process;
  await cli.waitForLine(
    "stdout",
    /^subscribed: .* not resumed \(cursor epoch "\w+" is not the server's/,
  );
  using publisher = new GreeterClient(second.target);
  await publisher.publish("news", text.encode("two"));
  await cli.waitForLine("stdout", /payload="two"/);
  cli.child.kill("SIGINT");
  assert.equal((await cli.exit()).code, 0);
  const events = cli.stdout.filter((l) => l.startsWith("event:"));
  assert.deepEqual(
    events.map((l) => l.match(/payload="(\w+)"/)?.[1]),
    ["one", "two"],
  );
  // Reconnects are about the client, not messages: stderr, not stdout.
  assert.ok(cli.stderr.some((l) => l.startsWith("reconnecting in ")));
  assert.ok(!cli.stdout.some((l) => l.startsWith("reconnecting in ")));
});

Deno.test("the CLI subscriber stops after --count events and exits 0", async () => {
  const { process: server, target } = await spawnServer(["--interval", "20"]);
  await using _ = server;
  const result = await runClient([
    "--target",
    target,
    "--mode",
    "subscribe",
    "--topic",
    "tick",
    "--count",
    "3",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.match(lines[0], /^subscribed: /);
  const events = lines.filter((l) => l.startsWith("event: "));
  assert.equal(events.length, 3);
  const seqs = events.map((l) => Number(l.match(/cursor=\w+:(\d+) /)![1]));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
});
