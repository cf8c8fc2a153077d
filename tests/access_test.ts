import assert from "node:assert/strict";
import {
  GreeterClient,
  type SubscriptionMessage,
} from "../lib/client/client.ts";
import { ConfigError, type RpcError } from "../lib/errors.ts";
import { AccessControl } from "../lib/access/access.ts";
import { PeerGuard } from "../lib/access/peer_guard.ts";
import { AccessList, Permissions } from "../lib/access/permissions.ts";
import { Logger } from "../lib/log.ts";
import {
  runClient,
  runTask,
  spawnServer,
  spawnTask,
} from "../testing/process.ts";
import { spawnServeGroup } from "../testing/process_group.ts";
import { settles, startTestServer, waitFor } from "../testing/server.ts";
import * as grpc from "@grpc/grpc-js";
import { loadGreeterProto } from "../lib/wire/proto.ts";

const FULL = "full-0123456789abcdef";
const PUBLISHER = "publisher-0123456789abcdef";
const READER = "reader-0123456789abcdef";
const LINES = [
  FULL,
  `${PUBLISHER} publish:news.>`,
  `${READER} subscribe:news.* subscribe:$presence`,
];

/** A token file holding `text` (mode 600) in a directory of its own, removed on disposal. */
async function tokenFile(text: string) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tokens.txt`;
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

const denied = (topic: string, needs: string) => (error: RpcError) =>
  error.code === "PERMISSION_DENIED" &&
  error.message.includes(`on topic "${topic}": this token lacks "${needs}"`);

Deno.test("Permissions.parse() reads publish:, subscribe: and metrics grants", () => {
  const p = Permissions.parse(["publish:news.>", "subscribe:a.*", "metrics"]);
  assert.equal(p.all, false);
  assert.equal(p.mayPublish("news.x"), true);
  assert.equal(p.mayPublish("news"), false);
  assert.equal(p.maySubscribe("a.b"), true);
  assert.equal(p.maySubscribe("a.*"), true);
  assert.equal(p.maySubscribe("a.>"), false);
  assert.equal(p.maySubscribe("*"), false);
  assert.equal(p.metrics, true);
  assert.equal(Permissions.parse([]).all, true);
  assert.equal(Permissions.parse(["subscribe:>"]).maySubscribe("*"), true);
  // As in NATS: a lone "*" is one token, a lone ">" every ordinary topic.
  const star = Permissions.parse(["subscribe:*", "publish:*"]);
  assert.equal(star.maySubscribe("news"), true);
  assert.equal(star.maySubscribe("news.sport.today"), false);
  assert.equal(star.maySubscribe("*"), false); // every topic: needs ">"
  assert.equal(star.mayPublish("news"), true);
  assert.equal(star.mayPublish("news.sport"), false);
  assert.equal(Permissions.parse(["publish:>"]).mayPublish("news.a.b"), true);
  assert.equal(
    Permissions.parse(["subscribe:>"]).maySubscribe("$presence"),
    false,
  );
});

Deno.test("AccessList names a bad grant's line and word, never its token", () => {
  for (
    const [line, message] of [
      [
        "s3cret-token publish",
        /Token line 2: Invalid permission "publish": expected publish:PATTERN, subscribe:PATTERN or metrics/,
      ],
      [
        // Not written as a grant: it may be a secret, so only its place.
        "s3cret-token pub:news",
        /Token line 2: word 1 after the token is not a grant \(expected publish:PATTERN, subscribe:PATTERN or metrics\)/,
      ],
      [
        "s3cret-token publish:news.>.x",
        /Token line 2: Invalid permission "publish:news\.>\.x": Invalid topic pattern/,
      ],
    ] as const
  ) {
    assert.throws(
      () => new AccessList(["ok", line]),
      (e: Error) =>
        e instanceof ConfigError && message.test(e.message) &&
        !e.message.includes("s3cret") && !e.message.includes("pub:news"),
    );
  }
});

Deno.test("a token's grants decide its calls: PERMISSION_DENIED names the topic and the missing grant", async () => {
  await using t = await startTestServer({
    intervalMs: 3_600_000,
    heartbeatMs: 3_600_000,
    tokens: LINES,
  });
  using full = new GreeterClient(t.target, { token: FULL });
  using publisher = new GreeterClient(t.target, { token: PUBLISHER });
  using reader = new GreeterClient(t.target, { token: READER });

  // Calls that touch no topic: any accepted token.
  assert.equal(await publisher.sayHello("p"), "Hello, p!");
  assert.equal(await reader.sayHello("r"), "Hello, r!");

  // The reader may subscribe to what its grants cover, and list presence.
  const stream = reader.subscribe("r", { topics: ["news.*"] });
  assert.equal((await stream.next()).value?.kind, "subscribed");
  assert.equal((await reader.listSubscribers()).total, 1);
  await assert.rejects(
    reader.subscribe("r", { topics: ["news.>"] }).next(),
    denied("news.>", "subscribe:news.>"),
  );
  await assert.rejects(
    reader.subscribe("r").next(),
    denied(">", "subscribe:>"),
  );
  await assert.rejects(
    reader.streamReply("r").next(),
    denied("tick", "subscribe:tick"),
  );
  await assert.rejects(
    reader.publish("news.a", new Uint8Array([1])),
    denied("news.a", "publish:news.a"),
  );

  // The publisher publishes under news. only, and cannot read.
  await publisher.publish("news.a", new TextEncoder().encode("x"));
  const event = (await stream.next()).value;
  assert.equal(event?.kind === "event" && event.topic, "news.a");
  await assert.rejects(
    publisher.publish("weather", new Uint8Array()),
    denied("weather", "publish:weather"),
  );
  await assert.rejects(
    publisher.listSubscribers(),
    denied("$presence", "subscribe:$presence"),
  );
  await assert.rejects(
    publisher.subscribe("p", { topics: ["news.a"] }).next(),
    denied("news.a", "subscribe:news.a"),
  );
  assert.equal(t.server.hub.size, 1); // no refused subscription got in

  // The stream's state is operations' business, as /metrics is.
  await assert.rejects(
    reader.streamInfo(),
    (error: RpcError) =>
      error.code === "PERMISSION_DENIED" &&
      error.message.includes(
        'Permission denied for /helloworld.Greeter/StreamInfo: this token lacks "metrics"',
      ),
  );
  assert.equal((await full.streamInfo()).epoch, t.server.hub.epoch);

  // A token alone may do everything.
  await full.publish("weather", new Uint8Array());
  assert.equal((await full.listSubscribers()).total, 1);
  await stream.return(undefined);

  // Refusals: logged at warn, at most once per peer per 10 s, no token.
  const refusals = t.logs.filter((l) => l.includes("Refused a call"));
  assert.equal(refusals.length, 1, refusals.join("\n"));
  assert.match(
    refusals[0],
    /WARN Refused a call: permission denied method="\/helloworld\.Greeter\/Subscribe" peer="127\.0\.0\.1:\d+" topic="news\.>" needs="subscribe:news\.>"/,
  );
  for (const token of [FULL, PUBLISHER, READER]) {
    assert.ok(!t.logs.some((l) => l.includes(token)));
  }
  assert.match(
    t.server.metrics.render(),
    /greeter_rpcs_total\{transport="grpc",method="\/helloworld\.Greeter\/Publish",code="PERMISSION_DENIED"\} 2/,
  );
});

Deno.test("a peer whose bad tokens come too fast has them answered in short, and its valid token still passes", async () => {
  const logs: string[] = [];
  const time = { now: 1_000_000 };
  const access = new AccessControl([FULL], {
    log: new Logger({ write: (l) => logs.push(l) }),
    guard: new PeerGuard({ now: () => time.now }),
  });
  await using t = await startTestServer({ access });
  using wrong = new GreeterClient(t.target, { token: "guess" });
  using right = new GreeterClient(t.target, { token: FULL });
  for (let i = 0; i < 11; i++) {
    await assert.rejects(
      wrong.sayHello("x"),
      (e: RpcError) =>
        e.code === "UNAUTHENTICATED" && /Missing or invalid/.test(e.message),
    );
  }
  // Its bad tokens now get the short answer; the right one is never refused.
  assert.equal(await right.sayHello("x"), "Hello, x!");
  await assert.rejects(
    wrong.sayHello("x"),
    (e: RpcError) =>
      e.code === "UNAUTHENTICATED" &&
      /too many failed authentications from 127\.0\.0\.1: refused in short for 10 s more \(a valid token still passes\)/
        .test(e.message),
  );
  assert.equal(await right.sayHello("x"), "Hello, x!");
  assert.equal(
    logs.filter((l) =>
      l.includes("WARN Too many failed authentications") &&
      l.includes('peer="127.0.0.1"')
    ).length,
    1,
  );
  assert.equal(logs.filter((l) => l.includes("Refused a call")).length, 1);
  time.now += 10_001;
  await assert.rejects(
    wrong.sayHello("x"),
    (e: RpcError) => /Missing or invalid bearer token for/.test(e.message),
  );
  await waitFor(
    "nothing logged with a token",
    () => !logs.some((l) => l.includes(FULL) || l.includes("guess")),
  );
});

Deno.test("a flood of bad tokens from one address locks out neither a valid token from it nor /metrics scrapes with one", async () => {
  await using tokens = await tokenFile(`${FULL}\n${READER} metrics\n`);
  const file = tokens.path;
  const { process: server, target } = await spawnServer([
    "--token-file",
    file,
    "--metrics-port",
    "0",
  ]);
  await using _ = server;
  const [, metricsPort] = await server.waitForLine(
    "stderr",
    /Metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/,
  );
  const scrape = async (token: string) => {
    const response = await fetch(
      `http://127.0.0.1:${metricsPort}/metrics`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    await response.body?.cancel();
    return response.status;
  };
  using stranger = new GreeterClient(target, { token: "guess-1" });
  using valid = new GreeterClient(target, { token: FULL });
  // 40 bad tokens on gRPC and 40 on /metrics, well over 10 a second.
  for (let i = 0; i < 40; i++) {
    await assert.rejects(
      stranger.sayHello("x"),
      (e: RpcError) => e.code === "UNAUTHENTICATED",
    );
    assert.equal(await scrape(`guess-${i}`), 401);
  }
  await server.waitForLine("stderr", /WARN Too many failed authentications/);
  assert.equal(await valid.sayHello("x"), "Hello, x!");
  assert.equal(await scrape(READER), 200);
  assert.equal(
    (await runClient(["x", "--target", target, "--mode", "hello"], 20_000, {
      GREETER_TOKEN: FULL,
    })).code,
    0,
  );
});

