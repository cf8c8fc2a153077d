import assert from "node:assert/strict";
import { parseClientArgs, parseServeArgs } from "../lib/cli/config.ts";
import { nearest } from "../lib/cli/args.ts";
import { runTask } from "../testing/process.ts";

Deno.test("an unknown option names the nearest flag, when one is close", () => {
  for (
    const [parse, args, message] of [
      [
        parseServeArgs,
        ["--prot", "1"],
        'Unknown option "--prot"; did you mean "--port"?',
      ],
      [
        parseServeArgs,
        ["--gracee", "1"],
        'Unknown option "--gracee"; did you mean "--grace"?',
      ],
      [
        parseClientArgs,
        ["--coutn", "2"],
        'Unknown option "--coutn"; did you mean "--count"?',
      ],
      [
        parseClientArgs,
        ["--tls-crt", "x"],
        'Unknown option "--tls-crt"; did you mean "--tls-cert"?',
      ],
      [parseServeArgs, ["--nope"], 'Unknown option "--nope"'],
      [parseClientArgs, ["-x"], 'Unknown option "-x"'],
      [
        parseServeArgs,
        ["--target", "h:1"],
        'Unknown option "--target" (it is an option of greeter client)',
      ],
      [
        parseClientArgs,
        ["--metrics-port", "1"],
        'Unknown option "--metrics-port" (it is an option of greeter serve)',
      ],
    ] as const
  ) {
    assert.throws(() => parse([...args], {}), (e: Error) => {
      assert.equal(e.message, message);
      return true;
    });
  }
  assert.equal(nearest("prot", ["port", "host"]), "port");
  assert.equal(nearest("x", ["tls"]), undefined);
  assert.equal(
    nearest("max-subscriber", [
      "max-subscribers",
      "max-subscribers-per-connection",
    ]),
    "max-subscribers",
  );
});

Deno.test("deno task serve/client with a mistyped flag exit 2 with the hint", async () => {
  const serve = await runTask("serve", ["--prot", "0"]);
  assert.equal(serve.code, 2, serve.stderr);
  assert.equal(
    serve.stderr,
    'error: Unknown option "--prot"; did you mean "--port"?\nRun with --help for usage.\n',
  );
  const client = await runTask("client", ["--targte", "localhost:1"]);
  assert.equal(client.code, 2, client.stderr);
  assert.match(
    client.stderr,
    /^error: Unknown option "--targte"; did you mean "--target"\?\n/,
  );
  assert.equal(client.stdout, "");
});
