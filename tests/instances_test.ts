// Several `greeter serve` instances on one NATS JetStream stream, run and
// signalled as an operator runs them (deno task, its own process group), with
// the CLI subscriber a user runs.
import assert from "node:assert/strict";
import { waitFor } from "../testing/server.ts";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { GreeterClient } from "../lib/client/client.ts";
import {
  freePort,
  type LineProcess,
  runClient,
  spawnTask,
} from "../testing/process.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { makeTestPki, OPENSSL_MISSING } from "../testing/tls.ts";
import {
  listPresence,
  printedPayloads,
  publishTexts,
  resumeOn,
  serveRefused,
  startInstance as instance,
  startSubscriber,
  stopInstance,
} from "../testing/instances.ts";

const ignore = natsServerMissing() !== undefined;

Deno.test({
  name:
    "two instances on one stream, one over two workers: publish on either, a cursor from one resumes exactly on the other, one tick per interval, one consumer per process",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url, { extra: ["--workers", "2"] });
    await using b = await instance(nats.url);
    const [first] = await publishTexts(b.target, "news", "one");
    await publishTexts(a.target, "news", "two", "three");
    // A subscriber that read "one" on A moves to B with its cursor.
    assert.deepEqual(await resumeOn(b.target, "news", first, 2), [
      "two",
      "three",
    ]);
    // And on A's workers, from the one window they share.
    assert.deepEqual(await resumeOn(a.target, "news", first, 2), [
      "two",
      "three",
    ]);
    // Both instances tick; the stream holds one tick per interval.
    const ticks = await runClient([
      "t",
      "--target",
      a.target,
      "--mode",
      "subscribe",
      "--topic",
      "tick",
      "--count",
      "3",
      "--output",
      "json",
    ]);
    assert.equal(ticks.code, 0, ticks.stderr);
    const seqs = ticks.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .filter((m) => m.kind === "event").map((m) =>
        Number(m.cursor.split(":")[1])
      );
    assert.equal(seqs.length, 3);
    assert.deepEqual(
      seqs.slice(1).map((seq, i) => seq - seqs[i]),
      [1, 1],
      `one tick per interval in the stream, not one per instance: ${seqs}`,
    );
    // Each process reads the stream once, however many workers it has.
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor(
        "one reader per process",
        async () =>
          (await jsm.streams.info("greeter")).state.consumer_count === 2,
      );
    } finally {
      await nc.close();
    }
    await stopInstance(a);
    await stopInstance(b);
    // Each counts what it published itself, not every instance's events.
    for (const server of [a, b]) {
      const line = server.process.stderr.find((l) =>
        l.includes("Server stopped")
      )!;
      const count = (name: string) =>
        Number(line.match(` ${name}=(\\d+)`)?.[1]);
      assert.ok(count("published") < count("received"), line);
    }
  },
});

