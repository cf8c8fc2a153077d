// Faults of the engine under live `greeter serve` instances (deno task, their
// own process groups): a JetStream cluster's stream leader killed, the link
// between an instance and nats-server cut or frozen, and the reconnecting
// CLI subscriber moved between instances by killing the one it is on.
import assert from "node:assert/strict";
import { waitFor } from "../testing/server.ts";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  GreeterClient,
  type SubscriptionMessage,
} from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import { type LineProcess, spawnTask } from "../testing/process.ts";
import {
  natsServerMissing,
  startNatsCluster,
  startNatsServer,
} from "../testing/nats.ts";
import { CuttableProxy } from "../testing/proxy.ts";
import {
  printedPayloads,
  startInstance as instance,
  stopInstance,
} from "../testing/instances.ts";

const ignore = natsServerMissing() !== undefined;
const text = new TextEncoder();
const decode = (data: Uint8Array) => new TextDecoder().decode(data);

/**
 * One `Subscribe` stream (no reconnect) on `target`, recording every event
 * as `seq:payload` and every gap as `gap FROM-TO`.
 */
function record(target: string, topic: string) {
  const client = new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  const abort = new AbortController();
  const seen: string[] = [];
  const seqs = new Set<number>();
  const gaps: Array<[number, number]> = [];
  let subscribed: PromiseWithResolvers<void> | undefined = Promise
    .withResolvers();
  const done = (async () => {
    for await (
      const message of client.subscribe("rec", {
        topics: [topic],
        signal: abort.signal,
      }) as AsyncIterable<SubscriptionMessage>
    ) {
      if (message.kind === "subscribed") subscribed?.resolve();
      if (message.kind === "event") {
        seen.push(`${message.cursor.seq}:${decode(message.payload)}`);
        seqs.add(message.cursor.seq);
      } else if (message.kind === "gap") {
        seen.push(`gap ${message.fromSeq}-${message.toSeq}`);
        gaps.push([message.fromSeq, message.toSeq]);
      }
    }
  })().catch((error) => {
    subscribed?.reject(error);
    if (!abort.signal.aborted) seen.push(`error ${error.message}`);
  });
  const ready = subscribed.promise.finally(() => subscribed = undefined);
  return {
    seen,
    seqs,
    gaps,
    ready,
    /** Whether `seq` was delivered or reported inside a gap. */
    accounted(seq: number): boolean {
      return seqs.has(seq) ||
        gaps.some(([from, to]) => from <= seq && seq <= to);
    },
    async [Symbol.asyncDispose]() {
      abort.abort();
      await done;
      client.close();
    },
  };
}

/** How long the fault tests wait for a NATS-driven change. */
const FAULT_WAIT_MS = 15_000;

/** Outcome of one `Publish`: the acknowledged seq, or the failure's code. */
type Outcome = { payload: string; seq?: number; code?: string; ms: number };

/** Publishes `payload`, recording the outcome instead of throwing. */
async function tryPublish(
  client: GreeterClient,
  topic: string,
  payload: string,
): Promise<Outcome> {
  const started = Date.now();
  try {
    const { cursor } = await client.publish(topic, text.encode(payload));
    return { payload, seq: cursor.seq, ms: Date.now() - started };
  } catch (error) {
    return {
      payload,
      code: error instanceof RpcError ? error.code : String(error),
      ms: Date.now() - started,
    };
  }
}

