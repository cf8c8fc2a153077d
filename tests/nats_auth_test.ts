// `greeter serve` on nats-servers that require credentials: docs/instances.md's
// configuration (a user with the narrowest permissions the instances need),
// and each kind of credentials an instance can give, as an operator runs it
// (deno task, its own process group).
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { ROOT } from "../testing/process.ts";
import {
  natsOperator,
  natsServerMissing,
  startNatsServer,
} from "../testing/nats.ts";
import {
  type Instance,
  listPresence,
  printedPayloads,
  publishTexts,
  resumeOn,
  serveRefused,
  startInstance,
  startSubscriber,
  stopInstance,
} from "../testing/instances.ts";

const ignore = natsServerMissing() !== undefined;

/**
 * What nats-server answers a client that gives no credentials, spoken in the
 * plain NATS protocol over a Deno socket (a refused nats.js connection can
 * leave its node socket to fail with ECONNRESET after the test has moved on).
 */
async function connectWithoutCredentials(url: string): Promise<string> {
  const { hostname, port } = new URL(url.replace(/^nats:/, "http:"));
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode('CONNECT {"verbose":false}\r\nPING\r\n'),
    );
    const decoder = new TextDecoder();
    let answer = "";
    const buffer = new Uint8Array(4096);
    const deadline = AbortSignal.timeout(10_000);
    while (!/-ERR|PONG/.test(answer) && !deadline.aborted) {
      const n = await conn.read(buffer);
      if (n === null) break;
      answer += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
    return answer;
  } finally {
    conn.close();
  }
}

/**
 * The nats-server configuration docs/instances.md gives, its address and store
 * left to the test's nats-server (checked to be there, then taken out).
 */
function readmeNatsConfig(): string {
  const page = Deno.readTextFileSync(join(ROOT, "docs/instances.md"));
  const block = page.match(/```text\n(# greeter-nats\.conf\n[^]*?)```/)?.[1];
  assert.ok(block, "docs/instances.md shows greeter-nats.conf in a text block");
  const address = "listen: 127.0.0.1:4222\n";
  const store = "jetstream { store_dir: nats-store }\n";
  assert.ok(block.includes(address) && block.includes(store), block);
  return block.replace(address, "").replace(store, "");
}

Deno.test({
  name:
    "docs/instances.md's nats-server configuration: instances with its credentials publish, subscribe, resume and list each other; without them no one can publish or delete the stream, nor can the instances' own user delete it",
  ignore,
  async fn() {
    const password = "f3e0c1b2a3d4e5f60718293a4b5c6d7e";
    const env = { GREETER_NATS_PASSWORD: password };
    await using nats = await startNatsServer({
      config: readmeNatsConfig(),
      monitor: true,
      env,
    });
    const url = `nats://greeter@127.0.0.1:${nats.port}`;
    // Started one at a time: the first makes the stream with its limits.
    await using a = await startInstance(url, { env });
    // A window of 2 events: a resume on B reads the stream's consumers.
    await using b = await startInstance(url, {
      env,
      extra: ["--replay-size", "2"],
    });
    for (const instance of [a, b]) {
      assert.match(
        instance.process.stderr.join("\n"),
        /auth="user and password"/,
      );
      assert.doesNotMatch(
        instance.process.stderr.join("\n"),
        new RegExp(`${password}|no credentials`),
      );
    }
    const [first] = await publishTexts(b.target, "news", "one");
    await publishTexts(a.target, "news", "two", "three", "four");
    assert.deepEqual(await resumeOn(b.target, "news", first, 3), [
      "two",
      "three",
      "four",
    ]);
    // Live on each instance, listed across both.
    await using onA = await startSubscriber("ann", a.target, "news");
    await using onB = await startSubscriber("bob", b.target, "news");
    await publishTexts(b.target, "news", "five");
    await onA.waitForLine("stdout", /payload="five"/);
    await onB.waitForLine("stdout", /payload="five"/);
    assert.deepEqual(
      (await listPresence(a.target, "news")).names.sort(),
      ["ann", "bob"],
    );
    assert.deepEqual(printedPayloads(onA), ["five"]);
    // Each instance's connection has a name of its own.
    const connz = await (await fetch(`${nats.monitorUrl}/connz`)).json();
    const names: string[] = connz.connections.map((c: { name: string }) =>
      c.name
    );
    assert.equal(names.length, 2, JSON.stringify(names));
    for (const name of names) assert.match(name, /^greeter \S+ \d+$/);
    assert.notEqual(names[0], names[1]);
    // A stranger cannot connect at all; the instances' user cannot delete.
    assert.match(
      await connectWithoutCredentials(nats.url),
      /Authorization Violation/,
    );
    const own = await connect({
      servers: [nats.url],
      user: "greeter",
      pass: password,
      inboxPrefix: "_INBOX_greeter",
    });
    try {
      const jsm = await jetstreamManager(own, { checkAPI: false });
      await assert.rejects(
        jsm.streams.delete("greeter"),
        /Permissions Violation for Publish to "\$JS\.API\.STREAM\.DELETE\.greeter"/,
      );
      await assert.rejects(
        jsm.streams.purge("greeter"),
        /Permissions Violation for Publish to "\$JS\.API\.STREAM\.PURGE\.greeter"/,
      );
    } finally {
      await own.close();
    }
    // Nothing the instances did was refused, and the stream is there still.
    assert.deepEqual(
      nats.process.stderr.filter((line) =>
        /Violation/.test(line) && !/STREAM\.(DELETE|PURGE)/.test(line) &&
        !/authentication error|Authorization Violation/.test(line)
      ),
      [],
    );
    assert.deepEqual(
      await publishTexts(a.target, "news", "six").then((c) => c.length),
      1,
    );
    onA.signalGroup("SIGINT");
    onB.signalGroup("SIGINT");
    await onA.exit();
    await onB.exit();
    await stopInstance(a);
    await stopInstance(b);
  },
});