Deno.test({
  name:
    "a rolling restart of both instances under a CLI subscriber: resumed each time, nothing missed, nothing twice",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    let a = await instance(nats.url);
    let b = await instance(nats.url);
    await using subscriber = spawnTask("client", [
      "sub",
      "--target",
      a.target,
      "--mode",
      "subscribe",
      "--topic",
      "news",
    ]);
    try {
      await subscriber.waitForLine("stdout", /^subscribed: /);
      await publishTexts(b.target, "news", "p1", "p2");
      // A (the subscriber's) restarts while B takes publishes.
      await stopInstance(a);
      await publishTexts(b.target, "news", "p3", "p4");
      a = await instance(nats.url, { port: a.port });
      await subscriber.waitForLine("stdout", /resumed$/, 20_000);
      await publishTexts(b.target, "news", "p5");
      // Then B restarts while A takes publishes.
      await stopInstance(b);
      await publishTexts(a.target, "news", "p6");
      b = await instance(nats.url, { port: b.port });
      await publishTexts(b.target, "news", "p7");
      await subscriber.waitForLine("stdout", /payload="p7"$/, 20_000);
      assert.deepEqual(printedPayloads(subscriber), [
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
        "p6",
        "p7",
      ]);
      assert.ok(
        !subscriber.stdout.some((l) => / not resumed/.test(l)),
        subscriber.stdout.join("\n"),
      );
      subscriber.signalGroup("SIGINT");
      assert.equal((await subscriber.exit()).code, 0);
    } finally {
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name:
    "serve --broker with no nats-server there: with --broker-wait 0 it fails at start with the reason (exit 1); with --broker-wait 1500 it serves, then gives up saying so (exit 1); NATS flags without --broker exit 2",
  async fn() {
    const refused = await serveRefused("nats://127.0.0.1:1", [
      "--broker-wait",
      "0",
    ]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^error: Cannot connect to NATS at 127\.0\.0\.1:1: connection refused$/m,
    );
    assert.doesNotMatch(refused.stderr, /Starting server/);
    const bounded = await serveRefused("nats://127.0.0.1:1", [
      "--broker-wait",
      "1500",
    ]);
    assert.equal(bounded.code, 1);
    assert.match(bounded.stderr, /Starting server on /);
    assert.match(
      bounded.stderr,
      /^error: Cannot reach the event stream \(NATS at 127\.0\.0\.1:1\) within 1500 ms \(--broker-wait\); gave up after \d+ attempts$/m,
    );
    await using typo = spawnTask("serve", ["--nats-stream", "s"]);
    assert.equal((await typo.exit(20_000)).code, 2);
    assert.match(
      typo.stderr.join("\n"),
      /--nats-stream applies to --broker nats:\/\/HOST:PORT/,
    );
  },
});

Deno.test({
  name:
    "serve --broker on a nats-server without JetStream (Debian's own service) fails at start naming the likely cause (exit 1)",
  ignore,
  async fn() {
    await using plain = await startNatsServer({ jetstream: false });
    const refused = await serveRefused(plain.url, ["--broker-wait", "0"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^error: .*jetstream (is )?not enabled.* \(the nats-server at 127\.0\.0\.1:\d+ runs without JetStream: start it with -js, or jetstream \{\} in its configuration; on Debian, the package's own nats-server\.service listens on 127\.0\.0\.1:4222 without it: see docs\/instances\.md\)$/im,
    );
  },
});

Deno.test({
  name:
    "serve --nats-tls-*: events go over TLS to a nats-server that requires it, with a client certificate where it verifies them; no TLS offered, an untrusted certificate or a missing client certificate is refused at start (exit 1)",
  ignore: ignore || OPENSSL_MISSING !== undefined,
  async fn() {
    await using pki = await makeTestPki();
    const tls = { cert: pki.files.serverCert, key: pki.files.serverKey };
    await using secure = await startNatsServer({ tls });
    await using a = await instance(secure.url, {
      extra: ["--nats-tls-ca", pki.files.ca],
    });
    const [cursor] = await publishTexts(a.target, "news", "over tls");
    assert.match(cursor, /^[0-9a-f]{16}:\d+$/); // the server refuses plaintext
    await stopInstance(a);

    // nats-server's verify: a client certificate its CA signed, or nothing.
    await using verifying = await startNatsServer({
      tls: { ...tls, verify: pki.files.ca },
    });
    await using b = await instance(verifying.url, {
      extra: [
        "--nats-tls-ca",
        pki.files.ca,
        "--nats-tls-cert",
        pki.files.clientCert,
        "--nats-tls-key",
        pki.files.clientKey,
      ],
    });
    await publishTexts(b.target, "news", "with a client certificate");
    await stopInstance(b);

    await using plain = await startNatsServer();
    const refusals: Array<[string, string[], RegExp]> = [
      // Plaintext only: refused before any credential is sent.
      [
        plain.url,
        ["--nats-tls-ca", pki.files.ca],
        /^error: Cannot connect to NATS at 127\.0\.0\.1:\d+: server does not support 'tls'$/m,
      ],
      // A certificate its CA did not sign.
      [secure.url, ["--nats-tls-ca", pki.files.otherCert], /certificate/],
      // No client certificate for a server that verifies them.
      [
        verifying.url,
        ["--nats-tls-ca", pki.files.ca],
        /^error: Cannot connect to NATS at .* \(if nats-server verifies client certificates, give --nats-tls-cert and --nats-tls-key\)$/m,
      ],
    ];
    for (const [url, flags, reason] of refusals) {
      const refused = await serveRefused(url, flags);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, reason);
    }
  },
});

const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health");

/**
 * A service's health, as a probe asks it: `""` (Kubernetes' liveness
 * default), `helloworld.Greeter` (readiness).
 */
function healthOf(target: string, service: string): Promise<string> {
  const client = new HealthClient(target, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) =>
    client.Check(
      { service },
      (error: Error | null, reply: { status: string }) =>
        error ? reject(error) : resolve(reply.status),
    )
  ).finally(() => client.close());
}

Deno.test({
  name:
    "serve started 5 s before nats-server: it serves at once (SayHello; liveness SERVING, readiness NOT_SERVING; Publish and Subscribe UNAVAILABLE saying why), and is ready without a restart once nats-server is up",
  ignore,
  async fn() {
    const port = freePort();
    const started = Date.now();
    await using server = await instance(`nats://127.0.0.1:${port}`);
    await server.process.waitForLine(
      "stderr",
      /WARN Event stream not reached: serving without it/,
    );
    assert.equal(await healthOf(server.target, ""), "SERVING");
    assert.equal(
      await healthOf(server.target, "helloworld.Greeter"),
      "NOT_SERVING",
    );
    using client = new GreeterClient(server.target);
    assert.equal(await client.sayHello("early"), "Hello, early!");
    const why =
      `the event stream \\(NATS at 127\\.0\\.0\\.1:${port}\\) is not reached yet`;
    await assert.rejects(
      client.publish("news", new TextEncoder().encode("early")),
      new RegExp(`UNAVAILABLE: Cannot publish on "news": ${why}`),
    );
    await assert.rejects(
      client.subscribe("early", { topics: ["news"] }).next(),
      new RegExp(`UNAVAILABLE: Cannot subscribe "early": ${why}`),
    );
    // The engine comes second, as under docker-compose or Kubernetes.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, started + 5_000 - Date.now()))
    );
    await using _nats = await startNatsServer({ port });
    await waitFor(
      "readiness",
      async () =>
        await healthOf(server.target, "helloworld.Greeter") === "SERVING",
      NATS_WAIT_MS,
    );
    await server.process.waitForLine(
      "stderr",
      /INFO Event stream reached: ready/,
    );
    const stream = client.subscribe("late", { topics: ["news"] });
    assert.equal((await stream.next()).value?.kind, "subscribed");
    await publishTexts(server.target, "news", "late");
    const event = (await stream.next()).value;
    assert.equal(
      event?.kind === "event" && new TextDecoder().decode(event.payload),
      "late",
    );
    await stream.return(undefined);
    assert.equal(await healthOf(server.target, ""), "SERVING");
    await stopInstance(server);
  },
});

