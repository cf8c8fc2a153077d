// The live console (lib/http/console/) in a real Chromium against a real
// server, as a person uses it: the clock at once; what gRPC publishes shown
// as it is; a cut connection resumed by cursor with nothing missed and
// nothing twice; and refusals (a bad token, a forbidden topic, a page of an
// unlisted origin) refused in the browser too.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ClientCursor, GreeterClient } from "../lib/client/client.ts";
import { CHROMIUM_MISSING, launchChromium } from "../testing/browser.ts";
import { ConsolePage } from "../testing/console_page.ts";
import { CountingPublisher } from "../testing/counting_publisher.ts";
import { eventStreamTimeline } from "../testing/event_stream_timeline.ts";
import { ROOT, spawnTask } from "../testing/process.ts";
import { CuttableProxy } from "../testing/proxy.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

const ignore = CHROMIUM_MISSING !== undefined;
const utf8 = new TextEncoder();

const cursorText = (c: ClientCursor) => `${c.epoch}:${c.seq}`;
const seqOf = (cursor: string) => Number(cursor.split(":")[1]);

/**
 * A gRPC subscription (the project's client library) to `topics`, once
 * subscribed: the events it receives, as they come; dispose of it to end it.
 */
async function grpcReader(
  client: GreeterClient,
  name: string,
  topics: string[],
) {
  const abort = new AbortController();
  const events: { cursor: string; payload: Uint8Array }[] = [];
  const stream = client.subscribe(name, { topics, signal: abort.signal });
  const first = await stream.next();
  assert.equal(first.value?.kind, "subscribed");
  const reading = (async () => {
    try {
      for await (const message of stream) {
        if (message.kind !== "event") continue;
        events.push({
          cursor: cursorText(message.cursor),
          payload: new Uint8Array(message.payload),
        });
      }
    } catch {
      // Ended by the dispose.
    }
  })();
  return {
    events,
    async [Symbol.asyncDispose]() {
      abort.abort();
      await reading;
    },
  };
}

/**
 * A page of another origin that tries to read the greeter's stream and to
 * publish (the greeter's origin in its `?greeter=`), and says how it went.
 */
const FOREIGN_PAGE =
  `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<p id="stream">waiting</p><p id="publish">waiting</p>
<script type="module" src="/foreign.js"></script>`;
const FOREIGN_SCRIPT =
  `const greeter = new URLSearchParams(location.search).get("greeter");
const say = (id, text) => { document.getElementById(id).textContent = text; };
const source = new EventSource(greeter + "/v1/events?topic=tick&name=foreign", { withCredentials: true });
source.onmessage = (e) => { say("stream", "read " + e.lastEventId); source.close(); };
source.onerror = () => { say("stream", "error"); source.close(); };
fetch(greeter + "/helloworld.Greeter/Publish", {
  method: "POST",
  credentials: "include",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ topic: "cors", payload: btoa(location.origin) }),
}).then((r) => say("publish", "published " + r.status), (e) => say("publish", "failed: " + e));`;

/** Serves the foreign page on 127.0.0.1:0, reached as 127.0.0.1 or as localhost: two origins. */
function serveForeignPage(): Deno.HttpServer<Deno.NetAddr> {
  const files: Record<string, [string, string]> = {
    "/": ["text/html; charset=utf-8", FOREIGN_PAGE],
    "/foreign.js": ["text/javascript", FOREIGN_SCRIPT],
  };
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const file = files[path];
      if (!file) {
        return new Response(null, {
          status: path === "/favicon.ico" ? 204 : 404,
        });
      }
      return new Response(file[1], { headers: { "content-type": file[0] } });
    },
  );
}

