import assert from "node:assert/strict";
import { buf, BUF_MISSING } from "../testing/buf.ts";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { ManualClock } from "../testing/manual_clock.ts";
import { setTimeout as delay } from "node:timers/promises";
import { heapAfterGc } from "../testing/heap.ts";
import { startTestServer, waitFor } from "../testing/server.ts";
import { PeerProxy } from "../testing/peer_proxy.ts";

const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health");

interface HealthReply {
  status: string;
}

function check(
  // deno-lint-ignore no-explicit-any
  client: any,
  service: string,
): Promise<HealthReply> {
  return new Promise((resolve, reject) =>
    client.Check(
      { service },
      (error: Error | null, reply: HealthReply) =>
        error ? reject(error) : resolve(reply),
    )
  );
}

Deno.test("Health.Check reports SERVING for the server and the Greeter, NOT_FOUND otherwise", async () => {
  await using t = await startTestServer({ clock: new ManualClock() });
  const client = new HealthClient(t.target, grpc.credentials.createInsecure());
  try {
    assert.equal((await check(client, "")).status, "SERVING");
    assert.equal((await check(client, "helloworld.Greeter")).status, "SERVING");
    await assert.rejects(
      check(client, "no.such.Service"),
      (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND,
    );
  } finally {
    client.close();
  }
});

Deno.test("Health.Watch turns NOT_SERVING as soon as a shutdown starts", async () => {
  // Real clock: the 200 ms grace period must pass for the Watch to be cut.
  const t = await startTestServer();
  const client = new HealthClient(t.target, grpc.credentials.createInsecure());
  const seen: string[] = [];
  const watch = client.Watch({ service: "helloworld.Greeter" });
  watch.on("data", (reply: HealthReply) => seen.push(reply.status));
  watch.on("error", () => {}); // cancelled when the grace period ends
  try {
    await waitFor("SERVING", () => seen.length === 1);
    assert.deepEqual(seen, ["SERVING"]);
    const stopping = t.server.shutdown({ graceMs: 200 });
    await waitFor("NOT_SERVING", () => seen.length === 2);
    assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
    await stopping;
  } finally {
    watch.cancel();
    client.close();
  }
});

if (BUF_MISSING) {
  console.warn(`health_reflection_test.ts buf tests ignored: ${BUF_MISSING}`);
}

async function bufCurl(args: string[]): Promise<string> {
  const out = await buf([
    "curl",
    "--protocol",
    "grpc",
    "--http2-prior-knowledge",
    ...args,
  ]);
  assert.ok(out.success, out.stderr);
  return out.stdout;
}

Deno.test({
  name:
    "reflection lets buf curl list and call everything, health included, with no proto files",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    await using t = await startTestServer({ clock: new ManualClock() });
    const url = `http://${t.target}`;
    const methods = (await bufCurl(["--list-methods", url]))
      .trim().split("\n").sort();
    assert.deepEqual(methods, [
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/Watch",
      "helloworld.Greeter/ListSubscribers",
      "helloworld.Greeter/Publish",
      "helloworld.Greeter/SayHello",
      "helloworld.Greeter/SayHelloBidiStream",
      "helloworld.Greeter/SayHelloStream2",
      "helloworld.Greeter/SayHelloStreamReply",
      "helloworld.Greeter/StreamInfo",
      "helloworld.Greeter/Subscribe",
    ]);
    assert.deepEqual(
      JSON.parse(
        await bufCurl([
          "-d",
          '{"name":"buf"}',
          `${url}/helloworld.Greeter/SayHello`,
        ]),
      ),
      { message: "Hello, buf!" },
    );
    assert.deepEqual(
      JSON.parse(
        await bufCurl([
          "-d",
          '{"service":""}',
          `${url}/grpc.health.v1.Health/Check`,
        ]),
      ),
      { status: "SERVING" },
    );
  },
});

/** Opens a Watch on `service` and resolves with the call once its first status came. */
function watchFirst(
  // deno-lint-ignore no-explicit-any
  client: any,
  service: string,
): Promise<{ call: grpc.ClientReadableStream<HealthReply>; status: string }> {
  return new Promise((resolve, reject) => {
    const call = client.Watch({ service });
    call.once("data", (reply: HealthReply) => {
      resolve({ call, status: reply.status });
    });
    call.once("error", reject);
  });
}

