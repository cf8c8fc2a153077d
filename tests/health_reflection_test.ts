import assert from "node:assert/strict";
import { buf, BUF_MISSING } from "../testing/buf.ts";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { ManualClock } from "../testing/manual_clock.ts";
import { setTimeout as delay } from "node:timers/promises";
import { heapAfterGc } from "../testing/heap.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

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

Deno.test("Health.Watch is capped at --max-subscribers: RESOURCE_EXHAUSTED beyond, room again after a cancel", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxSubscribers: 20,
  });
  const client = new HealthClient(t.target, grpc.credentials.createInsecure());
  const open: grpc.ClientReadableStream<HealthReply>[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const { call, status } = await watchFirst(client, i % 2 ? "" : `x${i}`);
      assert.equal(status, i % 2 ? "SERVING" : "SERVICE_UNKNOWN");
      call.on("error", () => {});
      open.push(call);
    }
    await assert.rejects(
      watchFirst(client, ""),
      (error: grpc.ServiceError) =>
        error.code === grpc.status.RESOURCE_EXHAUSTED &&
        /20 watches are open/.test(error.details),
    );
    open.pop()!.cancel();
    let admitted: string | undefined;
    for (let i = 0; i < 50 && admitted === undefined; i++) {
      if (i > 0) await delay(100); // until the server has seen the cancel
      admitted = await watchFirst(client, "").then(({ call, status }) => {
        call.on("error", () => {});
        open.push(call);
        return status;
      }, () => undefined);
    }
    assert.equal(admitted, "SERVING");
  } finally {
    for (const call of open) call.cancel();
    client.close();
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
