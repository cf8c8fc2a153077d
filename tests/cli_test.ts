import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ENV_VARS,
  parseClientArgs,
  parseServeArgs,
} from "../lib/cli/config.ts";
import { nearest } from "../lib/cli/args.ts";
import { startTestServer } from "../testing/server.ts";
import { ROOT, runTask, taskArgs } from "../testing/process.ts";

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

Deno.test("--version on greeter and both subcommands prints the project's and Deno's versions", async () => {
  const { version } = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  const line = `greeter ${version} (deno ${Deno.version.deno})\n`;
  for (const task of ["serve", "client"] as const) {
    const result = await runTask(task, ["--version"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, line);
  }
  const top = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("serve").slice(0, -1), "--version"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  assert.equal(top.code, 0);
  assert.equal(new TextDecoder().decode(top.stdout), line);
  assert.deepEqual(parseClientArgs(["--version"], {}), {
    help: true,
    version: true,
  });
});

Deno.test("deno run main.ts --version, --help or nothing answers without asking for a permission", async () => {
  const { version } = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  for (
    const [args, first] of [
      [["--version"], `greeter ${version} (deno ${Deno.version.deno})`],
      [[], "Usage: greeter <command> [options]"],
      [["serve", "--version"], `greeter ${version}`],
      [["client", "--help"], "Usage: greeter client [NAME…] [options]"],
    ] as const
  ) {
    // No --allow-* flag, and no terminal to prompt on: a permission asked
    // for would fail the run.
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "main.ts", ...args],
      cwd: ROOT,
      stdin: "null",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `${args.join(" ")}: ${stderr}`);
    assert.ok(
      new TextDecoder().decode(run.stdout).startsWith(first),
      args.join(" "),
    );
  }
});

Deno.test("parseClientArgs() refuses, by one rule, every argument the chosen mode would ignore", () => {
  const cases: [string[], string][] = [
    [
      ["--mode", "hello", "--count", "2"],
      "--count applies to --mode stream2 or stream or bidi or subscribe, not hello",
    ],
    [
      ["--mode", "publish", "--count", "1"],
      "--count applies to --mode stream2 or stream or bidi or subscribe, not publish",
    ],
    [
      ["--mode", "presence", "--count", "1"],
      "--count applies to --mode stream2 or stream or bidi or subscribe, not presence",
    ],
    [
      ["--mode", "stream", "--verbose"],
      "--verbose applies to --mode subscribe, not stream",
    ],
    [
      ["you", "--mode", "publish", "--topic", "t"],
      'A NAME ("you") applies to --mode stream2 or stream or hello or bidi or subscribe, not publish',
    ],
    [
      ["a", "b", "--mode", "hello"],
      "--mode hello takes one NAME, got 2; --mode bidi sends several",
    ],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseClientArgs(args, {}), (e: Error) => {
      assert.equal(e.message, message);
      return true;
    });
  }
  for (
    const args of [
      ["--mode", "stream", "--count", "2"],
      ["--mode", "bidi", "a", "b", "--count", "1"],
      ["--mode", "subscribe", "--count", "1", "--verbose", "--output", "json"],
      ["--mode", "presence", "--output", "json"],
    ]
  ) {
    assert.equal(parseClientArgs(args, {}).help, false);
  }
});

Deno.test("deno task client --mode hello --count 2 exits 2 instead of ignoring --count", async () => {
  const result = await runTask("client", [
    "you",
    "--mode",
    "hello",
    "--count",
    "2",
  ]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(
    result.stderr,
    /^error: --count applies to --mode stream2 or stream or bidi or subscribe, not hello\n/,
  );
});

Deno.test("GREETER_TOKEN_FILE and GREETER_TOKEN both set: an error naming both; --token-file wins over GREETER_TOKEN", async () => {
  const message =
    "GREETER_TOKEN and GREETER_TOKEN_FILE are both set: unset one (GREETER_TOKEN holds the token itself, GREETER_TOKEN_FILE names a file that holds it)";
  const env = { GREETER_TOKEN: "t".repeat(32), GREETER_TOKEN_FILE: "/x" };
  assert.throws(() => parseClientArgs([], env), (e: Error) => {
    assert.equal(e.message, message);
    return true;
  });
  const flag = parseClientArgs(["--token-file", "/y"], env);
  assert.ok(!flag.help);
  assert.equal(flag.config.tokenFile, "/y");
  assert.equal(flag.config.token, undefined);
  const result = await runTask("client", ["--mode", "hello"], { env });
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    `error: ${message}\nRun with --help for usage.\n`,
  );
});

