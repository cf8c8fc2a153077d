/**
 * The HTTP port as a person uses it from a shell: `deno task serve
 * --http-port 0`, then `curl -N` streaming server-sent events and resuming
 * with `-H 'Last-Event-ID: …'`, and `buf curl` calling every method over
 * Connect and gRPC-Web.
 */

import assert from "node:assert/strict";
import { BUF_MISSING } from "../testing/buf.ts";
import {
  LineProcess,
  PRLIMIT,
  ROOT,
  spawnLimitedServer,
  spawnServer,
} from "../testing/process.ts";
import { SseReader } from "../testing/http.ts";

function missing(command: string): string | undefined {
  try {
    new Deno.Command(command, { args: ["--version"] }).outputSync();
    return undefined;
  } catch {
    return `${command} is not installed`;
  }
}

const NO_CURL = missing("curl");
if (NO_CURL) console.warn(`http_cli_test.ts ignored in part: ${NO_CURL}`);

/** `deno task serve` with an HTTP port; its HTTP base URL. */
async function serveHttp(
  args: string[] = [],
): Promise<{ process: LineProcess; base: string }> {
  const { process } = await spawnServer(
    ["--http-port", "0", ...args],
    undefined,
    true,
  );
  const [, port] = await process.waitForLine(
    "stderr",
    /HTTP on http:\/\/127\.0\.0\.1:(\d+)/,
  );
  return { process, base: `http://127.0.0.1:${port}` };
}

/** Runs `curl ARGS…` to its end (it stops itself: `--max-time`); its stdout. */
async function curl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  // 28: --max-time reached, how a stream is left here.
  if (!out.success && out.code !== 28) {
    throw new Error(
      `curl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** The `id:` of every event block (no `event:` line) of a stream's text. */
function eventIds(text: string): string[] {
  return text.split("\n\n").filter((block) =>
    block.includes("\ndata: ") || block.startsWith("data: ")
  ).filter((block) => !/^event: /m.test(block))
    .map((block) => block.match(/^id: (.+)$/m)![1]);
}

Deno.test({
  name:
    "curl -N streams ticks with EPOCH:SEQ ids, and -H 'Last-Event-ID: …' resumes with no duplicate and no hole",
  ignore: NO_CURL !== undefined,
  async fn() {
    const { process, base } = await serveHttp(["--interval", "50"]);
    await using _server = process;
    const url = `${base}/v1/events?topic=tick`;
    // A reference stream that sees every tick across both of the others.
    const reference = curl("-N", "--max-time", "2.5", url);
    const before = await curl("-N", "--max-time", "0.8", url);
    const seen = eventIds(before);
    assert.ok(seen.length >= 3, before);
    for (const id of seen) assert.match(id, /^[0-9a-f]{16}:\d+$/);
    const last = seen.at(-1)!;
    const after = await curl(
      "-N",
      "--max-time",
      "0.8",
      "-H",
      `Last-Event-ID: ${last}`,
      url,
    );
    assert.match(
      after,
      new RegExp(`^event: first\\nid: ${last}\\n.*"recovered":true`, "m"),
    );
    const resumed = eventIds(after);
    assert.ok(resumed.length >= 3, after);
    const all = eventIds(await reference);
    const seq = (id: string) => Number(id.split(":")[1]);
    // The reference and the first stream came up a moment apart: compare
    // from where both had started to where the resumed one stopped.
    const from = Math.max(seq(all[0]), seq(seen[0]));
    const to = seq(resumed.at(-1)!);
    assert.ok(seq(all.at(-1)!) >= to, `${resumed} in ${all}`);
    const both = [...seen, ...resumed].filter((id) => seq(id) >= from);
    assert.deepEqual(
      both,
      all.filter((id) => seq(id) >= from && seq(id) <= to),
    );
  },
});

Deno.test({
  name:
    "greeter serve --http-port under 256 descriptors: 300 connections to the HTTP port stop its listener; it listens again once they go, and an open event stream goes on",
  ignore: PRLIMIT === undefined,
  async fn() {
    const { process: server } = await spawnLimitedServer(256, [
      "--http-port",
      "0",
      "--interval",
      "50",
    ]);
    await using _ = server;
    const [, port] = await server.waitForLine(
      "stderr",
      /HTTP on http:\/\/127\.0\.0\.1:(\d+)/,
    );
    const base = `http://127.0.0.1:${port}`;
    await using stream = new SseReader(
      await fetch(`${base}/v1/events?topic=tick`),
    );
    await stream.until((block) => block.event === "first");
    const flood: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        try {
          flood.push(
            await Deno.connect({ hostname: "127.0.0.1", port: +port }),
          );
        } catch {
          break; // refused or reset: the listener is down
        }
      }
      await server.waitForLine(
        "stderr",
        /The HTTP listener stopped: listening again \(open streams go on\)/,
      );
    } finally {
      for (const conn of flood) conn.close();
    }
    await server.waitForLine("stderr", /The HTTP listener accepts again/);
    const session = await fetch(`${base}/v1/session`).catch((error) => {
      throw new Error(`${error}\n${server.stderr.join("\n")}`);
    });
    assert.equal(session.status, 200);
    await session.body?.cancel();
    // The stream opened before the flood still delivers new ticks.
    const [tick] = (await stream.until((block) => block.data !== undefined))
      .slice(-1);
    assert.match(tick.id!, /^[0-9a-f]{16}:\d+$/);
    server.signalGroup("SIGTERM");
    assert.equal((await server.exit(15_000)).code, 0, server.stderr.join("\n"));
  },
});

