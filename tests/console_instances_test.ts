// The live console in Chromium on two `greeter serve` instances sharing a
// NATS JetStream stream, behind one proxy: when the instance the page reads
// stops (SIGTERM: a drain, its goodbye), the page's connection moves to the
// other and resumes by cursor, with nothing missed and nothing twice.
import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { CHROMIUM_MISSING, launchChromium } from "../testing/browser.ts";
import { ConsolePage } from "../testing/console_page.ts";
import { CountingPublisher } from "../testing/counting_publisher.ts";
import {
  type Instance,
  startInstance,
  stopInstance,
} from "../testing/instances.ts";
import { natsServerMissing, startNatsServer } from "../testing/nats.ts";
import { eventStreamTimeline } from "../testing/event_stream_timeline.ts";
import { CuttableProxy } from "../testing/proxy.ts";

const ignore = CHROMIUM_MISSING !== undefined ||
  natsServerMissing() !== undefined;

/** The instance's HTTP port, from its start line. */
async function httpPortOf(instance: Instance): Promise<number> {
  const [, port] = await instance.process.waitForLine(
    "stderr",
    /HTTP .*http:\/\/127\.0\.0\.1:(\d+)/,
  );
  return Number(port);
}

Deno.test({
  name:
    "the console's stream moves to the other instance when the one it reads stops: resumed by cursor, nothing missed, nothing twice",
  ignore,
  async fn() {
    await using nats = await startNatsServer();
    // No heartbeat moves the resume point mid-test; goodbyes come back soon.
    const flags = [
      "--http-port",
      "0",
      "--heartbeat",
      "60000",
      "--reconnect-jitter",
      "300",
    ];
    await using a = await startInstance(nats.url, { extra: flags });
    await using b = await startInstance(nats.url, { extra: flags });
    const [aHttp, bHttp] = await Promise.all([httpPortOf(a), httpPortOf(b)]);
    await using proxy = new CuttableProxy({
      hostname: "127.0.0.1",
      port: aHttp,
    });
    await using chromium = await launchChromium();
    await using page = await ConsolePage.open(
      chromium,
      `http://${proxy.target}/?topic=moves`,
    );
    await page.untilNotice("notice", "Subscribed to moves");

    // B publishes 1, 2, 3… through gRPC, on the stream both instances share.
    using client = new GreeterClient(b.target);
    await using publisher = new CountingPublisher(client, "moves");
    await page.untilEvents("moves", 10);
    proxy.upstream = { hostname: "127.0.0.1", port: bHttp };
    await stopInstance(a);
    await page.untilNotice("notice", "Resumed after", 10_000);
    await publisher.more(5);
    const published = await publisher.stop();
    await page.assertShowsExactly("moves", published);
    const notices = (await page.notices()).map((n) => `${n.kind}: ${n.text}`);
    assert.equal(
      notices.filter((n) => !n.startsWith("notice: ")).join("\n"),
      "",
      "no gap, no unannounced loss, nothing out of order",
    );
    // The goodbye named the last cursor read on A; B resumed right after it.
    const [, left] = notices.find((n) => n.includes("said goodbye"))
      ?.match(/resuming after (\S+) in about/) ?? [];
    assert.ok(left, notices.join("\n"));
    assert.ok(
      notices.includes(`notice: Resumed after ${left}: nothing missed`),
      notices.join("\n"),
    );
    assert.ok(proxy.accepted >= 2, "a new connection, to B");

    // Over the wire: A's goodbye told a retry: below the first one (1 s and
    // more); the browser came back by itself (the same request) after the
    // goodbye's, not the first's, with the last cursor as Last-Event-ID.
    const timeline = eventStreamTimeline(proxy.connections);
    const retries = timeline.filter((e) => e.kind === "retry");
    const [opening] = retries;
    assert.ok(!opening.goodbye && opening.ms >= 1000, `${opening.ms}`);
    const goodbye = retries.find((e) => e.goodbye);
    assert.ok(goodbye, timeline.map((e) => JSON.stringify(e)).join("\n"));
    assert.ok(goodbye.ms < 300, `the goodbye's retry: ${goodbye.ms}`);
    assert.ok(
      notices.some((n) => n.endsWith(`in about ${goodbye.ms} ms`)),
      "the page says when it comes back",
    );
    const requests = timeline.filter((e) => e.kind === "request");
    const again = requests.find((e) => e.at > goodbye.at);
    assert.ok(again, "a request after the goodbye");
    assert.equal(again.line, requests[0].line, "the browser's own request");
    assert.equal(again.lastEventId, left);
    const waited = again.at - goodbye.at;
    assert.ok(
      waited >= goodbye.ms - 20 && waited < opening.ms,
      `came back ${
        Math.round(waited)
      } ms after the goodbye; told ${opening.ms} ms, then ${goodbye.ms} ms`,
    );
    const own = await page.tab.page.inputValue("#name");
    const listed = await client.listSubscribers({ topic: "moves" });
    assert.deepEqual(
      listed.subscribers.map((s) => s.name),
      [own],
      "the page's subscription lives on B now",
    );
    assert.deepEqual(page.tab.errors, []);
    await stopInstance(b);
  },
});
