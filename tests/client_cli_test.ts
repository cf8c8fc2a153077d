/**
 * `greeter client` as a person runs it: through `deno task client`, in a
 * process group of its own, piped as a shell pipes it.
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { LineProcess, spawnTask } from "../testing/process.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

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

Deno.test("deno task client … | head -2 ends once head has gone: exit 0, the server sees the subscription leave", async () => {
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
});