Deno.test({
  name:
    "serve --nats-stream: a new stream has a description and a largest message from --max-publish-size; an existing one whose subjects catch the instances' announcements (NAME.>) is refused at start; other storage or subjects are warned about",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    const nc = await connect({ servers: [nats.url] });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "caught", subjects: ["caught.>"] });
      await jsm.streams.add({
        name: "other",
        subjects: ["other.events", "other.extra"],
        storage: StorageType.Memory,
      });
      const caught = await serveRefused(nats.url, ["--nats-stream", "caught"]);
      assert.equal(caught.code, 1, caught.stderr);
      assert.match(
        caught.stderr,
        /^error: Cannot use JetStream stream "caught" at .*: the stream's subjects \(caught\.>\) catch the instances' own announcements on caught\.directory and caught\.directory\.alive \(by caught\.>\), which subscribers would receive as events: give the stream the subject caught\.events only/m,
      );
      await using other = await instance(nats.url, {
        extra: ["--nats-stream", "other"],
      });
      assert.match(
        other.process.stderr.join("\n"),
        /WARN Event stream exists with other settings; using them as they are subjects="other\.events,other\.extra \(asked other\.events\)" storage="memory \(asked file\)"/,
      );
      await using fresh = await instance(nats.url, {
        extra: ["--nats-stream", "fresh", "--max-publish-size", "1000"],
      });
      const { config } = await jsm.streams.info("fresh");
      assert.match(config.description ?? "", /greeter/);
      assert.equal(config.max_msg_size, 1000 + 512);
      assert.deepEqual(config.subjects, ["fresh.events"]);
      assert.doesNotMatch(fresh.process.stderr.join("\n"), /other settings/);
      await stopInstance(other);
      await stopInstance(fresh);
    } finally {
      await nc.close();
    }
  },
});

