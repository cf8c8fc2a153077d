import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { spawnServer, spawnSubscriberPool } from "../testing/process.ts";
import { waitFor } from "../testing/server.ts";

// Deno 2.9.4 to 2.9.6 abort the whole server process inside nghttp2 when a
// client closes its channel after a few hundred calls (denoland/deno#36788).
// The project pins 2.9.3; this fails on a runtime that has the bug.
Deno.test("the server survives a channel closed after hundreds of calls, three times", async () => {
  const { process: server, target } = await spawnServer();
  await using _ = server;
  let exited = false;
  server.child.status.then(() => exited = true);
  for (let round = 0; round < 3; round++) {
    const client = new GreeterClient(target);
    for (let batch = 0; batch < 30; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) => client.sayHello(`r${round}c${i}`)),
      );
      assert.equal(replies[9], `Hello, r${round}c9!`);
    }
    client.close();
  }
  using after = new GreeterClient(target);
  assert.equal(await after.sayHello("still there"), "Hello, still there!");
  assert.equal(exited, false, server.stderr.join("\n"));
});

// A connection that dies mid-stream (its process killed) while the server is
// writing to it: once, this crashed the server, a write path touching the
// socket after Deno's node:http2 had let go of it.
Deno.test("the server survives subscriber processes killed while it writes to them, eight times", async () => {
  const { process: server, target } = await spawnServer(["--interval", "10"]);
  await using _ = server;
  let exited = false;
  server.child.status.then(() => exited = true);
  using client = new GreeterClient(target);
  for (let round = 0; round < 8 && !exited; round++) {
    await using pool = await spawnSubscriberPool(target, 300, 3);
    await waitFor("ticks flowing to every subscriber", async () => {
      if (exited) return true; // said below, with the server's log
      const { subscribers } = await client.listSubscribers({ limit: 1000 });
      return subscribers.length === 300 &&
        subscribers.every((s) => s.delivered >= 2);
    });
    pool.child.kill("SIGKILL");
    await pool.child.status;
    await waitFor(
      "the killed subscribers to be removed",
      async () =>
        exited || (await client.listSubscribers({ limit: 1 })).total === 0,
      10_000,
    );
  }
  assert.equal(exited, false, server.stderr.join("\n"));
  assert.equal(await client.sayHello("still there"), "Hello, still there!");
});
