/**
 * The HTTP port as a person uses it from a shell: `deno task serve
 * --http-port 0`, then `curl -N` streaming server-sent events and resuming
 * with `-H 'Last-Event-ID: …'`.
 */

import assert from "node:assert/strict";
import {
  type LineProcess,
  PRLIMIT,
  spawnLimitedServer,
  spawnServer,
} from "../testing/process.ts";
import { SseReader } from "../testing/sse.ts";

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