/** `buf curl` with the repository's schema, for `protocol` and `url`. */
function bufCurlArgs(
  protocol: "connect" | "grpcweb",
  url: string,
  data: string,
  ...flags: string[]
): string[] {
  return [
    "curl",
    "--schema",
    "protos/helloworld.proto",
    "--protocol",
    protocol,
    "-d",
    data,
    ...flags,
    url,
  ];
}

/** `buf curl` to its end; its exit code and output. */
async function bufCurl(
  ...args: Parameters<typeof bufCurlArgs>
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("buf", {
    args: bufCurlArgs(...args),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

/**
 * `buf curl` on a stream that never ends by itself, left (killed) once its
 * output has matched `pattern`; the output so far.
 */
async function bufCurlUntil(
  pattern: RegExp,
  ...args: Parameters<typeof bufCurlArgs>
): Promise<string> {
  // In a group of its own: npm's buf is a wrapper that starts the binary.
  await using stream = new LineProcess(bufCurlArgs(...args), {
    command: "buf",
    group: true,
  });
  await stream.waitForLine("stdout", pattern);
  return stream.stdout.join("\n");
}

/** The JSON documents `buf curl` printed, one after another. */
function documents(stdout: string): Record<string, unknown>[] {
  return stdout.split(/\n(?=\{)/).filter((s) => s.trim() !== "").map((s) =>
    JSON.parse(s)
  );
}

Deno.test({
  name:
    "buf curl --protocol connect and --protocol grpcweb call every method of the Greeter on the HTTP port",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    const { process, base } = await serveHttp(["--interval", "100"]);
    await using _server = process;
    const url = (method: string) => `${base}/helloworld.Greeter/${method}`;
    for (const protocol of ["connect", "grpcweb"] as const) {
      const call = (method: string, data: string, ...flags: string[]) =>
        bufCurl(protocol, url(method), data, ...flags);
      const [hello, published, listed, stream2, bidi, ticks, events] =
        await Promise.all([
          call("SayHello", '{"name":"you"}'),
          call("Publish", `{"topic":"news","payload":"${btoa(protocol)}"}`),
          call("ListSubscribers", "{}"),
          call("SayHelloStream2", '{"name":"you"}'),
          call(
            "SayHelloBidiStream",
            '{"name":"a"} {"name":"b"}',
            "--http2-prior-knowledge",
          ),
          bufCurlUntil(
            /"message": "hello you, it's \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"/,
            protocol,
            url("SayHelloStreamReply"),
            '{"name":"you"}',
          ),
          bufCurlUntil(
            /"topic": "tick"/,
            protocol,
            url("Subscribe"),
            '{"name":"you","topics":["tick"]}',
          ),
        ]);
      const said = `${protocol}: `;
      assert.equal(hello.code, 0, said + hello.stderr);
      assert.deepEqual(documents(hello.stdout), [{ message: "Hello, you!" }]);
      assert.equal(published.code, 0, said + published.stderr);
      assert.match(published.stdout, /"seq": "\d+"/);
      assert.equal(listed.code, 0, said + listed.stderr);
      assert.equal(stream2.code, 0, said + stream2.stderr);
      assert.deepEqual(
        documents(stream2.stdout).map((d) => Object.keys(d)[0]),
        [
          "firstGreetingMessage",
          ...Array(5).fill("timerGreetingMessage"),
          "goodbyeGreetingMessage",
        ],
      );
      assert.equal(bidi.code, 0, said + bidi.stderr);
      assert.deepEqual(documents(bidi.stdout), [
        { message: "Hello, a!" },
        { message: "Hello, b!" },
      ]);
      assert.match(ticks, /"cursor": \{/);
      assert.match(events, /^\{\n {2}"firstGreetingMessage": \{/);
    }
  },
});

Deno.test({
  name:
    "curl against --token-file and --http-cors-origin: 401 and 403 in one line each, a listed origin's preflight granted, another refused",
  ignore: NO_CURL !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    await using _dir = {
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
    };
    const reader = "reader-0123456789abcdef";
    await Deno.writeTextFile(
      `${dir}/tokens.txt`,
      `full-0123456789abcdef\n${reader} subscribe:news.*\n`,
      { mode: 0o600 },
    );
    const { process, base } = await serveHttp([
      "--token-file",
      `${dir}/tokens.txt`,
      "--http-cors-origin",
      "https://app.example",
      "--http-cors-origin",
      "https://admin.example",
    ]);
    await using _server = process;
    const events = `${base}/v1/events?topic=`;
    /** The status line and body of `curl -i ARGS…` (headers dropped). */
    const refused = async (...args: string[]) => {
      const [head, body] = (await curl("-i", "--max-time", "5", ...args))
        .split("\r\n\r\n");
      return { status: head.split("\r\n")[0], head, body };
    };
    const oneLine = (body: string) => {
      assert.equal(body.split("\n").length, 2, body); // one line, ended
    };
    const none = await refused(`${events}news.a`);
    assert.equal(none.status, "HTTP/1.1 401 Unauthorized");
    assert.match(none.body, /^Missing or invalid bearer token for /);
    oneLine(none.body);
    const bad = await refused("-H", "Authorization: Bearer nope", events + "x");
    assert.equal(bad.status, "HTTP/1.1 401 Unauthorized");
    const forbidden = await refused(
      "-H",
      `Authorization: Bearer ${reader}`,
      `${events}tick`,
    );
    assert.equal(forbidden.status, "HTTP/1.1 403 Forbidden");
    assert.match(
      forbidden.body,
      /^Permission denied for \/helloworld\.Greeter\/Subscribe on topic "tick": this token lacks "subscribe:tick"/,
    );
    oneLine(forbidden.body);
    const published = await refused(
      "-H",
      `Authorization: Bearer ${reader}`,
      "-H",
      "content-type: application/json",
      "-d",
      '{"topic":"news.a"}',
      `${base}/helloworld.Greeter/Publish`,
    );
    assert.equal(published.status, "HTTP/1.1 403 Forbidden");
    assert.equal(
      JSON.parse(published.body).code,
      "permission_denied",
      published.body,
    );
    // The granted topic streams, with the token from the query this time.
    const granted = await curl(
      "-N",
      "--max-time",
      "1",
      `${events}news.a&access_token=${reader}`,
    );
    assert.match(granted, /^event: first\nid: [0-9a-f]{16}:\d+$/m);
    for (const origin of ["https://app.example", "https://admin.example"]) {
      const preflight = await refused(
        "-X",
        "OPTIONS",
        "-H",
        `Origin: ${origin}`,
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: authorization, content-type",
        `${base}/helloworld.Greeter/Publish`,
      );
      assert.equal(preflight.status, "HTTP/1.1 204 No Content", origin);
      assert.match(
        preflight.head,
        new RegExp(`^access-control-allow-origin: ${origin}$`, "m"),
      );
      assert.match(
        preflight.head,
        /^access-control-allow-credentials: true$/m,
      );
    }
    const other = await refused(
      "-X",
      "OPTIONS",
      "-H",
      "Origin: https://evil.example",
      "-H",
      "Access-Control-Request-Method: POST",
      `${base}/helloworld.Greeter/Publish`,
    );
    assert.equal(other.status, "HTTP/1.1 403 Forbidden");
    assert.doesNotMatch(other.head, /access-control-allow-origin/i);
    assert.equal(
      other.body,
      'Origin "https://evil.example" is not allowed: list it with --http-cors-origin\n',
    );
  },
});