Deno.test("client --mode subscribe retries UNAUTHENTICATED with its backoff and says so, and gets in once a reload takes its token", async () => {
  await using tokens = await tokenFile(`${FULL}\n`);
  const file = tokens.path;
  const { group, target } = await spawnServeGroup(["--token-file", file]);
  await using _ = group;
  await using client = spawnTask(
    "client",
    ["you", "--target", target, "--mode", "subscribe", "--topic", "news"],
    { GREETER_TOKEN: READER },
  );
  await client.waitForLine(
    "stderr",
    /reconnecting in \d+ ms \(attempt 1\): 127\.0\.0\.1:\d+: UNAUTHENTICATED: .*\(retry 1 of 6 after UNAUTHENTICATED: the token may be being rotated\)/,
  );
  // The rotation reaches the server: the client's token is accepted now.
  await Deno.writeTextFile(file, `${FULL}\n${READER} subscribe:news\n`);
  group.signal("SIGHUP");
  await client.waitForLine("stdout", /^subscribed: /, 30_000);
});

Deno.test("AccessControl.replace() puts a new list in force and keeps the old one when the new is bad", async () => {
  const access = new AccessControl([FULL], {
    log: new Logger({ write: () => {} }),
  });
  await using t = await startTestServer({ access });
  using old = new GreeterClient(t.target, { token: FULL });
  using next = new GreeterClient(t.target, { token: READER });
  assert.equal(await old.sayHello("x"), "Hello, x!");
  assert.throws(() => access.replace([`${READER} nonsense`]), ConfigError);
  assert.equal(await old.sayHello("x"), "Hello, x!");
  access.replace([READER]);
  assert.equal(await next.sayHello("x"), "Hello, x!");
  await assert.rejects(
    old.sayHello("x"),
    (e: RpcError) => e.code === "UNAUTHENTICATED",
  );
});

