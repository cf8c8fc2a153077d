/**
 * Signals as people deliver them: a terminal's Ctrl-C (and `timeout`, and
 * systemd's `KillMode=control-group`) signals the whole process group, so
 * `deno run` gets it once from the terminal and once more from `deno task`,
 * which forwards it. Each test runs `deno task` in a process group of its own
 * and signals the group, several times, since the double delivery races.
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { spawnServer, spawnTask } from "../testing/process.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

/** Rounds per signal kind: the second copy's timing varies run to run. */
const ROUNDS = 5;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} to deno task serve's process group drains once: goodbye and OK, "Server stopped", exit 0`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { process: server, target } = await spawnServer(
        ["--grace", "10000"],
        undefined,
        true,
      );
      await using _ = server;
      using client = new GreeterClient(target);
      const stream = client.subscribe("ann", { topics: ["news"] });
      assert.equal((await stream.next()).value?.kind, "subscribed");
      server.signalGroup(signal);
      const goodbye = (await stream.next()).value;
      assert.equal(goodbye?.kind, "goodbye", `round ${round}`);
      assert.equal(goodbye.code, 14);
      assert.equal((await stream.next()).done, true); // OK, not UNAVAILABLE
      const status = await server.exit(15_000);
      assert.equal(status.code, 0, server.stderr.join("\n"));
      assert.ok(
        server.stderr.some((l) => l.includes("Server stopped")),
        server.stderr.join("\n"),
      );
    }
  });

  Deno.test(`${signal} to deno task client's process group ends the subscription with exit 0 and the last cursor`, async () => {
    await using t = await startTestServer();
    for (let round = 0; round < ROUNDS; round++) {
      await using cli = spawnTask("client", [
        "--target",
        t.target,
        "--mode",
        "subscribe",
        "--topic",
        "news",
      ]);
      await cli.waitForLine("stdout", /^subscribed: /);
      cli.signalGroup(signal);
      const status = await cli.exit(15_000);
      assert.equal(status.code, 0, cli.stderr.join("\n"));
      assert.ok(
        cli.stderr.some((l) => /^last cursor: \w+:\d+$/.test(l)),
        cli.stderr.join("\n"),
      );
    }
  });
}

Deno.test("SIGHUP to deno task serve's process group without --token-file drains and stops (a closed terminal), exit 0", async () => {
  const { process: server, target } = await spawnServer(
    ["--grace", "10000"],
    undefined,
    true,
  );
  await using _ = server;
  using client = new GreeterClient(target);
  const stream = client.subscribe("ann", { topics: ["news"] });
  assert.equal((await stream.next()).value?.kind, "subscribed");
  server.signalGroup("SIGHUP");
  const goodbye = (await stream.next()).value;
  assert.equal(goodbye?.kind, "goodbye");
  assert.equal(goodbye.code, 14);
  assert.equal((await stream.next()).done, true);
  const status = await server.exit(15_000);
  assert.equal(status.code, 0, server.stderr.join("\n"));
  assert.ok(
    server.stderr.some((l) => l.includes("Server stopped")),
    server.stderr.join("\n"),
  );
});

Deno.test("SIGHUP to deno task client's process group ends the subscription with exit 0 and the last cursor", async () => {
  await using t = await startTestServer();
  await using cli = spawnTask("client", [
    "--target",
    t.target,
    "--mode",
    "subscribe",
    "--topic",
    "news",
  ]);
  await cli.waitForLine("stdout", /^subscribed: /);
  cli.signalGroup("SIGHUP");
  const status = await cli.exit(15_000);
  assert.equal(status.code, 0, cli.stderr.join("\n"));
  assert.ok(
    cli.stderr.some((l) => /^last cursor: \w+:\d+$/.test(l)),
    cli.stderr.join("\n"),
  );
  // It cancelled its call, and the server says so.
  await waitFor(
    "the leave",
    () => t.logs.some((l) => l.includes("is leaving.")),
  );
  assert.match(
    t.logs.find((l) => l.includes("is leaving."))!,
    /reason="client-cancelled"/,
  );
});
