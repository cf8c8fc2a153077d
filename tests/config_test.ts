import assert from "node:assert/strict";
import {
  CLIENT_USAGE,
  parseClientArgs,
  parseServeArgs,
  SERVE_USAGE,
} from "../lib/cli/config.ts";
import type { Setting } from "../lib/cli/setting.ts";
import {
  CLIENT_SETTINGS,
  readStart,
  SERVE_SETTINGS,
} from "../lib/cli/settings.ts";
import { markdownRows } from "../lib/cli/usage.ts";
import { ConfigError } from "../lib/errors.ts";
import { docRows } from "../testing/docs.ts";
import { SETTINGS_TABLES } from "../testing/docs_settings.ts";

function serve(args: string[], env = {}) {
  const parsed = parseServeArgs(args, env);
  assert.ok(!parsed.help);
  return parsed.config;
}

Deno.test("parseServeArgs() defaults to loopback, the seed's port 50051 and a 1 s tick", () => {
  assert.deepEqual(serve([]), {
    host: "127.0.0.1",
    port: 50051,
    intervalMs: 1000,
    bufferSize: 128,
    policy: "drop-oldest",
    replaySize: 10000,
    replayAgeMs: 300000,
    replayBytes: 67108864,
    heartbeatMs: 15000,
    maxPublishBytes: 16384,
    reconnectJitterMs: 3000,
    graceMs: 5000,
    keepaliveTimeMs: 20000,
    keepaliveTimeoutMs: 10000,
    maxConnectionIdleMs: 300_000,
    maxConnections: 10_000,
    maxConnectionsPerPeer: undefined, // a quarter of maxConnections, once resolved
    maxConnectionAgeMs: undefined,
    maxConnectionAgeGraceMs: undefined,
    maxSubscribers: 20000,
    maxSubscribersPerConnection: undefined,
    maxSubscribersPerPeer: 5000,
    maxPatternsPerPeer: 1000,
    maxConcurrentStreams: 1000,
    maxMessageBytes: 65536,
    tokenFile: undefined,
    tlsCert: undefined,
    tlsKey: undefined,
    tlsClientCa: undefined,
    brokerUrl: { kind: "memory" },
    brokerWaitMs: undefined,
    natsStream: "greeter",
    natsUser: undefined,
    natsPassword: undefined,
    natsPasswordFile: undefined,
    natsTokenFile: undefined,
    natsNkeyFile: undefined,
    natsCredsFile: undefined,
    natsTlsCa: undefined,
    natsTlsCert: undefined,
    natsTlsKey: undefined,
    natsReplicas: 1,
    natsStorage: "file",
    workers: 1,
    reusePort: false,
    metricsPort: undefined,
    httpPort: undefined,
    httpCorsOrigins: [],
    logLevel: "info",
    logFormat: "text",
  });
});

Deno.test("parseServeArgs() takes env, and flags win over env", () => {
  const env = { GREETER_PORT: "7000", GREETER_INTERVAL_MS: "250" };
  assert.equal(serve([], env).port, 7000);
  assert.equal(serve([], env).intervalMs, 250);
  assert.equal(serve(["--port", "0"], env).port, 0);
  assert.equal(serve(["--policy", "disconnect"]).policy, "disconnect");
  assert.equal(
    serve(["--max-connection-age", "60000"], {
      GREETER_MAX_CONNECTION_AGE_MS: "5",
    }).maxConnectionAgeMs,
    60000,
  );
  assert.equal(
    serve([], { GREETER_KEEPALIVE_TIME_MS: "1500" }).keepaliveTimeMs,
    1500,
  );
});