Deno.test({
  name:
    "the console in Chromium: the clock at once, gRPC's events as sent, a cut resumed exactly, refusals shown",
  ignore,
  async fn(t) {
    await using foreign = serveForeignPage();
    const listed = `http://127.0.0.1:${foreign.addr.port}`;
    const unlisted = `http://localhost:${foreign.addr.port}`;
    await using server = await startTestServer({
      httpPort: 0,
      intervalMs: 200,
      heartbeatMs: 60_000, // no heartbeat moves a resume point mid-test
      reconnectJitterMs: 500, // a cut page comes back within 1-1.5 s
      httpCorsOrigins: [listed],
    });
    const httpPort = server.server.httpPort!;
    const origin = `http://127.0.0.1:${httpPort}`;
    using client = new GreeterClient(server.target);
    await using chromium = await launchChromium();

    await t.step(
      "the README's quick start: deno task serve with its --http-port, and http://localhost:PORT/ shows the clock",
      async () => {
        const readme = await Deno.readTextFile(join(ROOT, "README.md"));
        const [, flagPort, pagePort] = readme.match(
          /With `--http-port (\d+)`, <http:\/\/localhost:(\d+)\/> is a live console/,
        ) ?? [];
        assert.ok(flagPort, "the README's quick start shows the console");
        assert.equal(pagePort, flagPort);
        // As typed, but on free ports (8080 and 50051 may be taken here).
        await using serve = spawnTask("serve", [
          "--port",
          "0",
          "--http-port",
          "0",
        ]);
        const [, port] = await serve.waitForLine(
          "stderr",
          /INFO HTTP on http:\/\/127\.0\.0\.1:(\d+)/,
        );
        try {
          await using page = await ConsolePage.open(
            chromium,
            `http://localhost:${port}/`,
          );
          await page.untilEvents("tick", 1, 10_000);
          assert.match(
            await page.tab.page.locator("#clock").textContent() ?? "",
            /^\d\d:\d\d:\d\d$/,
          );
          assert.deepEqual(page.tab.errors, []);
        } catch (error) {
          throw new Error(
            `${error}\nThe server said:\n${serve.stderr.join("\n")}`,
            {
              cause: error,
            },
          );
        }
        serve.signalGroup("SIGINT");
        assert.equal((await serve.exit()).code, 0, serve.stderr.join("\n"));
      },
    );

    await t.step(
      "it opens on the clock: a newcomer sees ticks at once",
      async () => {
        await using page = await ConsolePage.open(chromium, `${origin}/`);
        await page.untilEvents("tick", 2);
        const [first, second] = await page.events();
        assert.equal(seqOf(second.cursor), seqOf(first.cursor) + 1);
        assert.equal(first.payloadKind, "empty");
        assert.match(
          await page.tab.page.locator("#clock").textContent() ?? "",
          /^\d\d:\d\d:\d\d$/,
        );
        assert.deepEqual(await page.state(), {
          state: "open",
          text: "Following tick",
        });
        const [subscribed] = await page.notices();
        assert.match(
          subscribed.text,
          /^Subscribed to tick as subscription \d+: events after \w+:\d+ follow$/,
        );
        assert.deepEqual(page.tab.errors, []);
        assert.deepEqual(
          page.tab.consoleErrors,
          [],
          "no CSP violation, no failed load",
        );
      },
    );

    await t.step(
      "it shows what a gRPC client published: text as text (escaped), other bytes as base64",
      async () => {
        await using page = await ConsolePage.open(
          chromium,
          `${origin}/?topic=news&topic=tick`,
        );
        await page.untilNotice("notice", "Subscribed to news, tick");
        const hostile = "<img src=x onerror=alert(1)> & </td> é";
        const text = await client.publish("news", utf8.encode(hostile));
        const bytes = await client.publish("news", new Uint8Array([0xff, 0]));
        await page.untilEvents("news", 2);
        const news = (await page.events()).filter((e) => e.topic === "news");
        assert.deepEqual(news, [
          {
            kind: "event",
            cursor: cursorText(text.cursor),
            topic: "news",
            payload: hostile,
            payloadKind: "text",
          },
          {
            kind: "event",
            cursor: cursorText(bytes.cursor),
            topic: "news",
            payload: "base64 · 2 bytes/wA=",
            payloadKind: "base64",
          },
        ]);
        assert.equal(
          await page.tab.page.locator("#rows img").count(),
          0,
          "markup is shown, never made",
        );
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "it publishes what a gRPC subscriber receives, says why a publish is refused, and lists presence",
      async () => {
        await using reader = await grpcReader(client, "grpc-reader", ["news"]);
        await using page = await ConsolePage.open(
          chromium,
          `${origin}/?topic=news`,
        );
        await page.untilNotice("notice", "Subscribed to news");
        const answer = await page.publish("news", "from the browser, é");
        const [, cursor] = answer.match(/^Published on news at (\S+)$/) ?? [];
        assert.ok(cursor, answer);
        assert.match(
          await page.publish("news", "/w==", { base64: true }),
          /^Published on news at /,
        );
        await waitFor(
          "the gRPC subscriber's two events",
          () => reader.events.length >= 2,
        );
        assert.deepEqual(reader.events, [
          { cursor, payload: utf8.encode("from the browser, é") },
          { cursor: reader.events[1].cursor, payload: new Uint8Array([0xff]) },
        ]);
        await page.untilEvents("news", 2);
        assert.deepEqual(
          (await page.events()).map((e) => e.cursor),
          reader.events.map((e) => e.cursor),
          "the page shows them too, at the same cursors",
        );

        assert.match(
          await page.publish("tick", "x"),
          /^Not published: 400 invalid_argument: Cannot publish on "tick"/,
        );
        assert.match(
          await page.publish("news", "!?", { base64: true }),
          /^Not base64: /,
        );

        const { summary, names } = await page.presence("news");
        assert.equal(summary, "2 subscribers of news");
        assert.deepEqual(
          names.toSorted(),
          ["grpc-reader", await page.tab.page.inputValue("#name")].toSorted(),
        );
        assert.equal(
          await page.useToken("anything"),
          "This server takes no tokens: nothing to set",
        );
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "a cut connection is resumed by the browser itself, after the retry: it was told, with Last-Event-ID: nothing missed, nothing twice",
      async () => {
        await using proxy = new CuttableProxy({
          hostname: "127.0.0.1",
          port: httpPort,
        });
        // Opened at a cursor: the browser comes back to the same URL (this
        // one), and its Last-Event-ID must win over the one in it.
        const { cursor } = await client.publish("cut", utf8.encode("before"));
        const opened = cursorText(cursor);
        await using page = await ConsolePage.open(
          chromium,
          `http://${proxy.target}/?topic=cut&after=${opened}`,
        );
        await page.untilNotice("notice", `Resumed after ${opened}`);
        // gRPC publishes 1, 2, 3… while the page reads through the proxy.
        await using publisher = new CountingPublisher(client, "cut");
        await page.untilEvents("cut", 10);
        const cutAt = performance.now();
        await proxy.cut();
        await page.untilNotice("warning", "Connection lost after");
        const lost = (await page.notices()).find((n) =>
          n.text.startsWith("Connection lost after")
        )!.text;
        const [lastRead] = lost.match(
          /(?<=^Connection lost after )\S+(?=; reconnecting…$)/,
        ) ?? [];
        assert.ok(lastRead, lost);
        await page.untilNotice(
          "notice",
          `Resumed after ${lastRead}: nothing missed`,
          10_000,
        );
        await publisher.more(5);
        const published = await publisher.stop();
        await page.assertShowsExactly("cut", published);
        assert.deepEqual(
          (await page.notices()).map((n) =>
            `${n.kind}: ${n.text}`
          ),
          [
            `notice: Resumed after ${opened}: nothing missed`,
            `warning: ${lost}`,
            `notice: Resumed after ${lastRead}: nothing missed`,
          ],
        );

        // What went over the wire: the browser's own reconnection (the
        // same request), with the last cursor shown as Last-Event-ID, no
        // sooner than the retry: the server told on the connection cut.
        const timeline = eventStreamTimeline(proxy.connections);
        const requests = timeline.filter((e) => e.kind === "request");
        const [first] = requests;
        assert.equal(first.lastEventId, undefined);
        assert.equal(
          new URL(first.line.split(" ")[1], "http://x").searchParams.get(
            "last_event_id",
          ),
          opened,
        );
        const told = timeline.findLast((e) =>
          e.kind === "retry" && e.at < cutAt
        );
        assert.ok(told?.kind === "retry" && !told.goodbye, "a retry: told");
        assert.ok(told.ms >= 1000 && told.ms < 1500, `retry: ${told.ms}`);
        const again = requests.find((e) => e.at > cutAt);
        assert.ok(again, "a request after the cut");
        assert.equal(again.line, first.line, "the browser's own reconnection");
        assert.equal(again.lastEventId, lastRead);
        assert.ok(
          again.at - cutAt >= told.ms - 20,
          `came back ${
            Math.round(again.at - cutAt)
          } ms after the cut, told ${told.ms} ms`,
        );
        assert.equal(requests.length, 2, "one reconnection was enough");
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "a page that fell behind is told of the gap: every event shown once or inside a gap, in order",
      async () => {
        await using slow = await startTestServer({
          httpPort: 0,
          intervalMs: 3_600_000,
          heartbeatMs: 60_000,
          bufferSize: 4,
          maxPublishBytes: 64 * 1024,
        });
        await using proxy = new CuttableProxy({
          hostname: "127.0.0.1",
          port: slow.server.httpPort!,
        });
        using slowClient = new GreeterClient(slow.target);
        await using page = await ConsolePage.open(
          chromium,
          `http://${proxy.target}/?topic=bulk`,
        );
        await page.untilNotice("notice", "Subscribed to bulk");
        // The page stops reading: the server's writes back up, past the
        // sockets' buffers (a few MB) into the subscription's 4.
        proxy.pause();
        const big = new Uint8Array(60 * 1024).fill(0x61);
        const published: number[] = [];
        let dropped = 0;
        for (let i = 0; i < 300 && dropped === 0; i++) {
          published.push((await slowClient.publish("bulk", big)).cursor.seq);
          const { subscribers } = await slowClient.listSubscribers({
            topic: "bulk",
          });
          dropped = subscribers[0]?.dropped ?? 0;
        }
        assert.ok(dropped > 0, "the page's subscription fell behind");
        proxy.resume();
        await page.untilNotice("warning", /^Gap: /);
        const last = `${
          cursorText(
            (await slowClient.publish("bulk", big)).cursor,
          )
        }`;
        published.push(seqOf(last));
        await page.tab.until(
          "the last event",
          page.tab.page.locator(`#rows tr[data-cursor="${last}"]`),
        );
        // Walk the log: each published seq is shown, or inside a gap, once.
        const covered: number[] = [];
        for (const row of await page.log()) {
          if (row.kind === "event") {
            assert.match(row.payload, /^a{2000} … 61440 bytes in all$/);
            covered.push(seqOf(row.cursor));
            continue;
          }
          const gap = row.text.match(
            /^Gap: events (\d+) to (\d+) were not delivered \((\d+) missed; slow-consumer\)$/,
          );
          if (!gap) continue;
          const [from, to] = [Number(gap[1]), Number(gap[2])];
          const missed = published.filter((seq) => seq >= from && seq <= to);
          assert.equal(Number(gap[3]), missed.length, row.text);
          covered.push(...missed);
        }
        assert.deepEqual(covered, published);
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "a cursor typed into the form resumes: nothing missed when it is held, said so when it is not",
      async () => {
        await using small = await startTestServer({
          httpPort: 0,
          intervalMs: 3_600_000,
          heartbeatMs: 60_000,
          replaySize: 4,
        });
        using smallClient = new GreeterClient(small.target);
        const cursors: string[] = [];
        for (let n = 1; n <= 8; n++) {
          const { cursor } = await smallClient.publish(
            "held",
            utf8.encode(String(n)),
          );
          cursors.push(cursorText(cursor));
        }
        await using page = await ConsolePage.open(
          chromium,
          `http://127.0.0.1:${small.server.httpPort}/?topic=held&after=${
            cursors[5]
          }`,
        );
        await page.untilNotice(
          "notice",
          `Resumed after ${cursors[5]}: nothing missed`,
        );
        await page.assertShowsExactly("held", ["7", "8"]);
        await page.subscribe("held", cursors[0]);
        await page.untilNotice("warning", "not recovered");
        assert.match(
          (await page.notices()).at(-1)!.text,
          /^Resumed at \w+:4, not recovered \(events after seq 1 through 4 are no longer held; the stream goes on from the oldest still held\): events before it may be missing$/,
        );
        // It goes on from the oldest held, 5: shown after the warning.
        await page.untilEvents("held", 6);
        assert.deepEqual(
          (await page.events()).map((e) => e.payload),
          ["7", "8", "5", "6", "7", "8"],
        );
        assert.equal((await page.state()).state, "open");
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "a refused token and a forbidden topic are refused in the page, which says why",
      async () => {
        await using guarded = await startTestServer({
          httpPort: 0,
          intervalMs: 200,
          tokens: ["reader-token subscribe:tick subscribe:news publish:news"],
        });
        const at = `http://127.0.0.1:${guarded.server.httpPort}`;
        await using page = await ConsolePage.open(chromium, `${at}/`);
        await page.untilNotice("error", "Subscription refused: 401 ");
        assert.equal((await page.state()).state, "refused");
        assert.equal(
          await page.tab.page.locator("#token-status").textContent(),
          "This server needs a token.",
        );
        assert.match(
          await page.useToken("wrong-token"),
          /^Token refused: 401 /,
        );
        assert.equal(
          await page.useToken("reader-token"),
          "Token accepted; the stream uses it now",
        );
        await page.untilEvents("tick", 1);
        assert.equal((await page.state()).state, "open");
        assert.equal(
          await page.tab.page.evaluate("document.cookie"),
          "",
          "the token is in an HttpOnly cookie, out of the page's reach",
        );
        assert.match(
          await page.publish("news", "with the cookie"),
          /^Published on news at /,
        );
        assert.match(
          await page.publish("secret", "x"),
          /^Not published: 403 permission_denied: .*"secret"/,
        );
        assert.match(
          (await page.presence()).summary,
          /^Cannot list: 403 permission_denied: /,
          "presence needs subscribe:$presence",
        );
        await page.subscribe("tick secret");
        await page.untilNotice(
          "error",
          /^Subscription refused: 403 .*"secret"/,
        );
        assert.equal((await page.state()).state, "refused");
        assert.deepEqual(page.tab.errors, []);
      },
    );

    await t.step(
      "a page of an unlisted origin can neither read the stream nor publish; a listed one can",
      async () => {
        await using reader = await grpcReader(client, "cors-reader", ["cors"]);
        const greeter = encodeURIComponent(origin);
        /** What the foreign page at `at` says of its stream and its publish. */
        const outcome = async (at: string) => {
          await using page = await chromium.open(`${at}/?greeter=${greeter}`);
          const [stream, publish] = ["#stream", "#publish"].map((id) =>
            page.page.locator(id)
          );
          for (
            const [what, locator] of [["stream", stream], [
              "publish",
              publish,
            ]] as const
          ) {
            await page.until(
              `the ${what}'s outcome`,
              locator.filter({ hasNotText: "waiting" }),
            );
          }
          return {
            stream: await stream.textContent(),
            publish: await publish.textContent(),
            consoleErrors: page.consoleErrors.join("\n"),
          };
        };
        const refused = await outcome(unlisted);
        assert.equal(refused.stream, "error");
        assert.equal(refused.publish, "failed: TypeError: Failed to fetch");
        assert.match(refused.consoleErrors, /blocked by CORS policy/);
        const allowed = await outcome(listed);
        assert.match(allowed.stream ?? "", /^read \w+:\d+$/);
        assert.equal(allowed.publish, "published 200");
        assert.equal(allowed.consoleErrors, "");
        // Nothing came from the unlisted page: its preflight was refused.
        await client.publish("cors", utf8.encode("marker"));
        await waitFor("the marker", () => reader.events.length >= 2);
        assert.deepEqual(
          reader.events.map((e) => new TextDecoder().decode(e.payload)),
          [listed, "marker"],
        );
      },
    );
  },
});