Deno.test("SIGHUP to deno task serve's process group reloads the token file; a bad file keeps the old tokens", async () => {
  await using tokens = await tokenFile(`${FULL}\n`);
  const file = tokens.path;
  const { group, target } = await spawnServeGroup(["--token-file", file]);
  await using _ = group;
  const server = group.process;
  const hello = (token: string) =>
    runClient(["x", "--target", target, "--mode", "hello"], 20_000, {
      GREETER_TOKEN: token,
    });
  assert.equal((await hello(FULL)).code, 0);
  assert.equal((await hello(READER)).code, 64 + 16); // UNAUTHENTICATED

  // Rotation: the new token works, the old one no longer does.
  await Deno.writeTextFile(file, `${READER} subscribe:news.*\n`);
  group.signal("SIGHUP");
  await server.waitForLine(
    "stderr",
    /INFO Token file reloaded \(1 accepted\)/,
  );
  assert.equal((await hello(READER)).code, 0);
  const old = await hello(FULL);
  assert.equal(old.code, 64 + 16);
  assert.match(old.stderr, /UNAUTHENTICATED/);

  // A bad file: the tokens in force stay, and the log says why, naming
  // the line as an editor numbers it (comments and blank lines counted).
  await Deno.writeTextFile(
    file,
    `# rotated by ops\n\n# the reader\n${READER}\n${FULL} publish\n`,
  );
  group.signal("SIGHUP");
  await server.waitForLine(
    "stderr",
    /WARN Token file not reloaded: the 1 tokens read before stay in force error="Token file \\".*\\": Token line 5: Invalid permission \\"publish\\"/,
  );
  assert.equal((await hello(READER)).code, 0);
  assert.ok(
    !server.stderr.some((l) => l.includes(FULL) || l.includes(READER)),
  );
  // SIGHUP no longer ends the server (it exited 129, without a drain).
  assert.ok(!server.stderr.some((l) => l.includes("Shutting down")));
});