/** How long the instance tests wait for a NATS-driven change. */
const NATS_WAIT_MS = 15_000;

Deno.test({
  name:
    'while the event stream\'s engine is away, readiness (helloworld.Greeter) is NOT_SERVING and liveness ("") stays SERVING; readiness is SERVING again after; publishes fail with UNAVAILABLE meanwhile',
  ignore,
  async fn() {
    const storeDir = await Deno.makeTempDir({ prefix: "greeter-nats-" });
    let nats = await startNatsServer({ storeDir });
    const port = nats.port;
    try {
      await using server = await instance(nats.url);
      const ready = () => healthOf(server.target, "helloworld.Greeter");
      const live = () => healthOf(server.target, "");
      assert.equal(await ready(), "SERVING");
      assert.equal(await live(), "SERVING");
      await nats.stop();
      await waitFor(
        "NOT_SERVING",
        async () => await ready() === "NOT_SERVING",
        NATS_WAIT_MS,
      );
      // A liveness probe must not restart an instance for an outage a
      // restart cannot mend.
      assert.equal(await live(), "SERVING");
      await server.process.waitForLine("stderr", /WARN Event stream lost/);
      await assert.rejects(
        publishTexts(server.target, "news", "lost?"),
        /UNAVAILABLE: Cannot publish on "news": the event stream \(NATS\)/,
      );
      nats = await startNatsServer({ storeDir, port });
      await waitFor(
        "SERVING",
        async () => await ready() === "SERVING",
        NATS_WAIT_MS,
      );
      assert.equal(await live(), "SERVING");
      await server.process.waitForLine("stderr", /INFO Event stream regained/);
      await waitFor(
        "a publish to be taken",
        () =>
          publishTexts(server.target, "news", "back").then(
            () => true,
            () => false,
          ),
        NATS_WAIT_MS,
      );
      await stopInstance(server);
    } finally {
      await nats.stop();
      await Deno.remove(storeDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serve --reuse-port: two processes share one port, connections spread over both, one stream behind them",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url, { extra: ["--reuse-port"] });
    await using b = await instance(nats.url, {
      port: a.port,
      extra: ["--reuse-port"],
    });
    assert.equal(b.port, a.port);
    // Separate connections, as separate clients make them.
    const names = Array.from({ length: 16 }, (_, i) => `c${i}`);
    const subscribed = await Promise.all(names.map(async (name) => {
      using client = new GreeterClient(a.target, {
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      });
      const stream = client.subscribe(name, { topics: ["news"] });
      const first = await stream.next();
      await stream.return(undefined);
      return first.value;
    }));
    assert.equal(subscribed.length, 16);
    const served = (server: { process: LineProcess }) =>
      server.process.stderr.filter((l) => / subscribed\./.test(l)).length;
    await waitFor(
      "both to log their subscribers",
      () => Promise.resolve(served(a) + served(b) === 16),
      NATS_WAIT_MS,
    );
    assert.ok(
      served(a) > 0 && served(b) > 0,
      `both processes took connections: ${served(a)} and ${served(b)}`,
    );
    await stopInstance(a);
    await stopInstance(b);
  },
});

Deno.test({
  name:
    "presence covers every instance (ids unique across them), and an instance that dies drops out of it at once",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url);
    await using b = await instance(nats.url);
    await using onA = await startSubscriber("ann", a.target, "news");
    await using _onB = await startSubscriber("bob", b.target, "news");
    const listed = await listPresence(a.target, "news");
    assert.deepEqual(listed.names.sort(), ["ann", "bob"]);
    const ids = [...listed.stdout.matchAll(/id=(\d+)/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, 2, `ids are unique: ${ids}`);
    assert.match(listed.stdout, /^2 subscribers$/m);
    // B dies without a word: its subscribers are not listed any more.
    b.process.signalGroup("SIGKILL");
    await b.process.exit();
    assert.deepEqual((await listPresence(a.target, "news")).names, ["ann"]);
    onA.signalGroup("SIGINT");
    await onA.exit();
    await stopInstance(a);
  },
});

Deno.test({
  name:
    "two instances on one stream: a Publish retried with the same idempotency key on the other instance is one event (JetStream's Nats-Msg-Id)",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url);
    await using b = await instance(nats.url);
    await using subscriber = await startSubscriber("once", a.target, "news");
    using onA = new GreeterClient(a.target);
    using onB = new GreeterClient(b.target);
    const text = new TextEncoder();
    const key = "0b5e8d1c-4f2a-4c1e-9d3b";
    const first = await onA.publish("news", text.encode("one"), {
      idempotencyKey: key,
    });
    // The reply was lost, say: the client retries on the other instance.
    const retry = await onB.publish("news", text.encode("one"), {
      idempotencyKey: key,
    });
    assert.deepEqual(retry.cursor, first.cursor);
    await onB.publish("news", text.encode("two"), {
      idempotencyKey: `${key}-2`,
    });
    await subscriber.waitForLine("stdout", /payload="two"/);
    assert.deepEqual(printedPayloads(subscriber), ["one", "two"]);
  },
});

