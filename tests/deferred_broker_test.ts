import assert from "node:assert/strict";
import {
  type BrokerChange,
  type BusEvent,
  type DirectoryPage,
  MemoryBroker,
} from "../lib/bus/broker.ts";
import {
  type ClosableBroker,
  DeferredBroker,
} from "../lib/bus/deferred_broker.ts";
import { Hub } from "../lib/bus/hub.ts";
import { UnavailableError } from "../lib/errors.ts";
import { waitFor } from "../testing/server.ts";

/** A memory broker standing for an engine's: closable, with an engine, a directory and a ready promise. */
function engineBroker(epoch: string): ClosableBroker<string> & {
  closed: boolean;
  directories: number;
  release(): void;
} {
  const inner = new MemoryBroker<string>({ epoch });
  const ready = Promise.withResolvers<void>();
  const broker = {
    closed: false,
    directories: 0,
    release: () => ready.resolve(),
    get epoch() {
      return inner.epoch;
    },
    get seq() {
      return inner.seq;
    },
    ready: ready.promise,
    shared: true,
    engine: {
      up: true,
      lag: 0,
      reconnects: 0,
      published: 0,
      refusedAnswers: {},
      rejectedEvents: {},
    },
    publish: (topic: string, data: string) => inner.publish(topic, data),
    listen: (listener: (event: BusEvent<string>) => void) =>
      inner.listen(listener),
    directory: <E extends { id: number }>(
      local: (query: { after: number; limit: number }) => DirectoryPage<E>,
    ) => {
      broker.directories++;
      return {
        list: (query: { after: number; limit: number }) =>
          Promise.resolve(local(query)),
        close: () => {
          broker.directories--;
        },
      };
    },
    close: () => {
      broker.closed = true;
      return Promise.resolve();
    },
  };
  return broker;
}

const NAME = "the event stream (a test engine)";

Deno.test("DeferredBroker: nothing of the bus works until the engine is reached (publish, subscribe, listing refused saying why; engine down), then everything does, without a restart", async () => {
  const engine = engineBroker("e1");
  let attempts = 1; // the caller's first one failed
  let reachable = false;
  const broker = new DeferredBroker<string>({
    connect: () => {
      attempts++;
      return reachable
        ? Promise.resolve(engine)
        : Promise.reject(new UnavailableError("connection refused"));
    },
    name: NAME,
    shared: true,
    retryMs: 5,
    maxRetryMs: 20,
  });
  const changes: BrokerChange[] = [];
  broker.watch((change) => changes.push(change));
  const hub = new Hub(broker);
  const directory = broker.directory((query) => hub.page(query));
  try {
    assert.equal(
      broker.pending,
      `${NAME} is not reached yet: this instance started before it, and connects as soon as it can; retry in a moment`,
    );
    assert.equal(broker.engine.up, false);
    assert.equal(broker.shared, true);
    await assert.rejects(
      hub.publish("news", "early"),
      (error) =>
        error instanceof UnavailableError &&
        error.message === `Cannot publish on "news": ${broker.pending}`,
    );
    assert.throws(
      () => hub.subscribe("ann"),
      (error) =>
        error instanceof UnavailableError &&
        error.message === `Cannot subscribe "ann": ${broker.pending}`,
    );
    await assert.rejects(
      directory.list({ after: 0, limit: 10 }),
      /^UnavailableError: Cannot list subscribers: the event stream \(a test engine\) is not reached yet/,
    );
    await waitFor("a few attempts", () => attempts >= 3);
    assert.equal(engine.directories, 0);

    reachable = true;
    await waitFor("the engine reached", () => changes.length > 0);
    // Reached, not yet read back: still refused, still down.
    assert.deepEqual(changes, [{
      kind: "reset",
      epoch: "e1",
      seq: 0,
      reason: `${NAME} was reached`,
    }]);
    assert.ok(broker.pending);
    assert.throws(() => hub.subscribe("ann"), UnavailableError);
    engine.release();
    await broker.ready;
    assert.equal(broker.pending, undefined);
    assert.equal(broker.epoch, "e1");
    assert.equal(hub.epoch, "e1");
    assert.deepEqual(changes.at(-1), {
      kind: "engine",
      up: true,
      reason: "reached",
    });
    assert.equal(broker.engine.up, true);
    assert.equal(engine.directories, 1);
    const { readable } = hub.subscribe("ann", { topics: ["news"] });
    const reader = readable.getReader();
    await hub.publish("news", "late");
    const { value } = await reader.read();
    assert.equal(value?.kind === "event" && value.data, "late");
    await reader.cancel();
    assert.equal((await directory.list({ after: 0, limit: 10 })).total, 0);
  } finally {
    directory.close();
    hub.close();
    await broker.close();
  }
  assert.equal(engine.closed, true);
  assert.equal(engine.directories, 0);
});

Deno.test("DeferredBroker: gives up after waitMs (failed rejects naming --broker-wait), at once on a refusal no wait mends, and close() stops it connecting", async () => {
  const refused = (message: string) => () =>
    Promise.reject(new UnavailableError(message));
  const bounded = new DeferredBroker<string>({
    connect: refused("connection refused"),
    name: NAME,
    shared: true,
    waitMs: 100,
    retryMs: 10,
  });
  await assert.rejects(
    bounded.failed,
    /^UnavailableError: Cannot reach the event stream \(a test engine\) within 100 ms \(--broker-wait\); gave up after \d+ attempts$/,
  );
  await assert.rejects(bounded.ready, UnavailableError);
  await bounded.close();

  const notices: number[] = [];
  const refusing = new DeferredBroker<string>({
    connect: refused("Authorization Violation"),
    retryable: (error) => !/Authorization/.test((error as Error).message),
    name: NAME,
    shared: true,
    retryMs: 1,
    onRetry: (attempts) => notices.push(attempts),
  });
  await assert.rejects(refusing.failed, /Authorization Violation/);
  assert.deepEqual(notices, []);
  await refusing.close();

  let attempts = 0;
  const closed = new DeferredBroker<string>({
    connect: () => {
      attempts++;
      return Promise.reject(new UnavailableError("connection refused"));
    },
    name: NAME,
    shared: true,
    retryMs: 60_000, // waiting for its next attempt when closed
  });
  await closed.close();
  assert.equal(attempts, 0);
  await assert.rejects(closed.ready, /closed before it was reached/);

  // Closed while the engine it reached reads its past back: that ends too.
  const engine = engineBroker("e2"); // never released
  const reading = new DeferredBroker<string>({
    connect: () => Promise.resolve(engine),
    name: NAME,
    shared: true,
    retryMs: 1,
  });
  await waitFor("the engine reached", () => reading.epoch === "e2");
  await reading.close();
  assert.equal(engine.closed, true);
  assert.ok(reading.pending);
});
