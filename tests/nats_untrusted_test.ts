// What a stranger on NATS can put in front of `greeter serve` instances
// (deno task, their own process group) when nats-server lets it publish:
// events in the stream the instances would never write, forged listing
// answers and "alive" announcements. Each is checked as a caller's input.
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { spawnTask } from "../testing/process.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import {
  type Instance,
  listPresence,
  publishTexts,
  startInstance,
  startSubscriber,
  stopInstance,
} from "../testing/instances.ts";

const ignore = natsServerMissing() !== undefined;

/** The metrics page an instance started with `--metrics-port 0` serves. */
async function metricsOf(instance: Instance): Promise<string> {
  const [, port] = instance.process.stderr.join("\n").match(
    /Metrics on http:\/\/[^:]+:(\d+)\/metrics/,
  )!;
  return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** The value of counter `family{reason="REASON"}` on a metrics page (NaN: none). */
function byReason(page: string, family: string, reason: string): number {
  const line = page.split("\n").find((l) =>
    l.startsWith(`${family}{reason="${reason}"} `)
  );
  return Number(line?.split(" ")[1]);
}

/** The lines of `log` that say `message` for `reason`. */
function refusalLines(log: string[], message: string, reason: string) {
  return log.filter((line) =>
    line.includes(`WARN ${message}`) && line.includes(`reason="${reason}"`)
  );
}

/** Appends to `stream`'s events as a stranger would: any topic header, any size. */
async function forgeEvents(
  nc: NatsConnection,
  stream: string,
  events: { topic?: string; data: Uint8Array }[],
) {
  const js = jetstream(nc);
  for (const { topic, data } of events) {
    const headers = natsHeaders();
    if (topic !== undefined) headers.set("Greeter-Topic", topic);
    await js.publish(`${stream}.events`, data, { headers });
  }
}

Deno.test({
  name: "a stranger on NATS",
  ignore,
  async fn(t) {
    await using nats = await startNatsServer();
    const stranger = await connect({ servers: [nats.url] });
    try {
      await t.step(
        "writes events no instance would: each is a gap (rejected) for the subscribers it would have reached, never the end of their stream, live or resumed, on the instance's window or the stream's; said once per reason, counted",
        async () => {
          // A stream made beforehand (or by an instance with larger
          // limits) takes what these instances would refuse.
          await (await jetstreamManager(stranger)).streams.add({
            name: "forged",
            subjects: ["forged.events"],
          });
          const stream = ["--nats-stream", "forged"];
          // Messages up to 4 KiB: the 8 KB event below is over what a
          // subscriber's stream can carry.
          const limits = [
            "--max-message-size",
            "4096",
            "--max-publish-size",
            "1024",
          ];
          await using a = await startInstance(nats.url, {
            extra: [...stream, ...limits, "--metrics-port", "0"],
          });
          // A window of 2: a resume on B reads the stream's own replay.
          await using b = await startInstance(nats.url, {
            extra: [...stream, ...limits, "--replay-size", "2"],
          });
          const [before] = await publishTexts(a.target, "news", "before");
          const args = ["--topic", "*", "--topic", "$presence"];
          await using live = spawnTask("client", [
            "live",
            "--target",
            a.target,
            "--mode",
            "subscribe",
            ...args,
          ]);
          await live.waitForLine("stdout", /^subscribed: /);
          const text = new TextEncoder();
          await forgeEvents(stranger, "forged", [
            { topic: "news", data: new Uint8Array(8_000) },
            { topic: "\u001b[2Jnews", data: text.encode("x") },
            { data: text.encode("no topic at all") },
            { topic: "x".repeat(3_000), data: text.encode("long") },
            { topic: "tick", data: text.encode("a forged tick") },
            {
              topic: "$presence",
              data: text.encode(JSON.stringify({
                action: "join",
                subscription_id: 1,
                name: "\u001b[31mroot",
                topics: ["*"],
              })),
            },
            { topic: "$elsewhere", data: text.encode("{}") },
          ]);
          await publishTexts(b.target, "news", "after");
          const gaps = /^gap: missed 1 events in seq (\d+)-\1 \(rejected\)$/;
          const read = async (subscriber: typeof live) => {
            await subscriber.waitForLine("stdout", /payload="after"/);
            const lines = subscriber.stdout.filter((line) =>
              gaps.test(line) || /payload="(before|after)"/.test(line)
            );
            return lines.map((line) =>
              gaps.test(line) ? "gap" : line.match(/payload="(\w+)"/)![1]
            );
          };
          // `$elsewhere` reaches no one: no gap for it.
          const expected = ["gap", "gap", "gap", "gap", "gap", "gap", "after"];
          assert.deepEqual(await read(live), expected);
          for (const target of [a.target, b.target]) {
            await using resumed = spawnTask("client", [
              "back",
              "--target",
              target,
              "--mode",
              "subscribe",
              ...args,
              "--after",
              before,
            ]);
            assert.deepEqual(await read(resumed), expected, target);
            assert.match(resumed.stdout[0], / resumed$/);
            assert.doesNotMatch(resumed.stderr.join("\n"), /reconnecting/);
            resumed.signalGroup("SIGINT");
            assert.equal((await resumed.exit()).code, 0);
          }
          assert.doesNotMatch(live.stderr.join("\n"), /reconnecting/);
          live.signalGroup("SIGINT");
          assert.equal((await live.exit()).code, 0);
          const message = "An event from the stream refused";
          const page = await metricsOf(a);
          const family = "greeter_broker_events_rejected_total";
          for (
            const [reason, n] of [
              ["size", 1],
              ["topic", 4],
              ["tick", 1],
              ["presence", 1],
            ] as const
          ) {
            assert.equal(
              refusalLines(a.process.stderr, message, reason).length,
              1,
              `one line for ${reason}`,
            );
            assert.equal(byReason(page, family, reason), n, reason);
          }
          assert.ok(
            !a.process.stderr.join("\n").includes("\u001b"),
            "no raw escape in the log",
          );
          await stopInstance(a);
          await stopInstance(b);
        },
      );
      await t.step(
        "answers listings with what no instance would list, among 200 forged announcers: left out, said once per reason, counted",
        async () => {
          await using server = await startInstance(nats.url, {
            extra: ["--metrics-port", "0"],
          });
          await using _ann = await startSubscriber(
            "ann",
            server.target,
            "news",
          );
          const ids = Array.from({ length: 200 }, () => crypto.randomUUID());
          const announce = () => {
            for (const id of ids) {
              stranger.publish("greeter.directory.alive", `${id} here`);
            }
          };
          announce();
          const beat = setInterval(announce, 1_000);
          const entry = (id: number, fields: Record<string, unknown> = {}) => ({
            id,
            name: "eve",
            topics: ["news"],
            since: 0,
            delivered: 0,
            dropped: 0,
            buffered: 0,
            labels: {},
            ...fields,
          });
          const forged = [
            { entries: [entry(7, { name: "\u001b[31mroot" })], total: 1 },
            { entries: [entry(8, { delivered: 1e18 })], total: 1 },
            { entries: [entry(9)], total: 1e15 },
            { entries: [entry(0)], total: 1 },
            {
              entries: [entry(10, { topics: Array(65).fill("news") })],
              total: 1,
            },
          ];
          const answering = stranger.subscribe("greeter.directory", {
            callback: (_, message) => {
              for (const page of forged) {
                message.respond(JSON.stringify({ ...page, more: false }));
              }
            },
          });
          try {
            await stranger.flush();
            for (let round = 0; round < 2; round++) {
              const listed = await listPresence(server.target, "news");
              assert.deepEqual(listed.names, ["ann"], listed.stdout);
              assert.match(listed.stdout, /^1 subscriber$/m);
            }
          } finally {
            clearInterval(beat);
            answering.unsubscribe();
          }
          const message = "A listing answer from another instance left out";
          for (const reason of ["entry", "total", "id"]) {
            assert.equal(
              refusalLines(server.process.stderr, message, reason).length,
              1,
              `one line for ${reason}`,
            );
          }
          assert.ok(
            !server.process.stderr.join("\n").includes("\u001b"),
            "no raw escape in the log",
          );
          // The first listing read every answer (it waited for the
          // announcers); the second may end before the stranger's.
          const page = await metricsOf(server);
          const family = "greeter_broker_directory_answers_refused_total";
          assert.ok(byReason(page, family, "entry") >= 3, page);
          assert.ok(byReason(page, family, "total") >= 1, page);
          assert.ok(byReason(page, family, "id") >= 1, page);
          await stopInstance(server);
        },
      );
    } finally {
      await stranger.close();
    }
  },
});
