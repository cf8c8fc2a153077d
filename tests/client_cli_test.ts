/**
 * `greeter client` as a person runs it: through `deno task client`, in a
 * process group of its own, piped as a shell pipes it.
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import {
  LineProcess,
  ROOT,
  runClient,
  runTask,
  spawnServer,
  spawnTask,
} from "../testing/process.ts";
import { startTestServer, waitFor } from "../testing/server.ts";
import { CuttableProxy } from "../testing/proxy.ts";

const text = new TextEncoder();
const HOUR = 3_600_000;

Deno.test("deno task client --after a cursor ahead of the server prints the events published after it", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  using publisher = new GreeterClient(t.target);
  const { cursor } = await publisher.publish("news", text.encode("one"));
  await using cli = spawnTask("client", [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
    "--after",
    `${cursor.epoch}:99999`,
    "--count",
    "1",
  ]);
  await cli.waitForLine("stdout", /^subscribed: /);
  await publisher.publish("news", text.encode("two"));
  await cli.waitForLine("stdout", /^event: .*payload="two"/);
  assert.equal((await cli.exit()).code, 0, cli.stderr.join("\n"));
  await waitFor(
    "the subscription to leave",
    () => t.logs.some((l) => l.includes("is leaving.")),
  );
});

Deno.test("deno task client … | head -2 ends once head has gone: exit 0, the server sees the subscription leave, cancelled by the client", async () => {
  await using t = await startTestServer({ intervalMs: 50 });
  const deno = JSON.stringify(Deno.execPath());
  await using shell = new LineProcess([
    "-c",
    `set -o pipefail; ${deno} task client --target ${t.target} --mode subscribe --topic tick | head -2`,
  ], { command: "bash", group: true });
  const status = await shell.exit(20_000);
  assert.equal(status.code, 0, shell.stderr.join("\n")); // the client's, too
  assert.equal(shell.stdout.length, 2);
  assert.match(shell.stdout[0], /^subscribed: /);
  await waitFor(
    "the subscription to leave",
    () => t.logs.some((l) => l.includes("is leaving.")),
  );
  // It cancelled its call: not a killed client's "disconnected".
  assert.match(
    t.logs.find((l) => l.includes("is leaving."))!,
    /reason="client-cancelled"$/,
  );
});

const ZONED = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d/;

Deno.test("deno task client --mode subscribe: full cursors, zoned times, $presence as JSON, heartbeats only with --verbose, the last cursor on Ctrl-C", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: 100,
  });
  const args = [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
    "--topic",
    "$presence",
  ];
  await using quiet = spawnTask("client", args);
  await using verbose = spawnTask("client", [...args, "--verbose"]);
  // A fresh subscription says nothing about resuming.
  const [subscribed] = await quiet.waitForLine("stdout", /^subscribed: .*/);
  assert.match(subscribed, /^subscribed: id=\d+ cursor=\w+:\d+$/);
  await verbose.waitForLine("stdout", /^subscribed: /);
  using publisher = new GreeterClient(t.target);
  const { cursor } = await publisher.publish("news", text.encode("first"));
  const [event] = await quiet.waitForLine("stdout", /^event: .*"first"$/);
  assert.match(
    event,
    new RegExp(
      `^event: cursor=${cursor.epoch}:${cursor.seq} topic=news time=${ZONED.source} latency=\\d+ms payload="first"$`,
    ),
  );
  const [heartbeat] = await verbose.waitForLine("stdout", /^heartbeat: .*/);
  assert.match(heartbeat, /^heartbeat: cursor=\w+:\d+ time=/);
  {
    await using _joiner = spawnTask("client", [
      "bob",
      "--target",
      t.target,
      "--mode",
      "subscribe",
      "--topic",
      "news",
    ]);
    const [join] = await quiet.waitForLine(
      "stdout",
      /^event: .* topic=\$presence .*"bob".*/,
    );
    const payload = JSON.parse(join.slice(join.indexOf("payload=") + 8));
    assert.equal(payload.action, "join");
    assert.equal(payload.name, "bob");
  }
  assert.ok(!quiet.stdout.some((l) => l.startsWith("heartbeat")));
  const lastEvent = quiet.stdout.findLast((l) => l.startsWith("event: "))!;
  quiet.signalGroup("SIGINT");
  assert.equal((await quiet.exit()).code, 0, quiet.stderr.join("\n"));
  // The last event's cursor, or a later heartbeat's (also a safe resume point).
  const [, epoch, seq] = lastEvent.match(/cursor=(\w+):(\d+)/)!;
  const [, lastEpoch, lastSeq] = await quiet.waitForLine(
    "stderr",
    /^last cursor: (\w+):(\d+)$/,
  );
  assert.equal(lastEpoch, epoch);
  assert.ok(Number(lastSeq) >= Number(seq), `${lastSeq} < ${seq}`);
  assert.deepEqual(
    quiet.stdout.filter((l) => l.startsWith("reconnecting")),
    [],
  );
});