Deno.test("parseServeArgs() reads --workers as a count or auto, and GREETER_WORKERS", () => {
  assert.equal(serve(["--workers", "4"]).workers, 4);
  assert.equal(serve(["--workers", "auto"]).workers, "auto");
  assert.equal(serve([], { GREETER_WORKERS: "auto" }).workers, "auto");
  assert.equal(serve(["--workers", "2"], { GREETER_WORKERS: "3" }).workers, 2);
  for (const bad of ["0", "257", "all", "1.5"]) {
    assert.throws(
      () => parseServeArgs(["--workers", bad], {}),
      new RegExp(
        `Invalid workers "${
          bad.replace(".", "\\.")
        }": expected auto or an integer from 1 to 256`,
      ),
    );
  }
});

Deno.test("parseServeArgs() names the setting and the value it rejects", () => {
  for (
    const [args, message] of [
      [
        ["--port", "65536"],
        /Invalid port "65536": expected an integer from 0 to 65535/,
      ],
      [["--port", "abc"], /Invalid port "abc"/],
      [["--interval", "0"], /Invalid interval "0"/],
      [["--keepalive-time", "0"], /Invalid keepalive time "0"/],
      [["--max-connection-idle", "soon"], /Invalid max connection idle "soon"/],
      [
        ["--policy", "lossy"],
        /Invalid policy "lossy": expected one of drop-oldest, disconnect/,
      ],
      [["--buffer-size", "-1"], /ambiguous|Invalid buffer size/],
      [["--nope"], /^Unknown option "--nope"$/],
      [["extra"], /Unexpected argument "extra"/],
    ] as const
  ) {
    assert.throws(
      () => parseServeArgs([...args], {}),
      (e: Error) => e instanceof ConfigError && message.test(e.message),
    );
  }
  assert.throws(
    () => parseServeArgs([], { GREETER_PORT: "x" }),
    /Invalid port "x"/,
  );
});

Deno.test("readStart() reads first, last:N, a zoned time and how long ago; nothing else", () => {
  assert.deepEqual(readStart("first"), { first: true });
  assert.deepEqual(readStart("last:12"), { last: 12 });
  assert.deepEqual(readStart("90s", 100_000), { timeMs: 10_000 });
  assert.deepEqual(readStart("2h", 7_200_000), { timeMs: 0 });
  assert.deepEqual(readStart("2026-11-24T10:00:00Z"), {
    timeMs: Date.UTC(2026, 10, 24, 10),
  });
  assert.deepEqual(readStart("2026-11-24T11:00:00.5+01:00"), {
    timeMs: Date.UTC(2026, 10, 24, 10, 0, 0, 500),
  });
  for (
    const bad of [
      "last:0",
      "last:",
      "10:00",
      "2026-11-24T10:00",
      "10x",
      "beginning",
    ]
  ) {
    assert.throws(() => readStart(bad), /Invalid --from/, bad);
  }
});

Deno.test("parseClientArgs() defaults to world at localhost:50051 in stream2 mode", () => {
  const parsed = parseClientArgs([], {});
  assert.ok(!parsed.help);
  const unset = {
    tokenFile: undefined,
    token: undefined,
    topics: [],
    after: undefined,
    from: undefined,
    payload: "",
    idempotencyKey: undefined,
    payloadFile: undefined,
    tls: false,
    tlsCa: undefined,
    tlsCert: undefined,
    tlsKey: undefined,
    verbose: false,
    output: "text",
    allowPlaintextToken: false,
  };
  assert.deepEqual(parsed.config, {
    target: "localhost:50051",
    mode: "stream2",
    names: ["world"],
    count: undefined,
    ...unset,
  });
  const bidi = parseClientArgs(["a", "b", "--mode", "bidi", "--count", "1"], {
    GREETER_TARGET: "[::1]:9",
  });
  assert.ok(!bidi.help);
  assert.deepEqual(bidi.config, {
    target: "[::1]:9",
    mode: "bidi",
    names: ["a", "b"],
    count: 1,
    ...unset,
  });
  assert.deepEqual(parseClientArgs(["-h"], {}), { help: true });
});