Deno.test({
  name:
    "an instance whose window holds less than the stream serves --from first, --from a time, --after EPOCH:0 and stream-info from the stream",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    // The stream is made by an instance that keeps 1,000 events; the
    // other keeps 2 in its window and adopts the stream as it is.
    await using wide = await instance(nats.url);
    await using narrow = await instance(nats.url, {
      extra: ["--replay-size", "2", "--interval", "3600000"],
    });
    const cursors = await publishTexts(wide.target, "news", "a", "b", "c");
    await publishTexts(wide.target, "other", "x", "y", "z"); // fills the window
    const [epoch] = cursors[0].split(":");
    const read = async (args: string[]) => {
      const result = await runClient([
        "you",
        "--target",
        narrow.target,
        "--mode",
        "subscribe",
        "--topic",
        "news",
        "--count",
        "3",
        ...args,
      ]);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    const payloads = (stdout: string) =>
      [...stdout.matchAll(/^event: .* replayed payload="(.*)"$/gm)].map((m) =>
        m[1]
      );
    assert.deepEqual(payloads(await read(["--from", "first"])), [
      "a",
      "b",
      "c",
    ]);
    assert.deepEqual(payloads(await read(["--from", "1h"])), ["a", "b", "c"]);
    // Held by the stream: resumed, not "not resumed" with live events only.
    const resumed = await read(["--after", `${epoch}:0`]);
    assert.match(
      resumed,
      new RegExp(`^subscribed: .* cursor=${epoch}:0 resumed$`, "m"),
    );
    assert.deepEqual(payloads(resumed), ["a", "b", "c"]);
    // The stream's state, as JetStream has it, from the narrow instance.
    const info = await runClient([
      "--target",
      narrow.target,
      "--mode",
      "stream-info",
      "--output",
      "json",
    ]);
    assert.equal(info.code, 0, info.stderr);
    const state = JSON.parse(info.stdout);
    assert.equal(state.epoch, epoch);
    assert.equal(state.store, "nats");
    assert.equal(state.first_seq, 1);
    assert.ok(state.events >= 6 && state.last_seq >= 6, info.stdout);
    assert.ok(state.bytes > 0);
    await stopInstance(narrow);
    await stopInstance(wide);
  },
});
