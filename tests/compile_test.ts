import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LineProcess, ROOT } from "../testing/process.ts";

// `deno compile` needs denort, fetched from Deno's download host unless
// DENORT_BIN names a local copy. Where neither is possible the test is
// ignored, and says why.
const denort = Deno.env.get("DENORT_BIN");
const reason = !denort
  ? "DENORT_BIN is not set and Deno's download host is unreachable here"
  : !existsSync(denort)
  ? `DENORT_BIN=${denort} does not exist`
  : undefined;
if (reason) console.warn(`compile_test.ts ignored: ${reason}`);

Deno.test({
  name:
    "deno task compile builds dist/greeter that serves (the console too) and calls from any directory",
  ignore: reason !== undefined,
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
    }).output();
    assert.ok(build.success, new TextDecoder().decode(build.stderr));
    const greeter = join(ROOT, "dist", "greeter");
    const elsewhere = await Deno.makeTempDir();
    try {
      await using server = new LineProcess(
        [
          "serve",
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--http-port",
          "0",
          "--interval",
          "50",
        ],
        { command: greeter, cwd: elsewhere },
      );
      const [, port] = await server.waitForLine(
        "stderr",
        /Starting server on 127\.0\.0\.1:(\d+)/,
      );
      // The console, from the files the binary carries (--include).
      const [, httpPort] = await server.waitForLine(
        "stderr",
        /HTTP on http:\/\/127\.0\.0\.1:(\d+)/,
      );
      for (const path of ["/", "/console/console.js"]) {
        const response = await fetch(`http://127.0.0.1:${httpPort}${path}`);
        const body = await response.text();
        assert.equal(response.status, 200, `${path}: ${body}`);
        assert.ok(body.length > 100, `${path}: ${body}`);
      }
      await using client = new LineProcess(
        ["client", "you", "--target", `127.0.0.1:${port}`],
        { command: greeter, cwd: elsewhere },
      );
      assert.equal((await client.exit()).code, 0, client.stderr.join("\n"));
      assert.equal(client.stdout.at(-1), "goodbyeGreetingMessage received:");
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});
