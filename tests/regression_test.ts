import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client.ts";
import { spawnServer } from "./_support/process.ts";

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
