import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { LineProcess, taskArgs } from "../testing/process.ts";
import { settles, startTestServer, waitFor } from "../testing/server.ts";

Deno.test("keepalive drops a client process frozen with SIGSTOP, and its subscription", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    keepaliveTimeMs: 300,
    keepaliveTimeoutMs: 300,
  });
  await using client = new LineProcess([
    ...taskArgs("client"),
    "frozen",
    "--target",
    t.target,
    "--mode",
    "stream",
  ]);
  await waitFor("subscriber", () => t.server.hub.size === 1, 20_000);
  client.child.kill("SIGSTOP");
  try {
    // Bound: a ping within 300 ms, unanswered for 300 ms; slack for load.
    await waitFor(
      "the frozen peer dropped",
      () => t.server.hub.size === 0,
      5000,
    );
    assert.ok(t.logs.some((l) => l.includes('client "frozen" is leaving.')));
  } finally {
    client.child.kill("SIGCONT");
  }
});

Deno.test("max connection age ends long subscriptions so clients rebalance", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxConnectionAgeMs: 300,
    maxConnectionAgeGraceMs: 200,
  });
  using client = new GreeterClient(t.target);
  const pending = client.streamReply("old").next();
  await waitFor("subscriber", () => t.server.hub.size === 1);
  // After age + grace the call is cut: the client learns and may reconnect.
  await assert.rejects(settles("the call cut", pending), RpcError);
  await waitFor("removal", () => t.server.hub.size === 0);
});