Deno.test("deno task client --after says resumed, or not resumed and why, only when a resume was asked", async () => {
  await using t = await startTestServer({ intervalMs: HOUR });
  using publisher = new GreeterClient(t.target);
  const { cursor } = await publisher.publish("news", text.encode("one"));
  await publisher.publish("news", text.encode("two"));
  const resume = (after: string) =>
    runClient([
      "--target",
      t.target,
      "--mode",
      "subscribe",
      "--topic",
      "news",
      "--after",
      after,
      "--count",
      "1",
    ]);
  const resumed = await resume(`${cursor.epoch}:${cursor.seq}`);
  assert.equal(resumed.code, 0, resumed.stderr);
  const lines = resumed.stdout.trim().split("\n");
  assert.match(lines[0], /^subscribed: id=\d+ cursor=\w+:1 resumed$/);
  assert.match(lines[1], /^event: cursor=\w+:2 .*payload="two"$/);
  await using elsewhere = spawnTask("client", [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--after",
    "0123456789abcdef:1",
  ]);
  await elsewhere.waitForLine(
    "stdout",
    /^subscribed: id=\d+ cursor=\w+:\d+ not resumed \(cursor epoch "0123456789abcdef" is not the server's.*\)$/,
  );
});

Deno.test("deno task client --output json prints one JSON object per message, and a bad command line as one too", async () => {
  await using t = await startTestServer({ intervalMs: HOUR });
  await using cli = spawnTask("client", [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
    "--count",
    "2",
    "--output",
    "json",
  ]);
  await cli.waitForLine("stdout", /"kind":"subscribed"/);
  using publisher = new GreeterClient(t.target);
  const { cursor } = await publisher.publish("news", text.encode("one"));
  await publisher.publish("news", new Uint8Array([0xff, 0]));
  assert.equal((await cli.exit()).code, 0, cli.stderr.join("\n"));
  const objects = cli.stdout.filter((l) => l).map((l) => JSON.parse(l));
  assert.deepEqual(objects.map((o) => o.kind), [
    "subscribed",
    "event",
    "event",
  ]);
  assert.equal(objects[0].resumed, undefined); // none was asked
  assert.equal(objects[1].cursor, `${cursor.epoch}:${cursor.seq}`);
  assert.equal(objects[1].topic, "news");
  assert.equal(objects[1].payload, "one");
  assert.match(objects[1].time, ZONED);
  assert.deepEqual(objects[2].payload, { base64: "/wA=" });
  const presence = await runClient([
    "--target",
    t.target,
    "--mode",
    "presence",
    "--output",
    "json",
  ]);
  assert.equal(presence.code, 0, presence.stderr);
  assert.deepEqual(JSON.parse(presence.stdout), { kind: "total", total: 0 });
  // A bad command line is a JSON line too when JSON was asked for: a
  // typo'd flag, as a script's author makes it.
  const typo = await runClient([
    "--mode",
    "publish",
    "--topik",
    "news",
    "--output",
    "json",
  ]);
  assert.equal(typo.code, 2);
  assert.equal(typo.stdout, "");
  assert.deepEqual(JSON.parse(typo.stderr), {
    kind: "error",
    message: 'Unknown option "--topik"; did you mean "--topic"?',
    exit_code: 2,
  });
});

Deno.test("deno task client escapes C1 controls, bidi overrides and invisible characters from payloads", async () => {
  await using t = await startTestServer({ intervalMs: HOUR });
  await using cli = spawnTask("client", [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
    "--count",
    "1",
  ]);
  await cli.waitForLine("stdout", /^subscribed: /);
  using publisher = new GreeterClient(t.target);
  await publisher.publish(
    "news",
    text.encode("a\u009b31mb\u202ec\u200bd\u2066e\u001b[2Jf\u007f"),
  );
  assert.equal((await cli.exit()).code, 0, cli.stderr.join("\n"));
  const [event] = cli.stdout.filter((l) => l.startsWith("event: "));
  assert.ok(
    event.endsWith(
      String.raw`payload="a\u009b31mb\u202ec\u200bd\u2066e\u001b[2Jf\u007f"`,
    ),
    event,
  );
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(event, /[\u0000-\u001f\u007f-\u009f\u200b\u202e\u2066]/);
});

Deno.test("deno task client refuses to send a token in plaintext beyond loopback, unless told to", async () => {
  const env = { GREETER_TOKEN: "secret-token-1234" };
  const args = ["--mode", "hello", "--target", "greeter.invalid:50051"];
  const refused = await runClient(args, 20_000, env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(
    refused.stderr,
    /^error: Refusing to send the bearer token in plaintext to "greeter\.invalid:50051": .*--allow-plaintext-token/,
  );
  // Allowed, it goes on to the call (which finds no such host).
  const allowed = await runClient(
    [...args, "--allow-plaintext-token"],
    20_000,
    env,
  );
  assert.equal(allowed.code, 64 + 14, allowed.stderr); // UNAVAILABLE
  assert.match(allowed.stderr, /^error: greeter\.invalid:50051: UNAVAILABLE/);
  // No token, nothing to protect.
  const tokenless = await runClient(args);
  assert.equal(tokenless.code, 64 + 14, tokenless.stderr);
});

Deno.test("deno task client sends a token to a loopback target directly, never through a proxy named in its environment", async () => {
  await using t = await startTestServer();
  // A proxy that counts who comes to it (and sends them away).
  await using proxy = new CuttableProxy({ hostname: "127.0.0.1", port: 1 });
  proxy.refusing = true;
  const url = `http://${proxy.target}`;
  for (const target of [t.target, `localhost:${t.server.port}`]) {
    await using cli = spawnTask(
      "client",
      ["--mode", "hello", "--target", target, "you"],
      {
        GREETER_TOKEN: "secret-token-1234",
        grpc_proxy: url,
        https_proxy: url,
        http_proxy: url,
      },
    );
    const status = await cli.exit(20_000);
    assert.equal(status.code, 0, cli.stderr.join("\n"));
    assert.deepEqual(cli.stdout, ["Greeter client received: Hello, you!"]);
  }
  assert.equal(proxy.accepted, 0, "the token went to the proxy");
});

Deno.test("deno task client --mode publish --idempotency-key: the same key again is the same event, answered with its cursor; a subscriber gets it once", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  await using subscriber = spawnTask("client", [
    "you",
    "--target",
    target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
  ]);
  await subscriber.waitForLine("stdout", /^subscribed: /);
  const publishAs = (payload: string, key: string) =>
    runClient([
      "--target",
      target,
      "--mode",
      "publish",
      "--topic",
      "news",
      "--payload",
      payload,
      "--idempotency-key",
      key,
    ]);
  const publish = async (payload: string, key: string) => {
    const result = await publishAs(payload, key);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  const first = await publish("one", "7c9e6679-7425-40de");
  assert.match(first, /^published: topic=news cursor=\S+:\d+\n$/);
  // A retry (the reply lost, say): the same event, not a second one.
  assert.equal(await publish("one", "7c9e6679-7425-40de"), first);
  const other = await publish("two", "7c9e6679-7425-40df");
  assert.notEqual(other, first);
  await subscriber.waitForLine("stdout", /payload="two"/);
  const payloads = subscriber.stdout.filter((l) => l.startsWith("event: "))
    .map((l) => l.match(/payload="(.*)"$/)?.[1]);
  assert.deepEqual(payloads, ["one", "two"]);
  // A key that is no key is refused, quoted escaped.
  const bad = await publishAs("x", "has space");
  assert.equal(bad.code, 64 + 3); // INVALID_ARGUMENT
  assert.match(
    bad.stderr,
    /INVALID_ARGUMENT: Invalid idempotency key "has space": use 1 to 128 printable ASCII characters/,
  );
});

/** A loopback port nothing listens on (one just closed). */
function deadTarget(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return `127.0.0.1:${port}`;
}

Deno.test("a target list in GREETER_TARGET is tried in order by every mode: a target that is not there is said on stderr, the next one answers", async () => {
  await using t = await startTestServer({ intervalMs: 200, heartbeatMs: HOUR });
  const dead = deadTarget();
  const env = { GREETER_TARGET: `${dead},${t.target}` };
  for (
    const [args, printed] of [
      [
        ["--mode", "publish", "--topic", "news", "--payload", "x"],
        /^published: /,
      ],
      [["--mode", "presence"], /^0 subscribers$/m],
      [["you", "--mode", "hello"], /^Greeter client received: Hello, you!$/m],
      [["you", "--mode", "stream", "--count", "1"], /hello you, it's/],
      [["a", "b", "--mode", "bidi"], /Hello, b!/],
      [
        ["you", "--mode", "subscribe", "--topic", "tick", "--count", "1"],
        /^event: /m,
      ],
    ] as const
  ) {
    const result = await runClient([...args], 20_000, env);
    assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stdout, printed, args.join(" "));
    if (!(args as readonly string[]).includes("subscribe")) {
      assert.match(
        result.stderr,
        new RegExp(`^trying ${t.target}: ${dead}: UNAVAILABLE: `),
        args.join(" "),
      );
    }
  }
  // None there: the last one's failure.
  const none = await runClient(["--mode", "hello"], 20_000, {
    GREETER_TARGET: `${dead},${deadTarget()}`,
  });
  assert.equal(none.code, 64 + 14);
  assert.match(none.stderr, /UNAVAILABLE/);
});

Deno.test("deno task client --from first, last:N, a time or how long ago starts with the events held, printed as replayed, then goes on live", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  using publisher = new GreeterClient(t.target);
  const since = new Date(Date.now() - 60_000).toISOString();
  let n = 0;
  for (
    const [from, expected] of [
      ["first", ["one", "two", "three"]],
      ["last:2", ["two", "three"]],
      [since, ["one", "two", "three"]],
      ["5m", ["one", "two", "three"]],
    ] as const
  ) {
    const topic = `news.${n++}`; // its own three events, and others' between
    for (const payload of ["one", "two", "three"]) {
      await publisher.publish(topic, text.encode(payload));
      await publisher.publish("other", text.encode("not for it"));
    }
    await using cli = spawnTask("client", [
      "you",
      "--target",
      t.target,
      "--mode",
      "subscribe",
      "--topic",
      topic,
      "--from",
      from,
      "--count",
      String(expected.length + 1),
    ]);
    await cli.waitForLine("stdout", /payload="three"/);
    await publisher.publish(topic, text.encode("live"));
    assert.equal((await cli.exit()).code, 0, cli.stderr.join("\n"));
    const events = cli.stdout.filter((l) => l.startsWith("event: "));
    assert.deepEqual(
      events.map((l) => l.match(/payload="(.*)"$/)?.[1]),
      [...expected, "live"],
      from,
    );
    // What was held is replayed, not late: its age is no latency.
    for (const line of events.slice(0, -1)) {
      assert.match(line, / replayed payload=/, line);
    }
    assert.match(events.at(-1)!, / latency=\d+ms payload="live"$/);
  }
  const both = await runClient([
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--from",
    "first",
    "--after",
    "0123456789abcdef:1",
  ]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--after and --from say the same thing twice/);
  const bad = await runClient(["--mode", "subscribe", "--from", "10:00"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid --from "10:00": expected first, last:N/);
});

Deno.test("deno task client --payload-file publishes a file's bytes or stdin's as they are, binary too", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  using reader = new GreeterClient(t.target);
  const stream = reader.subscribe("r", { topics: ["bin"] });
  assert.equal((await stream.next()).value?.kind, "subscribed");
  const bytes = new Uint8Array([0, 1, 0xff, 0x0a, 0xc3]); // not UTF-8
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/payload.bin`, bytes);
    // A file, named relative to where deno task runs.
    const fromFile = await runTask(
      "client",
      [
        "--target",
        t.target,
        "--mode",
        "publish",
        "--topic",
        "bin",
        "--payload-file",
        "payload.bin",
      ],
      { cwd: dir },
    );
    assert.equal(fromFile.code, 0, fromFile.stderr);
    // stdin, piped as a shell pipes it.
    const piped = new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "-q",
        "client",
        "--target",
        t.target,
        "--mode",
        "publish",
        "--topic",
        "bin",
        "--payload-file",
        "-",
      ],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    const writer = piped.stdin.getWriter();
    await writer.write(bytes);
    await writer.close();
    const out = await piped.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    for (let i = 0; i < 2; i++) {
      const event = (await stream.next()).value;
      assert.ok(event?.kind === "event", `event ${i}`);
      assert.deepEqual([...event.payload], [...bytes]);
    }
    const missing = await runTask(
      "client",
      [
        "--target",
        t.target,
        "--mode",
        "publish",
        "--topic",
        "bin",
        "--payload-file",
        "nope.bin",
      ],
      { cwd: dir },
    );
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      new RegExp(
        // The file's fault, not the command line's: no "Run with --help".
        `^error: Cannot read payload file "${dir}/nope.bin": No such file or directory\\n$`,
      ),
    );
  } finally {
    await stream.return(undefined);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task client --mode stream-info prints the stream's epoch, first and last seq, events and bytes held, without subscribing", async () => {
  await using t = await startTestServer({
    intervalMs: HOUR,
    heartbeatMs: HOUR,
  });
  using publisher = new GreeterClient(t.target);
  await publisher.publish("news", text.encode("one"));
  await publisher.publish("news", text.encode("two"));
  const info = await runClient([
    "--target",
    t.target,
    "--mode",
    "stream-info",
  ]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(
    info.stdout,
    new RegExp(
      `^stream: epoch=${t.server.hub.epoch} store=memory first=1 last=2 events=2 bytes=\\d+ first_time="[^"]+" last_time="[^"]+"\\n$`,
    ),
  );
  const json = await runClient([
    "--target",
    t.target,
    "--mode",
    "stream-info",
    "--output",
    "json",
  ]);
  const state = JSON.parse(json.stdout);
  assert.equal(state.kind, "stream");
  assert.equal(state.last_seq, 2);
  assert.equal(state.events, 2);
  assert.equal(t.server.hub.size, 0); // nobody subscribed
});
