import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { BearerTokens, parseTokens } from "../lib/access/tokens.ts";
import { GreeterClient } from "../lib/client/client.ts";
import type { RpcError } from "../lib/errors.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { runClient, spawnServer } from "../testing/process.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

const TOKENS = ["tok-alpha-1", "tok-bravo-2"];

Deno.test("parseTokens() keeps one token per line, skipping blanks and comments", () => {
  assert.deepEqual(
    parseTokens("# team a\n tok-1 \n\r\n#x\ntok-2\ntok-3  publish:news.>\n"),
    ["tok-1", "tok-2", "tok-3"],
  );
});

Deno.test("BearerTokens.accepts() takes exactly a listed token after Bearer", () => {
  const tokens = new BearerTokens(TOKENS);
  assert.equal(tokens.accepts("Bearer tok-alpha-1"), true);
  assert.equal(tokens.accepts("bearer tok-bravo-2"), true);
  for (
    const bad of [
      undefined,
      "",
      "tok-alpha-1",
      "Bearer ",
      "Bearer tok-alpha",
      "Bearer tok-alpha-1x",
      "Basic tok-alpha-1",
      "Bearer tok-alpha-1 extra",
    ]
  ) {
    assert.equal(tokens.accepts(bad), false, String(bad));
  }
  assert.equal(tokens.find("Bearer tok-bravo-2"), 1);
  assert.equal(tokens.find("Bearer tok-bravo-3"), -1);
  assert.throws(() => new BearerTokens([]), /token list is empty/);
});

const unauthenticated = (error: RpcError) =>
  error.code === "UNAUTHENTICATED" &&
  /Missing or invalid bearer token for \/helloworld\.Greeter\/SayHello: send "authorization: Bearer <token>" \(gRPC metadata, or an HTTP header\)/
    .test(error.message);

Deno.test("calls without an accepted token get UNAUTHENTICATED; health stays open", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    tokens: TOKENS,
  });
  using anonymous = new GreeterClient(t.target);
  await assert.rejects(anonymous.sayHello("you"), unauthenticated);
  using wrong = new GreeterClient(t.target, { token: "tok-alpha-2" });
  await assert.rejects(wrong.sayHello("you"), unauthenticated);
  await assert.rejects(
    wrong.streamReply("you").next(),
    (error: RpcError) => error.code === "UNAUTHENTICATED",
  );
  assert.equal(t.server.hub.size, 0);

  for (const token of TOKENS) {
    using client = new GreeterClient(t.target, { token });
    assert.equal(await client.sayHello("you"), "Hello, you!");
  }
  using right = new GreeterClient(t.target, { token: TOKENS[1] });
  const controller = new AbortController();
  const pending = right.streamReply("you", { signal: controller.signal })
    .next();
  await waitFor("an authenticated subscriber", () => t.server.hub.size === 1);
  controller.abort();
  await pending;

  const Health = grpc.makeGenericClientConstructor(healthService, "Health");
  const health = new Health(t.target, grpc.credentials.createInsecure());
  try {
    const status = await new Promise((resolve, reject) =>
      // deno-lint-ignore no-explicit-any
      (health as any).Check(
        { service: "" },
        (error: Error | null, reply: { status: string }) =>
          error ? reject(error) : resolve(reply.status),
      )
    );
    assert.equal(status, "SERVING");
  } finally {
    health.close();
  }
  for (const token of TOKENS) {
    assert.ok(!t.logs.some((line) => line.includes(token)));
  }
});

Deno.test("greeter serve --token-file and a client with GREETER_TOKEN", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, `# test tokens\n${TOKENS.join("\n")}\n`);
    const { process: server, target } = await spawnServer([
      "--token-file",
      file,
    ]);
    await using _ = server;
    const denied = await runClient([
      "you",
      "--target",
      target,
      "--mode",
      "hello",
    ]);
    assert.equal(denied.code, 64 + 16); // UNAUTHENTICATED
    assert.match(denied.stderr, /^error: 127\.0\.0\.1:\d+: UNAUTHENTICATED: /);
    const allowed = await runClient(
      ["you", "--target", target, "--mode", "hello"],
      20_000,
      { GREETER_TOKEN: TOKENS[0] },
    );
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout, "Greeter client received: Hello, you!\n");
    const fromFile = await runClient([
      "you",
      "--target",
      target,
      "--mode",
      "hello",
      "--token-file",
      file,
    ]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.ok(!server.stderr.some((l) => TOKENS.some((t) => l.includes(t))));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a token file that is missing or empty is a configuration error", async () => {
  const missing = await runClient(["--token-file", "/nonexistent/tokens"]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /^error: Cannot read token file "\/nonexistent\/tokens": /,
  );
  const empty = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(empty, "# nothing\n\n");
    const result = await runClient(["--token-file", empty]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /holds no token/);
  } finally {
    await Deno.remove(empty);
  }
});
