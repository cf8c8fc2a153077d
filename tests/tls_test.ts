import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { ConfigError, RpcError } from "../lib/errors.ts";
import { startServer } from "../lib/server/server.ts";
import { runClient, spawnServer } from "../testing/process.ts";
import { startTestServer, waitFor } from "../testing/server.ts";
import { makeTestPki, OPENSSL_MISSING } from "../testing/tls.ts";

if (OPENSSL_MISSING) console.warn(`tls_test.ts ignored: ${OPENSSL_MISSING}`);
const ignore = OPENSSL_MISSING !== undefined;

const unavailable = (e: RpcError) => e.code === "UNAVAILABLE";

Deno.test({
  name:
    "TLS: a client trusting the CA talks to the server; a plaintext one cannot",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    await using t = await startTestServer({
      tls: { cert: pki.read("serverCert"), key: pki.read("serverKey") },
    });
    const target = `localhost:${t.server.port}`;
    using client = new GreeterClient(target, { tls: { ca: pki.read("ca") } });
    assert.equal(await client.sayHello("secure"), "Hello, secure!");
    const stream = client.subscribe("secure", { topics: ["news"] });
    assert.equal((await stream.next()).value?.kind, "subscribed");
    await stream.return(undefined);
    using plain = new GreeterClient(target);
    await assert.rejects(plain.sayHello("x", { timeoutMs: 3000 }), RpcError);
    using stranger = new GreeterClient(target, {
      tls: { ca: pki.read("otherCert") },
    });
    await assert.rejects(
      stranger.sayHello("x", { timeoutMs: 3000 }),
      unavailable,
    );
  },
});

Deno.test({
  name: "mTLS: only clients with a certificate from the client CA get in",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    await using t = await startTestServer({
      tls: {
        cert: pki.read("serverCert"),
        key: pki.read("serverKey"),
        clientCa: pki.read("ca"),
      },
    });
    const target = `localhost:${t.server.port}`;
    const ca = pki.read("ca");
    using member = new GreeterClient(target, {
      tls: { ca, cert: pki.read("clientCert"), key: pki.read("clientKey") },
    });
    assert.equal(await member.sayHello("member"), "Hello, member!");
    using anonymous = new GreeterClient(target, { tls: { ca } });
    await assert.rejects(
      anonymous.sayHello("x", { timeoutMs: 3000 }),
      unavailable,
    );
    using impostor = new GreeterClient(target, {
      tls: { ca, cert: pki.read("otherCert"), key: pki.read("otherKey") },
    });
    await assert.rejects(
      impostor.sayHello("x", { timeoutMs: 3000 }),
      unavailable,
    );
    // Refused handshakes: a warn line per address per 10 s, each at debug.
    const refused = () =>
      t.logs.filter((l) => l.includes("Refused a TLS handshake"));
    await waitFor("both refusals logged", () => refused().length >= 2);
    const warns = refused().filter((l) => l.includes(" WARN "));
    assert.equal(warns.length, 1, refused().join("\n"));
    assert.match(
      warns[0],
      /WARN Refused a TLS handshake peer="127\.0\.0\.1:\d+" reason="[^"]*certificate/,
    );
    assert.ok(refused().slice(1).every((l) => l.includes(" DEBUG ")));
  },
});

Deno.test({
  name:
    "TLS material that is not PEM, or a key that does not match, stops the start with the reason",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    await assert.rejects(
      startServer({
        host: "127.0.0.1",
        port: 0,
        tls: {
          cert: new TextEncoder().encode("nope"),
          key: pki.read("serverKey"),
        },
      }),
      /TLS certificate is not PEM/,
    );
    await assert.rejects(
      startServer({
        host: "127.0.0.1",
        port: 0,
        tls: { cert: pki.read("serverCert"), key: pki.read("otherKey") },
      }),
      (e: Error) =>
        e instanceof ConfigError &&
        /not the certificate's private key/.test(e.message),
    );
  },
});

Deno.test({
  name: "greeter serve --tls-cert/--tls-key and client --tls-ca, end to end",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    const { process, port } = await spawnServer([
      "--tls-cert",
      pki.files.serverCert,
      "--tls-key",
      pki.files.serverKey,
      "--tls-client-ca",
      pki.files.ca,
    ]);
    await using _ = process;
    const target = `localhost:${port}`;
    const ok = await runClient([
      "you",
      "--mode",
      "hello",
      "--target",
      target,
      "--tls-ca",
      pki.files.ca,
      "--tls-cert",
      pki.files.clientCert,
      "--tls-key",
      pki.files.clientKey,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "Greeter client received: Hello, you!\n");
    const refused = await runClient([
      "--mode",
      "hello",
      "--target",
      target,
      "--tls-ca",
      pki.files.ca,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: .*UNAVAILABLE/);
    const missing = await runClient(["--tls-ca", `${pki.dir}/absent.pem`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot read TLS CA file ".*absent\.pem"/);
  },
});

Deno.test({
  name:
    "TLS to an IP target: the certificate's IP name is checked, and a certificate without it is refused",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    await using t = await startTestServer({
      tls: { cert: pki.read("serverCert"), key: pki.read("serverKey") },
    });
    using client = new GreeterClient(t.target, {
      tls: { ca: pki.read("ca") },
    });
    assert.equal(await client.sayHello("ip"), "Hello, ip!");
    // Trusted (it is its own CA), but it names neither 127.0.0.1 nor anything.
    await using nameless = await startTestServer({
      tls: { cert: pki.read("otherCert"), key: pki.read("otherKey") },
    });
    using wary = new GreeterClient(nameless.target, {
      tls: { ca: pki.read("otherCert") },
    });
    await assert.rejects(
      wary.sayHello("x", { timeoutMs: 3000 }),
      (e: RpcError) =>
        e.code === "UNAVAILABLE" && /IP: 127\.0\.0\.1/.test(e.message),
    );
    const cli = await runClient([
      "you",
      "--mode",
      "hello",
      "--target",
      t.target,
      "--tls-ca",
      pki.files.ca,
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, "Greeter client received: Hello, you!\n");
  },
});