/** The secrets of the token lines below: none may ever be printed. */
const SECRET = "s3cret-0123456789abcdef";
const NEXT_SECRET = "n3xt-0123456789abcdef";

/** Token files a person gets wrong, and what serve must say of each. */
const BAD_TOKEN_FILES: [string, string, RegExp][] = [
  [
    "grants before the token",
    `${FULL}\npublish:news.> ${SECRET}\n`,
    /Token line 2 starts with a grant \(publish…\) where its token should be: write the token first/,
  ],
  [
    "two tokens on a line (a rotation)",
    `${FULL}\n${SECRET} ${NEXT_SECRET}\n`,
    /Token line 2: word 1 after the token is not a grant .*a line holds one token: put a second one on a line of its own/,
  ],
  [
    "a bad grant under comments (the line an editor shows)",
    `# rotated by ops\n\n# the feed\n${FULL}\n${SECRET} publish\n`,
    // Quoted as it is at start, escaped in the reload warning's field.
    /Token file \\?".*\\?": Token line 5: Invalid permission \\?"publish\\?"/,
  ],
  [
    "a line of grants alone (a wrapped line)",
    `${SECRET} publish:news.>\nsubscribe:news.sport.today\n`,
    /Token line 2 starts with a grant \(subscribe…\) where its token should be/,
  ],
];

Deno.test("serve refuses a token file whose line starts with grants, holds two tokens or grants alone, naming the line and never a secret", async () => {
  await using tokens = await tokenFile("");
  const file = tokens.path;
  for (const [what, text, message] of BAD_TOKEN_FILES) {
    await Deno.writeTextFile(file, text);
    const result = await runTask("serve", [
      "--port",
      "0",
      "--token-file",
      file,
    ]);
    assert.equal(result.code, 2, `${what}: ${result.stderr}`);
    assert.match(result.stderr, message, what);
    for (const secret of [SECRET, NEXT_SECRET, FULL]) {
      assert.ok(!result.stderr.includes(secret), `${what}: ${secret}`);
    }
  }
});

Deno.test("a reload of a token file that starts a line with grants, holds two tokens or grants alone keeps the old list and prints no secret", async () => {
  await using tokens = await tokenFile(`${FULL}\n`);
  const file = tokens.path;
  const { group, target } = await spawnServeGroup(["--token-file", file]);
  await using _ = group;
  const server = group.process;
  for (const [what, text, message] of BAD_TOKEN_FILES) {
    // Replaced whole, as an operator's tooling does (a reload never reads
    // half a file). deno task forwards the group's SIGHUP a second time, so
    // the previous file's late second reload may warn after this one's
    // start: the warning waited for is this file's.
    await Deno.writeTextFile(`${file}.new`, text);
    await Deno.rename(`${file}.new`, file);
    const before = server.stderr.length;
    group.signal("SIGHUP");
    await waitFor(
      `the reload warning (${what}) matching ${message}`,
      () =>
        server.stderr.slice(before).some((l) =>
          l.includes("WARN Token file not reloaded") && message.test(l)
        ),
      10_000,
      () => server.stderr.join("\n"),
    );
  }
  // The list in force is still the one read at start.
  const hello = await runClient(
    ["x", "--target", target, "--mode", "hello"],
    20_000,
    { GREETER_TOKEN: FULL },
  );
  assert.equal(hello.code, 0, hello.stderr);
  for (const secret of [SECRET, NEXT_SECRET, FULL]) {
    assert.ok(!server.stderr.some((l) => l.includes(secret)), secret);
  }
});