Deno.test({
  name:
    "serve --broker with each kind of NATS credentials (the URL's user:password, GREETER_NATS_PASSWORD, a token, an nkey seed, a .creds file in operator mode); none warns and is refused; wrong ones are refused without printing the secret",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "greeter-nats-auth-" });
    const nkey = createUser();
    const operator = await natsOperator();
    const token = "0b1f2e3d4c5b6a79881726354a5b6c7d";
    const password = "p@ss:w,rd/1";
    const files = {
      token: join(dir, "token"),
      nkey: join(dir, "nkey"),
      creds: join(dir, "user.creds"),
      strangerCreds: join(dir, "stranger.creds"),
    };
    await Deno.writeTextFile(files.token, `${token}\n`);
    await Deno.writeTextFile(
      files.nkey,
      `${new TextDecoder().decode(nkey.getSeed())}\n`,
    );
    await Deno.writeFile(files.creds, await operator.creds("greeter"));
    try {
      await using users = await startNatsServer({
        config: `authorization { users: [
          { user: greeter, password: "${password}" }
          { nkey: ${nkey.getPublicKey()} }
        ] }\n`,
      });
      await using tokens = await startNatsServer({
        config: `authorization { token: "${token}" }\n`,
      });
      await using operated = await startNatsServer({ config: operator.config });
      const host = (nats: { port: number }) => `127.0.0.1:${nats.port}`;
      const encoded = encodeURIComponent(password);
      const started: Instance[] = [];
      try {
        const starts = await Promise.allSettled([
          startInstance(`nats://greeter:${encoded}@${host(users)}`),
          startInstance(`nats://greeter@${host(users)}`, {
            env: { GREETER_NATS_PASSWORD: password },
            extra: ["--nats-stream", "other"],
          }),
          startInstance(`nats://${host(users)}`, {
            extra: ["--nats-nkey-file", files.nkey, "--nats-stream", "third"],
          }),
          startInstance(`nats://${host(tokens)}`, {
            extra: ["--nats-token-file", files.token],
          }),
          startInstance(`nats://${host(operated)}`, {
            extra: ["--nats-creds-file", files.creds],
          }),
        ]);
        for (const start of starts) {
          if (start.status === "fulfilled") started.push(start.value);
        }
        for (const start of starts) {
          if (start.status === "rejected") throw start.reason;
        }
        const kinds = [
          "user and password",
          "user and password",
          "nkey",
          "token",
          "credentials file",
        ];
        for (const [i, instance] of started.entries()) {
          // Not `deno task`'s echo of the command line, which shows the
          // URL as given (as ps does: hence GREETER_NATS_PASSWORD).
          const log = instance.process.stderr.filter((line) =>
            !line.startsWith("Task serve ")
          ).join("\n");
          assert.match(log, new RegExp(`auth="${kinds[i]}"`));
          assert.doesNotMatch(log, /no credentials/);
          for (const secret of [password, encoded, token]) {
            assert.ok(!log.includes(secret), `${kinds[i]}: ${log}`);
          }
          const [cursor] = await publishTexts(instance.target, "news", "hi");
          assert.match(cursor, /^[0-9a-f]{16}:\d+$/);
        }
        await Promise.all(started.map(stopInstance));
      } finally {
        for (const instance of started) await instance[Symbol.asyncDispose]();
      }
      // None: a warning, then nats-server's refusal, saying what to give.
      const none = await serveRefused(`nats://${host(users)}`);
      assert.equal(none.code, 1, none.stderr);
      assert.match(
        none.stderr,
        /WARN NATS at 127\.0\.0\.1:\d+ is used with no credentials: anyone who can reach nats-server may publish events, fake ticks and presence, and delete the event stream/,
      );
      assert.match(
        none.stderr,
        /^error: Cannot connect to NATS at .*Authorization Violation \(nats-server wants credentials: give --nats-creds-file/m,
      );
      // Wrong ones: refused, the secret in no line.
      await Deno.writeFile(
        files.strangerCreds,
        await (await natsOperator()).creds("stranger"),
      );
      const wrong = await Promise.all([
        serveRefused(`nats://greeter:wrong${encoded}@${host(users)}`),
        serveRefused(`nats://${host(operated)}`, [
          "--nats-creds-file",
          files.strangerCreds,
        ]),
        serveRefused(`nats://${host(tokens)}`, [
          "--nats-nkey-file",
          files.token,
        ]),
      ]);
      for (const [i, refused] of wrong.entries()) {
        // A file that holds no seed is a setting to fix (2), not the engine.
        assert.equal(refused.code, i === 2 ? 2 : 1, refused.stderr);
        const said = refused.stderr.split("\n").filter((line) =>
          !line.startsWith("Task serve ")
        ).join("\n");
        for (const secret of [password, encoded, token]) {
          assert.ok(!said.includes(secret), said);
        }
      }
      assert.match(
        wrong[0].stderr,
        /^error: Cannot connect to NATS at 127\.0\.0\.1:\d+: Authorization Violation \(nats-server refused the user and password given/m,
      );
      assert.match(
        wrong[1].stderr,
        /^error: Cannot connect to NATS at .*\(nats-server refused the credentials file given/m,
      );
      assert.match(
        wrong[2].stderr,
        /^error: The NATS nkey seed file ".*token" holds no user seed/m,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
