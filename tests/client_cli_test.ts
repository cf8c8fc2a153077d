/**
 * `greeter client` as a person runs it: through `deno task client`, in a
 * process group of its own, piped as a shell pipes it.
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { spawnTask } from "../testing/process.ts";
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