Deno.test("a token-file reload that removes a token or narrows its grants ends its open calls: UNAUTHENTICATED or PERMISSION_DENIED, after a goodbye where the stream has one", async () => {
  const STAYS = "stays-0123456789abcdef";
  await using tokens = await tokenFile(
    `${FULL}\n${READER} subscribe:news.*\n${STAYS} subscribe:news.*\n${PUBLISHER} publish:news.>\n`,
  );
  const file = tokens.path;
  const { group, target } = await spawnServeGroup([
    "--token-file",
    file,
    "--interval",
    "3600000",
  ]);
  await using _ = group;
  const server = group.process;
  using full = new GreeterClient(target, { token: FULL });
  using reader = new GreeterClient(target, { token: READER });
  using stays = new GreeterClient(target, { token: STAYS });
  const subscribed = async (client: GreeterClient, topics: string[]) => {
    const stream = client.subscribe("s", { topics });
    assert.equal((await stream.next()).value?.kind, "subscribed");
    return stream;
  };
  const fullStream = await subscribed(full, ["news.a"]);
  const readerStream = await subscribed(reader, ["news.*"]);
  const staysStream = await subscribed(stays, ["news.*"]);
  const timers = full.stream2("t");
  assert.equal((await timers.next()).value, "firstGreetingMessage");
  // A bidi stream that stays open, waiting for the caller's next name.
  const { Client } = loadGreeterProto();
  const raw = new Client(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${FULL}`);
  // deno-lint-ignore no-explicit-any
  const bidi = (raw as any).SayHelloBidiStream(metadata);
  const bidiEnd = new Promise<grpc.ServiceError>((resolve) =>
    bidi.on("error", resolve)
  );
  const replied = new Promise((resolve) => bidi.once("data", resolve));
  bidi.on("error", () => {});
  bidi.write({ name: "b" });
  try {
    await settles("the bidi stream's first reply", replied);
    // FULL goes; READER may now read news.a only (not news.*).
    await Deno.writeTextFile(
      file,
      `${READER} subscribe:news.a\n${STAYS} subscribe:news.*\n${PUBLISHER} publish:news.>\n`,
    );
    group.signal("SIGHUP");
    const ended = async (
      stream: AsyncGenerator<SubscriptionMessage>,
    ) => {
      const messages: SubscriptionMessage[] = [];
      try {
        for await (const message of stream) messages.push(message);
      } catch (error) {
        return { messages, error: error as RpcError };
      }
      return { messages, error: undefined };
    };
    const fullEnd = await settles(
      "FULL's subscription ended",
      ended(fullStream),
    );
    assert.equal(fullEnd.error?.code, "UNAUTHENTICATED");
    assert.match(
      fullEnd.error!.message,
      /The token of this call was revoked/,
    );
    const fullBye = fullEnd.messages.at(-1);
    assert.equal(fullBye?.kind === "goodbye" && fullBye.code, 16);
    assert.equal(fullBye?.kind === "goodbye" && fullBye.reconnect, false);
    const readerEnd = await settles(
      "READER's subscription ended",
      ended(readerStream),
    );
    assert.equal(readerEnd.error?.code, "PERMISSION_DENIED");
    assert.match(
      readerEnd.error!.message,
      /on topic "news\.\*" since the server's token list was reloaded: this token no longer grants "subscribe:news\.\*"/,
    );
    const readerBye = readerEnd.messages.at(-1);
    assert.equal(readerBye?.kind === "goodbye" && readerBye.code, 7);
    const kinds: string[] = [];
    await assert.rejects(
      settles(
        "SayHelloStream2 ended",
        (async () => {
          for await (const kind of timers) kinds.push(kind);
        })(),
      ),
      (e: RpcError) => e.code === "UNAUTHENTICATED",
    );
    assert.deepEqual(kinds, ["goodbyeGreetingMessage"]);
    const bidiError = await settles("the bidi stream ended", bidiEnd);
    assert.equal(bidiError.code, grpc.status.UNAUTHENTICATED);
    await server.waitForLine(
      "stderr",
      /WARN Ended open calls the reloaded token list refuses calls=4/,
    );
    // The token that stays keeps its stream.
    using publisher = new GreeterClient(target, { token: PUBLISHER });
    const next = staysStream.next();
    await publisher.publish("news.b", new Uint8Array([1]));
    assert.equal((await settles("the event", next)).value?.kind, "event");
    await staysStream.return(undefined);
  } finally {
    raw.close();
  }
});
