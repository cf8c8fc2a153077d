// The seed's own Python code is the foreign peer (see testing/python.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import {
  LineProcess,
  runClient,
  spawnServer,
  spawnTask,
} from "../testing/process.ts";
import { PYTHON, pythonGrpcMissing, seedProgram } from "../testing/python.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";

const missing = pythonGrpcMissing();
if (missing) {
  console.warn(
    `python_compat_test.ts ignored: ${missing} (apt-get install python3-grpcio python3-grpc-tools)`,
  );
}

/** Runs the seed's client against `target` and checks every line it prints. */
async function seedClientAgainst(target: string): Promise<void> {
  const dir = await seedProgram(
    "async_greeter_client.py",
    "localhost:50051",
    target,
  );
  try {
    const out = await new Deno.Command(PYTHON, {
      args: [join(dir, "async_greeter_client.py"), "hello"],
      cwd: dir,
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    // Python's print(label, empty_message) leaves a trailing space.
    assert.deepEqual(stdout.split("\n").map((l) => l.trimEnd()), [
      "Greeter client received: Hello, hello!",
      "firstGreetingMessage received:",
      ...Array(5).fill("timerGreetingMessage received:"),
      "goodbyeGreetingMessage received:",
      "",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "the seed's Python client works unchanged against our server",
  ignore: missing !== undefined,
  async fn() {
    const { process: server, target } = await spawnServer(["--interval", "50"]);
    await using _ = server;
    await seedClientAgainst(target);
  },
});

Deno.test({
  name:
    "the seed's Python clients work unchanged against a server over two workers",
  ignore: missing !== undefined,
  async fn() {
    const { process: server, target } = await spawnServer([
      "--interval",
      "50",
      "--workers",
      "2",
    ]);
    await using _ = server;
    // Each its own connection: the kernel spreads them over the workers.
    await Promise.all([0, 1, 2, 3].map(() => seedClientAgainst(target)));
  },
});

Deno.test({
  name:
    "the seed's Python client works unchanged against either of two instances on one NATS stream",
  ignore: missing !== undefined || natsServerMissing() !== undefined,
  async fn() {
    await using nats = await startNatsServer();
    const args = ["--interval", "50", "--broker", nats.url];
    const a = await spawnServer(args);
    await using _a = a.process;
    const b = await spawnServer(args);
    await using _b = b.process;
    await Promise.all([
      seedClientAgainst(a.target),
      seedClientAgainst(b.target),
    ]);
  },
});

Deno.test({
  name: "our client works against the seed's Python server",
  ignore: missing !== undefined,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr;
    listener.close();
    const target = `127.0.0.1:${port}`;
    const dir = await seedProgram(
      "async_greeter_server.py",
      '"[::]:50051"',
      `"${target}"`,
    );
    try {
      await using seed = new LineProcess([
        join(dir, "async_greeter_server.py"),
      ], { command: PYTHON, cwd: dir, env: { PYTHONUNBUFFERED: "1" } });
      await seed.waitForLine("stderr", /Starting server on/);
      const stream2 = await runClient(["you", "--target", target]);
      assert.equal(stream2.code, 0, stream2.stderr);
      assert.equal(
        stream2.stdout,
        [
          "Greeter client received: Hello, you!",
          "firstGreetingMessage received:",
          ...Array(5).fill("timerGreetingMessage received:"),
          "goodbyeGreetingMessage received:",
          "",
        ].join("\n"),
      );
      const stream = await runClient([
        "you",
        "--target",
        target,
        "--mode",
        "stream",
        "--count",
        "2",
      ]);
      assert.equal(stream.code, 0, stream.stderr);
      assert.match(
        stream.stdout,
        /^Greeter client received: Hello, you!\n(Greeter client received: hello you, it's \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n){2}$/,
      );
      // The seed notices a client leaving only when the cancel finds its
      // generator waiting for the next tick: one arriving while grpc.aio
      // still sends a tick (right after the --count 2 client got its last)
      // closes the generator at its yield, and the seed prints nothing
      // (seen twice in CI). So a client is stopped as a person would, by
      // Ctrl-C, half a tick after its first tick.
      await using follower = spawnTask("client", [
        "me",
        "--target",
        target,
        "--mode",
        "stream",
      ]);
      await follower.waitForLine("stdout", /hello me, it's/);
      await delay(500);
      follower.signalGroup("SIGINT");
      assert.equal((await follower.exit(20_000)).code, 0);
      await seed.waitForLine("stdout", /client me is leaving\./);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
