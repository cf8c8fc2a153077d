import assert from "node:assert/strict";
import { join } from "node:path";
import { startupWarnings } from "../lib/cli/startup_warnings.ts";
import { isLoopback } from "../lib/wire/address.ts";
import { docBlocks } from "../testing/docs.ts";
import {
  LineProcess,
  ROOT,
  spawnServer,
  taskArgs,
} from "../testing/process.ts";

Deno.test("startupWarnings() names a Deno other than 2.9.3, and the ones that abort", () => {
  const facts = { host: "127.0.0.1", tls: false };
  assert.deepEqual(startupWarnings({ ...facts, denoVersion: "2.9.3" }), []);
  const [aborts] = startupWarnings({ ...facts, denoVersion: "2.9.5" });
  assert.match(
    aborts,
    /^Deno 2\.9\.5 aborts the server inside nghttp2 .*\(denoland\/deno#36788\): run Deno 2\.9\.3$/,
  );
  const [other] = startupWarnings({ ...facts, denoVersion: "2.10.0" });
  assert.match(
    other,
    /^Deno 2\.10\.0 is not the Deno this server is tested on \(2\.9\.3\)/,
  );
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "[::1]"]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (const host of ["::", "0.0.0.0", "10.0.0.1", "example.com"]) {
    assert.equal(isLoopback(host), false, host);
  }
});

Deno.test("startupWarnings() names NATS used with no credentials, and only then", () => {
  const facts = { host: "127.0.0.1", tls: false, denoVersion: "2.9.3" };
  assert.deepEqual(
    startupWarnings({
      ...facts,
      nats: { servers: "127.0.0.1:4222", credentials: true },
    }),
    [],
  );
  assert.deepEqual(
    startupWarnings({
      ...facts,
      nats: { servers: "127.0.0.1:4222", credentials: false },
    }),
    [
      "NATS at 127.0.0.1:4222 is used with no credentials: anyone who can reach nats-server may publish events, fake ticks and presence, and delete the event stream; run nats-server with authorization (docs/instances.md) and give --nats-creds-file, --nats-nkey-file, a user and password, or --nats-token-file",
    ],
  );
});

/** The WARN lines of a server started with `args`, once it listens. */
async function startWarnings(args: string[]): Promise<string[]> {
  const server = new LineProcess([
    ...taskArgs("serve"),
    "--port",
    "0",
    ...args,
  ]);
  await using _ = server;
  // Warnings come before the start line.
  await server.waitForLine("stderr", /Starting server on /);
  return server.stderr.filter((l) => l.includes(" WARN "));
}

Deno.test("greeter serve warns at start: plaintext with no tokens on a non-loopback address", async () => {
  const warnings = await startWarnings(["--host", "0.0.0.0"]);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(
    warnings[0],
    /WARN Plaintext with no --token-file on "0\.0\.0\.0", which is not loopback: anyone who can reach it may publish and subscribe; bind --host 127\.0\.0\.1, or set --token-file \(with TLS\)$/,
  );
  const { process: quiet } = await spawnServer();
  await using _ = quiet;
  assert.deepEqual(quiet.stderr.filter((l) => l.includes(" WARN ")), []);
});

Deno.test("greeter serve warns at start: a token file others can read, a short token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "tokens.txt");
    await Deno.writeTextFile(file, "short\n0123456789abcdef0123\n");
    await Deno.chmod(file, 0o644);
    const warnings = await startWarnings([
      "--host",
      "127.0.0.1",
      "--token-file",
      file,
    ]);
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.ok(
      warnings[0].endsWith(
        `WARN Token file "${file}" can be read or changed by other users (mode 0644): chmod 600 it`,
      ),
      warnings[0],
    );
    assert.ok(
      warnings[1].endsWith(
        `WARN 1 token(s) in "${file}" are shorter than 16 bytes and easy to guess: make them with "openssl rand -hex 32"`,
      ),
      warnings[1],
    );
    assert.ok(
      !warnings.some((l) =>
        l.includes("short\n") || l.includes("0123456789abcdef0123")
      ),
    );
    await Deno.chmod(file, 0o600);
    await Deno.writeTextFile(file, "0123456789abcdef0123\n");
    assert.deepEqual(
      await startWarnings(["--host", "127.0.0.1", "--token-file", file]),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the files the documentation's TLS and token recipes write are ignored by git", async () => {
  const written = new Set<string>();
  for (const block of docBlocks("sh")) {
    for (
      const [, path] of block.text.matchAll(
        /(?:-keyout|-out|>)\s+([\w./-]+)/g,
      )
    ) written.add(path);
    if (block.text.includes("-CAcreateserial")) written.add("ca.srl");
  }
  for (
    const path of ["ca.key", "server.key", "client.key", "tokens.txt", "ca.srl"]
  ) {
    assert.ok(written.has(path), `the recipes no longer write ${path}?`);
  }
  for (const path of written) {
    const { code } = await new Deno.Command("git", {
      args: ["check-ignore", "-q", path],
      cwd: ROOT,
    }).output();
    assert.equal(
      code,
      0,
      `git does not ignore ${path}, which the documentation writes`,
    );
  }
});
