import assert from "node:assert/strict";
import { buf, BUF_MISSING } from "../testing/buf.ts";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { ManualClock } from "../testing/manual_clock.ts";
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