Deno.test("parseServeArgs() keeps a publish within one message", () => {
  assert.throws(
    () => serve(["--max-publish-size", "65536"]),
    /must stay 512 bytes below the max message size \(65536\)/,
  );
  assert.equal(
    serve(["--max-publish-size", "65536", "--max-message-size", "70000"])
      .maxPublishBytes,
    65536,
  );
});

Deno.test("parseServeArgs() refuses the gRPC port for metrics", () => {
  assert.throws(
    () => serve(["--port", "7000", "--metrics-port", "7000"]),
    /metrics port 7000: it is the gRPC port too/,
  );
  assert.equal(serve(["--port", "0", "--metrics-port", "0"]).metricsPort, 0);
});

Deno.test("parseServeArgs() reads the HTTP port and its CORS origins (repeated, or comma-separated in the environment)", () => {
  const config = serve([
    "--http-port",
    "8080",
    "--http-cors-origin",
    "https://a.example",
    "--http-cors-origin",
    "http://localhost:5173",
  ]);
  assert.equal(config.httpPort, 8080);
  assert.deepEqual(config.httpCorsOrigins, [
    "https://a.example",
    "http://localhost:5173",
  ]);
  const fromEnv = serve([], {
    GREETER_HTTP_PORT: "0",
    GREETER_HTTP_CORS_ORIGIN: "https://a.example, https://b.example",
  });
  assert.deepEqual(fromEnv.httpCorsOrigins, [
    "https://a.example",
    "https://b.example",
  ]);
  const refusals = [
    [
      ["--port", "7000", "--http-port", "7000"],
      /HTTP port 7000: it is the gRPC port too/,
    ],
    [
      ["--metrics-port", "9000", "--http-port", "9000"],
      /HTTP port 9000: it is the metrics port too/,
    ],
    [["--http-cors-origin", "https://a.example"], /give --http-port too/],
    [
      ["--http-port", "0", "--http-cors-origin", "https://a.example/"],
      /Invalid CORS origin "https:\/\/a.example\/"/,
    ],
    [
      ["--http-port", "0", "--http-cors-origin", "*"],
      /Invalid CORS origin "\*"/,
    ],
    [[
      "--http-port",
      "0",
      "--tls-cert",
      "c",
      "--tls-key",
      "k",
      "--tls-client-ca",
      "ca",
    ], /cannot require client certificates/],
  ] as const;
  for (const [args, error] of refusals) {
    assert.throws(() => serve([...args]), error, args.join(" "));
  }
});

Deno.test("parseClientArgs() refuses flags the chosen mode would ignore", () => {
  const cases: [string[], RegExp][] = [
    [["--payload", "x"], /--payload applies to --mode publish, not stream2/],
    [
      ["--mode", "publish", "--after", "e:1"],
      /--after applies to --mode subscribe/,
    ],
    [
      ["--mode", "hello", "--topic", "t"],
      /--topic applies to --mode subscribe or publish or presence/,
    ],
    [
      ["--mode", "publish", "--topic", "a", "--topic", "b"],
      /takes one --topic, got 2/,
    ],
    [["--verbose"], /--verbose applies to --mode subscribe, not stream2/],
    [["--output", "yaml"], /Invalid output "yaml": expected one of text, json/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseClientArgs(args, {}), message);
  }
});

Deno.test("parseClientArgs() takes topics, a cursor and a payload", () => {
  const parsed = parseClientArgs([
    "--mode",
    "subscribe",
    "--topic",
    "news",
    "--topic",
    "$presence",
    "--after",
    "3f2a9c0d11e4b7a6:42",
  ], {});
  assert.ok(!parsed.help);
  assert.deepEqual(parsed.config.topics, ["news", "$presence"]);
  assert.deepEqual(parsed.config.after, { epoch: "3f2a9c0d11e4b7a6", seq: 42 });
  const publish = parseClientArgs(["--mode", "publish", "--payload", "hi"], {});
  assert.ok(!publish.help);
  assert.equal(publish.config.payload, "hi");
  for (const after of ["42", "e:", "e:-1", "e:x", ":5"]) {
    assert.throws(
      () => parseClientArgs(["--mode", "subscribe", "--after", after], {}),
      /Invalid cursor .*expected EPOCH:SEQ/,
    );
  }
});

