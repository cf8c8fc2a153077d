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
    assert.equal(refused.code, 64 + 14);
    // The server's TLS alert, the write it cut short, or (when the alert
    // closed the session before grpc-js saw an error) no cause at all.
    assert.match(
      refused.stderr,
      /^error: .*UNAVAILABLE: .*(write EPIPE|CertificateRequired|Failed to connect)\n/,
    );
    // The cause people meet, named.
    assert.match(
      refused.stderr,
      /^hint: the server likely wants a client certificate \(mTLS\): give --tls-cert and --tls-key$/m,
    );
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

Deno.test({
  name:
    "a client at the wrong kind of port is told so: TLS to plaintext, plaintext to TLS, an unknown CA; with --output json as a JSON line, exit 64 + the status",
  ignore,
  async fn() {
    await using pki = await makeTestPki();
    const { process: secure, port: tlsPort } = await spawnServer([
      "--tls-cert",
      pki.files.serverCert,
      "--tls-key",
      pki.files.serverKey,
    ]);
    await using _secure = secure;
    const { process: plain, port: plainPort } = await spawnServer();
    await using _plain = plain;
    const hello = (port: number, ...flags: string[]) =>
      runClient([
        "--mode",
        "hello",
        "--target",
        `localhost:${port}`,
        ...flags,
      ]);
    for (
      const [result, hint] of [
        [
          await hello(plainPort, "--tls-ca", pki.files.ca),
          /^hint: TLS to a port that speaks plaintext/m,
        ],
        [
          await hello(tlsPort),
          /^hint: plaintext to a port that likely speaks TLS/m,
        ],
        [
          await hello(tlsPort, "--tls"),
          /^hint: the server's certificate is not one this client trusts: give --tls-ca/m,
        ],
      ] as const
    ) {
      assert.equal(result.code, 64 + 14, result.stderr);
      assert.match(result.stderr, /^error: localhost:\d+: UNAVAILABLE: /);
      assert.match(result.stderr, hint);
      assert.doesNotMatch(result.stderr, /\(\d{4}-\d\d-\d\dT/); // no grpc-js timestamp
    }
    const json = await hello(tlsPort, "--output", "json");
    assert.equal(json.code, 64 + 14);
    assert.equal(json.stdout, "");
    const error = JSON.parse(json.stderr);
    assert.deepEqual(
      { ...error, message: undefined },
      {
        kind: "error",
        message: undefined,
        code: "UNAVAILABLE",
        status: 14,
        target: `localhost:${tlsPort}`,
        hint:
          "plaintext to a port that likely speaks TLS: give --tls-ca (or --tls for a certificate the system trusts)",
        exit_code: 78,
      },
    );
    assert.match(error.message, /^localhost:\d+: UNAVAILABLE: /);
  },
});