Deno.test("relative --token-file and --tls-* paths are read from where deno task was started, and errors name the path tried", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const token = "relative-path-token-0123456789abcdef";
    await Deno.writeTextFile(join(dir, "tokens.txt"), `${token}\n`);
    await using t = await startTestServer({ tokens: [token] });
    const hello = await runTask(
      "client",
      [
        "you",
        "--target",
        t.target,
        "--mode",
        "hello",
        "--token-file",
        "tokens.txt",
      ],
      { cwd: dir },
    );
    assert.equal(hello.code, 0, hello.stderr);
    assert.equal(hello.stdout, "Greeter client received: Hello, you!\n");
    const missing = await runTask(
      "client",
      ["--tls-ca", "nope/ca.pem", "--target", t.target],
      { cwd: dir },
    );
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      new RegExp(
        `^error: Cannot read TLS CA file "${join(dir, "nope/ca.pem")}": `,
      ),
    );
    const serve = await runTask(
      "serve",
      ["--host", "127.0.0.1", "--port", "0", "--token-file", "absent.txt"],
      { cwd: dir },
    );
    assert.equal(serve.code, 2);
    // The path once, then the system's words, without Deno's restatement
    // of the path ("(os error 2): readfile '…'").
    assert.match(
      serve.stderr,
      new RegExp(
        `^error: Cannot read token file "${
          join(dir, "absent.txt")
        }": No such file or directory\n`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve on a busy port says so once, without grpc-js's stray E line, over workers too", async () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = busy.addr;
  for (const workers of [[], ["--workers", "2"]]) {
    const result = await runTask("serve", [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      ...workers,
    ]);
    assert.equal(result.code, 1);
    const lines = result.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0],
      new RegExp(
        `^error: Cannot bind "127\\.0\\.0\\.1:${port}": .*EADDRINUSE.*: another process listens there \\(another greeter\\?\\): stop it \\(ss -ltnp 'sport = :${port}' names it\\) or choose another --port$`,
      ),
    );
  }
});

Deno.test("the serve and client tasks may read every environment variable the settings name, and main.ts reads no other", async () => {
  const tasks = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ).tasks as Record<string, string>;
  for (const task of ["serve", "client", "compile"]) {
    const allowed = tasks[task].match(/--allow-env=(\S+)/)?.[1].split(",");
    assert.ok(allowed, `${task} has no --allow-env list`);
    const patterns = allowed.map((name) =>
      new RegExp(`^${name.replaceAll("*", ".*")}$`)
    );
    for (const name of ENV_VARS) {
      assert.ok(
        patterns.some((p) => p.test(name)),
        `${task} may not read ${name}`,
      );
    }
  }
  const main = await Deno.readTextFile(new URL("../main.ts", import.meta.url));
  assert.deepEqual(
    [...main.matchAll(/Deno\.env\.(\w+)\(/g)].map((m) => m[0]),
    ["Deno.env.get("],
  );
  assert.match(main, /ENV_VARS\.map\(\(n\) => \[n, Deno\.env\.get\(n\)\]\)/);
});

Deno.test("the executable is built with the serve task's V8 flags and permissions", async () => {
  const tasks = JSON.parse(
    await Deno.readTextFile(join(ROOT, "deno.json")),
  ).tasks as Record<string, string>;
  const flags = (task: string) =>
    tasks[task].split(/\s+/).filter((arg) =>
      arg.startsWith("--v8-flags=") || arg.startsWith("--allow-")
    );
  // Without pretenuring, RSS under a fan-out stays flat (see ARCHITECTURE.md).
  assert.ok(
    flags("serve").includes("--v8-flags=--no-allocation-site-pretenuring"),
  );
  assert.deepEqual(flags("compile"), flags("serve"));
});