Deno.test({
  name:
    "a 3-node JetStream cluster's stream leader killed under publishers and subscribers: no acknowledged event lost, no silent hole, publishes fail with UNAVAILABLE meanwhile",
  ignore,
  async fn() {
    await using cluster = await startNatsCluster();
    const url = `nats://${cluster.servers}`;
    await using a = await instance(url, { extra: ["--nats-replicas", "3"] });
    await using b = await instance(url, { extra: ["--nats-replicas", "3"] });
    await using onA = record(a.target, "news");
    await using onB = record(b.target, "news");
    await Promise.all([onA.ready, onB.ready]);
    using toA = new GreeterClient(a.target);
    using toB = new GreeterClient(b.target);
    const outcomes: Outcome[] = [];
    let n = 0;
    const publishSome = async (count: number) => {
      for (let i = 0; i < count; i++, n++) {
        outcomes.push(
          await tryPublish(n % 2 === 0 ? toA : toB, "news", `p${n}`),
        );
      }
    };
    await publishSome(10);
    assert.ok(outcomes.every((o) => o.seq !== undefined), "all taken before");

    const operator = await connect({ servers: cluster.servers.split(",") });
    let leader: string;
    try {
      const info = await (await jetstreamManager(operator)).streams.info(
        "greeter",
      );
      assert.equal(info.config.num_replicas, 3);
      leader = info.cluster!.leader!;
    } finally {
      await operator.close();
    }
    cluster.node(leader).process.child.kill("SIGKILL");
    const killedAt = Date.now();
    // Publish on until both instances take publishes again (the election),
    // bounded in count and time.
    let failedUntil = 0;
    for (let round = 0; round < 400; round++) {
      const before = outcomes.length;
      await publishSome(2);
      const last = outcomes.slice(before);
      if (last.some((o) => o.code)) failedUntil = Date.now() - killedAt;
      if (last.every((o) => o.seq !== undefined) && round > 0) {
        if (failedUntil > 0 || Date.now() - killedAt > 12_000) break;
      }
      if (Date.now() - killedAt > 25_000) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await publishSome(10);
    const failed = outcomes.filter((o) => o.code);
    const acked = outcomes.filter((o) => o.seq !== undefined);
    assert.ok(failed.length > 0, "the election was published through");
    assert.ok(outcomes.slice(-10).every((o) => o.seq !== undefined));
    assert.deepEqual(
      [...new Set(failed.map((o) => o.code))].filter((c) =>
        c !== "UNAVAILABLE"
      ),
      [],
      "publishes during the election fail with UNAVAILABLE only",
    );
    const lastSeq = Math.max(...acked.map((o) => o.seq!));
    const lastAcked = Date.now();
    const caughtUp: number[] = [];
    for (const [sub, on] of [[onA, a], [onB, b]] as const) {
      await waitFor(
        "every acknowledged event",
        () => sub.seqs.has(lastSeq),
        15_000,
        () =>
          `last acknowledged ${lastSeq}; seen ${sub.seen.slice(-20)}; ` +
          `its instance said:\n${on.process.stderr.slice(-30).join("\n")}`,
      );
      caughtUp.push(Date.now() - lastAcked);
      const lost = acked.filter((o) => !sub.accounted(o.seq!));
      assert.deepEqual(lost, [], `no acknowledged event lost:\n${sub.seen}`);
      // Each acknowledged payload arrives once, at its seq.
      for (const o of acked) {
        if (sub.seqs.has(o.seq!)) {
          assert.ok(sub.seen.includes(`${o.seq}:${o.payload}`), o.payload);
        }
      }
      const order = [...sub.seqs];
      assert.deepEqual(order, [...order].sort((x, y) => x - y), "in order");
      assert.equal(order.length, new Set(order).size, "none twice");
    }
    console.log(
      `leader ${leader} killed: ${failed.length} of ${outcomes.length} publishes failed (UNAVAILABLE) for ${failedUntil} ms; gaps told: ${
        onA.gaps.length + onB.gaps.length
      }; subscribers had the last one ${
        caughtUp.join(" and ")
      } ms after it was acknowledged`,
    );
    await stopInstance(a);
    await stopInstance(b);
  },
});

/** Lines of `server`'s log matching `pattern`, counted. */
function count(server: { process: LineProcess }, pattern: RegExp): number {
  return server.process.stderr.filter((line) => pattern.test(line)).length;
}

/** Publishes on `client` until one is taken (bounded); returns its outcome. */
async function publishUntilTaken(
  client: GreeterClient,
  topic: string,
  payload: string,
): Promise<Outcome> {
  let outcome: Outcome | undefined;
  for (let i = 0; i < 100; i++) {
    outcome = await tryPublish(client, topic, payload);
    if (outcome.seq !== undefined) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`No publish of ${payload} taken: ${outcome?.code}`);
}

Deno.test({
  name:
    "the link between an instance and nats-server cut, then frozen: publishes fail with UNAVAILABLE in bounded time, the loss is seen, subscribers resume after with nothing missed and no gap",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using proxy = new CuttableProxy({
      hostname: "127.0.0.1",
      port: nats.port,
    });
    await using a = await instance(`nats://${proxy.target}`);
    await using b = await instance(nats.url);
    await using onA = record(a.target, "news");
    await onA.ready;
    using toA = new GreeterClient(a.target);
    using toB = new GreeterClient(b.target);
    const taken: Outcome[] = [await publishUntilTaken(toA, "news", "a0")];
    const lost = /WARN Event stream lost/;
    const regained = /INFO Event stream regained/;

    // Cut: every connection closed, new ones refused.
    proxy.refusing = true;
    await proxy.cut();
    await waitFor(
      "A to see the engine lost",
      () => count(a, lost) === 1,
      FAULT_WAIT_MS,
    );
    const whileCut = await tryPublish(toA, "news", "never");
    assert.equal(whileCut.code, "UNAVAILABLE");
    for (const word of ["b1", "b2"]) {
      taken.push(await publishUntilTaken(toB, "news", word));
    }
    proxy.refusing = false;
    await waitFor(
      "A to regain the engine",
      () => count(a, regained) === 1,
      FAULT_WAIT_MS,
    );
    taken.push(await publishUntilTaken(toA, "news", "a3"));

    // Frozen: bytes swallowed, nothing closed; only NATS's pings notice.
    proxy.frozen = true;
    const frozenAt = Date.now();
    const whileFrozen = await tryPublish(toA, "news", "maybe");
    assert.equal(whileFrozen.code, "UNAVAILABLE", JSON.stringify(whileFrozen));
    taken.push(await publishUntilTaken(toB, "news", "b4"));
    await waitFor(
      "A to see the frozen link lost",
      () => count(a, lost) === 2,
      FAULT_WAIT_MS,
    );
    const detectedMs = Date.now() - frozenAt;
    proxy.frozen = false;
    await waitFor(
      "A to regain the engine",
      () => count(a, regained) === 2,
      FAULT_WAIT_MS,
    );
    const regainedMs = Date.now() - frozenAt - detectedMs;
    taken.push(await publishUntilTaken(toA, "news", "a5"));

    const last = taken.at(-1)!.seq!;
    await waitFor(
      "the subscriber on A to read up to a5",
      () => onA.seqs.has(last),
      FAULT_WAIT_MS,
    );
    // A publish that failed may still have been stored ("maybe"): the
    // subscriber gets it then, but nothing acknowledged is missing, and
    // there is no gap.
    const expected = taken.map((o) => `${o.seq}:${o.payload}`);
    assert.deepEqual(
      onA.seen.filter((line) => !/:maybe$/.test(line)),
      expected,
    );
    assert.deepEqual(onA.gaps, []);
    console.log(
      `cut: publish failed in ${whileCut.ms} ms; frozen: publish failed in ${whileFrozen.ms} ms, loss seen after ${detectedMs} ms, regained ${regainedMs} ms after the thaw`,
    );
    await stopInstance(a);
    await stopInstance(b);
  },
});