Deno.test("Health.Watch on unique 30 KB names, cancelled, leaves nothing behind", async () => {
  await using t = await startTestServer({ clock: new ManualClock() });
  /**
   * 1,000 watches on 30 KB names each, cancelled: 30 MB if kept (the
   * library kept them all). A connection per 50, since more resets than
   * nghttp2's burst allowance on one connection earn a GOAWAY.
   */
  const attack = async (round: number) => {
    for (let batch = 0; batch < 20; batch++) {
      const client = new HealthClient(
        t.target,
        grpc.credentials.createInsecure(),
        { "grpc.use_local_subchannel_pool": 1 },
      );
      try {
        const watches = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            watchFirst(
              client,
              `${round}.${batch}.${i}.`.padEnd(30_000, "x"),
            )),
        );
        for (const { call, status } of watches) {
          assert.equal(status, "SERVICE_UNKNOWN");
          call.on("error", () => {}); // CANCELLED, as asked
          call.cancel();
        }
      } finally {
        client.close();
      }
    }
  };
  await attack(0); // warms up what any run allocates once
  const before = heapAfterGc();
  await attack(1);
  // The server lets go of a cancelled call once it sees the reset: give
  // the resets up to 5 s to arrive.
  let grown = heapAfterGc() - before;
  for (let i = 0; i < 50 && grown >= 8 * 2 ** 20; i++) {
    await delay(100);
    grown = heapAfterGc() - before;
  }
  assert.ok(
    grown < 8 * 2 ** 20,
    `the heap grew by ${
      (grown / 2 ** 20).toFixed(1)
    } MiB after 1,000 cancelled watches`,
  );
});

Deno.test("Health.Watch is capped at --max-subscribers, a quarter per peer: RESOURCE_EXHAUSTED beyond, room again after a cancel", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxSubscribers: 20,
  });
  // Four peers: this address and three more through proxies.
  await using stack = new AsyncDisposableStack();
  const targets = [t.target];
  for (const from of ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]) {
    targets.push(
      stack.use(await PeerProxy.start(t.server.port, from)).target,
    );
  }
  const clients = targets.map((target) =>
    new HealthClient(target, grpc.credentials.createInsecure())
  );
  const open: grpc.ClientReadableStream<HealthReply>[][] = targets.map(
    () => [],
  );
  const watch = async (peer: number, service: string) => {
    const { call, status } = await watchFirst(clients[peer], service);
    call.on("error", () => {});
    open[peer].push(call);
    return status;
  };
  const refused = (pattern: RegExp) => (error: grpc.ServiceError) =>
    error.code === grpc.status.RESOURCE_EXHAUSTED &&
    pattern.test(error.details);
  try {
    for (let peer = 0; peer < 4; peer++) {
      for (let i = 0; i < 5; i++) {
        assert.equal(
          await watch(peer, i % 2 ? "" : `x${i}`),
          i % 2 ? "SERVING" : "SERVICE_UNKNOWN",
        );
      }
      // Its share is 5 of the 20: one peer cannot take them all.
      await assert.rejects(
        watch(peer, ""),
        refused(
          /Cannot watch health: \S+ holds 5 health watches, its share of 5; use Check/,
        ),
      );
    }
    await assert.rejects(
      watch(4, ""),
      refused(/all 20 health watches are taken/),
    );
    open[0].pop()!.cancel();
    let admitted: string | undefined;
    for (let i = 0; i < 50 && admitted === undefined; i++) {
      if (i > 0) await delay(100); // until the server has seen the cancel
      admitted = await watch(4, "").catch(() => undefined);
    }
    assert.equal(admitted, "SERVING");
  } finally {
    for (const call of open.flat()) call.cancel();
    for (const client of clients) client.close();
  }
});

Deno.test({
  name:
    "with --token-file, buf curl -H reaches the Greeter as docs/operations.md writes it; health and reflection need no token",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    const token = "0123456789abcdef0123456789abcdef";
    await using t = await startTestServer({
      clock: new ManualClock(),
      tokens: [token],
    });
    const url = `http://${t.target}`;
    // Reflection is open: buf reads the contract before any call, and its
    // -H headers are not sent on reflection requests.
    assert.ok(
      (await bufCurl(["--list-methods", url])).includes(
        "helloworld.Greeter/Publish",
      ),
    );
    assert.deepEqual(
      JSON.parse(
        await bufCurl([
          "-d",
          '{"service":""}',
          `${url}/grpc.health.v1.Health/Check`,
        ]),
      ),
      { status: "SERVING" },
    );
    assert.deepEqual(
      JSON.parse(
        await bufCurl([
          "-H",
          `authorization: Bearer ${token}`,
          "-d",
          '{"name":"you"}',
          `${url}/helloworld.Greeter/SayHello`,
        ]),
      ),
      { message: "Hello, you!" },
    );
    // payload is bytes: base64 in buf's JSON ("aGk=" is "hi").
    const published = JSON.parse(
      await bufCurl([
        "-H",
        `authorization: Bearer ${token}`,
        "-d",
        '{"topic":"news","payload":"aGk="}',
        `${url}/helloworld.Greeter/Publish`,
      ]),
    );
    assert.equal(published.cursor.epoch, t.server.hub.epoch);
    const anonymous = await buf([
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-d",
      '{"name":"you"}',
      `${url}/helloworld.Greeter/SayHello`,
    ]);
    assert.equal(anonymous.success, false);
    assert.match(anonymous.stderr, /unauthenticated/i);
  },
});