Deno.test("parseClientArgs() rejects a target that is not HOST:PORT", () => {
  for (
    const target of [
      "localhost",
      "http://x:1",
      ":50051",
      "a b:1",
      "h:99999",
      "h:0",
    ]
  ) {
    assert.throws(
      () => parseClientArgs(["--target", target], {}),
      /expected HOST:PORT/,
    );
  }
  assert.throws(
    () => parseClientArgs(["--count", "0"], {}),
    /Invalid count "0"/,
  );
});

Deno.test("parseClientArgs() takes several targets, comma-separated, in every mode", () => {
  const parsed = parseClientArgs([
    "--mode",
    "subscribe",
    "--target",
    "127.0.0.1:1,[::1]:2,localhost:3",
  ], {});
  assert.ok(!parsed.help);
  assert.equal(parsed.config.target, "127.0.0.1:1,[::1]:2,localhost:3");
  assert.throws(
    () => parseClientArgs(["--mode", "subscribe", "--target", "a:1,b"], {}),
    /Invalid target "b": expected HOST:PORT/,
  );
  assert.throws(
    () => parseClientArgs(["--mode", "subscribe", "--target", "a:1,"], {}),
    /Invalid target "": expected HOST:PORT/,
  );
  // Every mode takes a list: tried in order.
  for (const mode of ["publish", "presence", "hello", "stream", "bidi"]) {
    const other = parseClientArgs(["--mode", mode, "--target", "a:1,b:2"], {
      GREETER_TARGET: "c:3",
    });
    assert.ok(!other.help);
    assert.equal(other.config.target, "a:1,b:2");
  }
});

Deno.test("--help lists every flag and environment variable of the table", () => {
  for (
    const [usage, table] of [
      [SERVE_USAGE, SERVE_SETTINGS],
      [CLIENT_USAGE, CLIENT_SETTINGS],
    ] as const
  ) {
    const settings: Setting<unknown>[] = Object.values(table);
    assert.ok(settings.length > 10, `found ${settings.length} settings`);
    for (const { flag, env } of settings) {
      if (flag) {
        assert.match(usage, new RegExp(`^  --${flag}\\b`, "m"), `--${flag}`);
      }
      if (env) assert.ok(usage.includes(env), `${env} is not in the help`);
    }
  }
});

Deno.test("the settings tables of the documentation say what the settings table says", () => {
  for (const { page, heading, table } of SETTINGS_TABLES) {
    const expected = markdownRows(table);
    assert.deepEqual(
      docRows(page, heading),
      expected,
      `${page}'s table under ${heading} should read (deno run --allow-read --allow-write testing/docs_settings.ts rewrites it):\n${
        expected.map((row) => `| ${row.join(" | ")} |`).join("\n")
      }`,
    );
  }
});

Deno.test("parseServeArgs() reads --broker: memory, or NATS servers; NATS settings need NATS", () => {
  assert.deepEqual(
    serve(["--broker", "nats://127.0.0.1:4222,nats-2:4222"]).brokerUrl,
    {
      kind: "nats",
      servers: ["127.0.0.1:4222", "nats-2:4222"],
    },
  );
  assert.deepEqual(
    serve([], { GREETER_BROKER: "nats://[::1]:4222" }).brokerUrl,
    {
      kind: "nats",
      servers: ["[::1]:4222"],
    },
  );
  for (const bad of ["redis://x:1", "nats://", "nats://host", "nats://a:1,"]) {
    assert.throws(
      () => serve(["--broker", bad]),
      /Invalid broker .*expected memory or nats:\/\/\[USER\[:PASSWORD\]@\]HOST:PORT/,
      bad,
    );
  }
  assert.throws(
    () => serve(["--reuse-port"]),
    /--reuse-port needs --broker nats:\/\/HOST:PORT/,
  );
  assert.throws(
    () => serve(["--nats-stream", "s"]),
    /--nats-stream applies to --broker nats:\/\/HOST:PORT/,
  );
  const nats = ["--broker", "nats://127.0.0.1:4222"];
  assert.throws(
    () => serve([...nats, "--nats-user", "u"]),
    /NATS user "u" has no password: put it in the URL \(nats:\/\/USER:PASSWORD@HOST:PORT\), set GREETER_NATS_PASSWORD, or give --nats-password-file/,
  );
  assert.throws(
    () => serve([...nats, "--nats-stream", "a.b"]),
    /Invalid nats stream "a.b"/,
  );
});

