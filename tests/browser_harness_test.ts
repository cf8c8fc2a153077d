// The browser harness (testing/browser.ts) against a tiny page served here:
// it drives a real Chromium, notices what goes wrong in a page, bounds its
// waits, and closes everything.
import assert from "node:assert/strict";
import {
  CHROMIUM_MISSING,
  launchChromium,
  type TestBrowser,
} from "../testing/browser.ts";
import { waitFor } from "../testing/server.ts";

const ignore = CHROMIUM_MISSING !== undefined;

const PAGES: Record<string, [string, string]> = {
  "/": [
    "text/html",
    `<!doctype html><meta charset="utf-8"><title>t</title>
<ol id="rows"></ol><script type="module" src="/page.js"></script>`,
  ],
  "/page.js": [
    "text/javascript",
    `const source = new EventSource("/events");
source.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.lastEventId + " " + e.data;
  document.getElementById("rows").append(li);
};`,
  ],
  "/broken": [
    "text/html",
    `<!doctype html><p>broken</p><script>window.inline = 1;</script>
<script type="module" src="/throws.js"></script>`,
  ],
  "/throws.js": ["text/javascript", `throw new Error("boom in the page");`],
};

/** A server for PAGES, and an event stream of three events at /events. */
function servePages() {
  const utf8 = new TextEncoder();
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/events") {
        const body = [1, 2, 3].map((n) => `id: e:${n}\ndata: event ${n}\n\n`)
          .join("");
        // Ends the response: the EventSource reconnects later, after retry.
        return new Response(utf8.encode(`retry: 60000\n\n${body}`), {
          headers: { "content-type": "text/event-stream" },
        });
      }
      if (path === "/favicon.ico") return new Response(null, { status: 204 });
      const found = PAGES[path];
      if (!found) return new Response("Not found", { status: 404 });
      return new Response(found[1], {
        headers: {
          "content-type": found[0],
          "content-security-policy": "default-src 'self'",
        },
      });
    },
  );
}

Deno.test({
  name:
    "testing/browser.ts drives Chromium, records a page's errors, bounds its waits, and closes it",
  ignore,
  async fn(t) {
    await using server = servePages();
    const origin = `http://127.0.0.1:${server.addr.port}`;
    let browser: TestBrowser["browser"];
    {
      await using chromium = await launchChromium();
      browser = chromium.browser;

      await t.step(
        "a page receives an event stream; until() bounds a wait and names it",
        async () => {
          await using tab = await chromium.open(`${origin}/`);
          const rows = tab.page.locator("#rows li");
          await tab.until("the third event", rows.nth(2));
          assert.deepEqual(await rows.allTextContents(), [
            "e:1 event 1",
            "e:2 event 2",
            "e:3 event 3",
          ]);
          await assert.rejects(
            tab.until("a row that never comes", tab.page.locator("#nope"), 200),
            (error: Error) => {
              assert.match(
                error.message,
                /^Timed out after 200 ms waiting for a row that never comes in the page\.\nPage text: e:1 event 1\n/,
              );
              return true;
            },
          );
          assert.deepEqual(tab.errors, []);
          assert.deepEqual(tab.consoleErrors, []);
        },
      );

      await t.step(
        "a page's uncaught error and CSP violation are recorded",
        async () => {
          await using tab = await chromium.open(`${origin}/broken`);
          // The module runs after parsing: its error comes a little later.
          await waitFor("the page's error", () => tab.errors.length > 0);
          assert.match(tab.errors.join("\n"), /boom in the page/);
          assert.match(
            tab.consoleErrors.join("\n"),
            /Content Security Policy/,
            "the inline script was refused, and said so",
          );
        },
      );
      assert.ok(browser.isConnected());
    }
    assert.equal(browser.isConnected(), false, "disposed: Chromium closed");
  },
});