Deno.test({
  name:
    "client --mode subscribe --target A,B: killing the instance it is on (SIGKILL) moves it to the other with its cursor: resumed, nothing missed, nothing twice",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url);
    await using b = await instance(nats.url);
    await using subscriber = spawnTask("client", [
      "mover",
      "--target",
      `${a.target},${b.target}`,
      "--mode",
      "subscribe",
      "--topic",
      "news",
    ]);
    await subscriber.waitForLine("stdout", /^subscribed: /);
    using toB = new GreeterClient(b.target);
    for (const word of ["p1", "p2"]) {
      await publishUntilTaken(toB, "news", word);
    }
    await subscriber.waitForLine("stdout", /payload="p2"$/);
    a.process.signalGroup("SIGKILL");
    await a.process.exit();
    for (const word of ["p3", "p4"]) {
      await publishUntilTaken(toB, "news", word);
    }
    await subscriber.waitForLine(
      "stderr",
      new RegExp(`^reconnecting to ${b.target} in \\d+ ms \\(attempt 1\\)`),
    );
    await subscriber.waitForLine("stdout", /^subscribed: .* resumed$/);
    await publishUntilTaken(toB, "news", "p5");
    await subscriber.waitForLine("stdout", /payload="p5"$/);
    assert.deepEqual(printedPayloads(subscriber), [
      "p1",
      "p2",
      "p3",
      "p4",
      "p5",
    ]);
    assert.ok(
      !subscriber.stdout.some((l) => /not resumed|^gap:/.test(l)),
      subscriber.stdout.join("\n"),
    );
    subscriber.signalGroup("SIGINT");
    assert.equal((await subscriber.exit()).code, 0);
    await stopInstance(b);
  },
});

Deno.test({
  name:
    "nats-server frozen under a Publish: it fails UNAVAILABLE yet is stored once the server thaws; its retry with the same idempotency key is that event, not a second",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    await using a = await instance(nats.url);
    await using onA = record(a.target, "news");
    await onA.ready;
    using publisher = new GreeterClient(a.target);
    const key = "5d0c6e42-frozen";
    const publish = () =>
      publisher.publish("news", text.encode("maybe"), { idempotencyKey: key });
    const pid = nats.process.child.pid;
    Deno.kill(pid, "SIGSTOP");
    let failed: unknown;
    try {
      await publish();
    } catch (error) {
      failed = error;
    } finally {
      Deno.kill(pid, "SIGCONT");
    }
    assert.equal((failed as RpcError)?.code, "UNAVAILABLE");
    // Stored after all: the subscriber gets it once the server thaws.
    await waitFor(
      "the frozen publish delivered",
      () => onA.seen.some((line) => line.endsWith(":maybe")),
      FAULT_WAIT_MS,
    );
    // The client retries, as it must not know: the same event comes back.
    let retried: Awaited<ReturnType<typeof publish>> | undefined;
    await waitFor("the retry acknowledged", async () => {
      retried = await publish().catch(() => undefined);
      return retried !== undefined;
    }, FAULT_WAIT_MS);
    const stored = onA.seen.find((line) => line.endsWith(":maybe"))!;
    assert.equal(`${retried!.cursor.seq}:maybe`, stored);
    const after = await publisher.publish("news", text.encode("after"));
    await waitFor(
      "the next event",
      () => onA.seqs.has(after.cursor.seq),
      FAULT_WAIT_MS,
    );
    assert.deepEqual(onA.seen, [stored, `${after.cursor.seq}:after`]);
    await stopInstance(a);
  },
});