Deno.test("parseServeArgs() reads NATS credentials: a user and password in the URL (percent-encoded, never echoed), or one other way", () => {
  assert.deepEqual(
    serve(["--broker", "nats://greeter:p%40ss%3Aw%2Crd@127.0.0.1:4222,h:1"])
      .brokerUrl,
    {
      kind: "nats",
      servers: ["127.0.0.1:4222", "h:1"],
      user: "greeter",
      password: "p@ss:w,rd",
    },
  );
  assert.deepEqual(
    serve(["--broker", "nats://u@h:1"], { GREETER_NATS_PASSWORD: "pw" }),
    {
      ...serve(["--broker", "nats://h:1"]),
      brokerUrl: {
        kind: "nats",
        servers: ["h:1"],
        user: "u",
        password: undefined,
      },
      natsPassword: "pw",
    },
  );
  // The password in a bad URL is not shown.
  assert.throws(
    () => serve(["--broker", "nats://u:secret@h"]),
    (error: Error) =>
      /Invalid broker "nats:\/\/u:\*\*\*@h"/.test(error.message) &&
      !error.message.includes("secret"),
  );
  assert.throws(
    () => serve(["--broker", "nats://u:a@h:1,nats://v:b@h:2"]),
    /its servers name different credentials/,
  );
  assert.throws(
    () => serve(["--broker", "nats://u:%zz@h:1"]),
    /its credentials are not percent-encoded/,
  );
  const refusals: [string[], Record<string, string>, RegExp][] = [
    [
      ["--broker", "nats://u:p@h:1", "--nats-user", "v"],
      {},
      /Two NATS users given: "u" in --broker and "v" in --nats-user/,
    ],
    [
      ["--broker", "nats://u:p@h:1"],
      { GREETER_NATS_PASSWORD: "q" },
      /Two NATS passwords given \(the --broker URL and GREETER_NATS_PASSWORD\)/,
    ],
    [
      ["--broker", "nats://h:1"],
      { GREETER_NATS_PASSWORD: "q" },
      /A NATS password \(GREETER_NATS_PASSWORD\) needs a user/,
    ],
    [
      ["--broker", "nats://u:p@h:1", "--nats-token-file", "t"],
      {},
      /Give NATS one way to authenticate, not a user and password and a token \(--nats-token-file\)/,
    ],
    [
      [
        "--broker",
        "nats://h:1",
        "--nats-nkey-file",
        "n",
        "--nats-creds-file",
        "c",
      ],
      {},
      /not an nkey \(--nats-nkey-file\) and a credentials file \(--nats-creds-file\)/,
    ],
    [
      ["--nats-creds-file", "c"],
      {},
      /--nats-creds-file applies to --broker nats:\/\/HOST:PORT/,
    ],
  ];
  for (const [args, env, message] of refusals) {
    assert.throws(() => serve(args, env), message, args.join(" "));
  }
  for (
    const args of [
      ["--nats-token-file", "t"],
      ["--nats-nkey-file", "n"],
      ["--nats-creds-file", "c"],
      ["--nats-user", "u", "--nats-password-file", "p"],
    ]
  ) {
    serve(["--broker", "nats://h:1", ...args]); // each alone is fine
  }
});
