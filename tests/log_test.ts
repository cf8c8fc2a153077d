import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";
import { quote } from "../lib/escape.ts";
import { validateName } from "../lib/greetings.ts";
import { renderFollow } from "../lib/cli/render.ts";

Deno.test("Logger writes text and JSON lines at or above its level", () => {
  const lines: string[] = [];
  const now = () => Date.UTC(2024, 0, 2, 3, 4, 5);
  const text = new Logger({ level: "info", write: (l) => lines.push(l), now });
  text.debug("hidden");
  text.info('client "you" is leaving.', { subscription: 3, reason: "aborted" });
  assert.deepEqual(lines, [
    '2024-01-02T03:04:05.000Z INFO client "you" is leaving. subscription=3 reason="aborted"',
  ]);
  const json = new Logger({ format: "json", write: (l) => lines.push(l), now });
  json.warn("careful", { n: 1 });
  assert.deepEqual(JSON.parse(lines[1]), {
    time: "2024-01-02T03:04:05.000Z",
    level: "warn",
    msg: "careful",
    n: 1,
  });
});

Deno.test("Logger shows the fields a message names in it for people, and keeps a JSON msg constant", () => {
  const lines: string[] = [];
  const now = () => 0;
  const fields = { name: "j\u202e", subscription: 3, topics: ["tick", "a.b"] };
  new Logger({ write: (l) => lines.push(l), now }).info(
    "client {name} subscribed.",
    fields,
  );
  new Logger({ format: "json", write: (l) => lines.push(l), now }).info(
    "client {name} subscribed.",
    fields,
  );
  assert.equal(
    lines[0],
    '1970-01-01T00:00:00.000Z INFO client "j\\u202e" subscribed. subscription=3 topics="tick,a.b"',
  );
  assert.ok(lines[1].includes('"name":"j\\u202e"'), lines[1]);
  assert.deepEqual(JSON.parse(lines[1]), {
    time: "1970-01-01T00:00:00.000Z",
    level: "info",
    msg: "client subscribed.",
    name: "j\u202e",
    subscription: 3,
    topics: ["tick", "a.b"],
  });
});

Deno.test("Logger drops a line its sink cannot take instead of throwing", () => {
  const log = new Logger({
    write: () => {
      throw new Error("Broken pipe");
    },
  });
  log.info("nobody hears this");
  log.error("nor this");
});

Deno.test("quote() keeps a client's value from passing for the line's own words", () => {
  assert.equal(
    quote('eve is leaving. subscription=1 reason="closed" x='),
    '"eve is leaving. subscription=1 reason=\\"closed\\" x="',
  );
  // Line breaks, C1 controls, bidi overrides and zero-width characters.
  assert.equal(
    quote("a\nb\u009bc\u202ed\u200be"),
    '"a\\nb\\u009bc\\u202ed\\u200be"',
  );
  const lines: string[] = [];
  const log = new Logger({ write: (l) => lines.push(l), now: () => 0 });
  log.info("message\nforged", { peer: "x\u2028y", n: 2, ok: true });
  assert.deepEqual(lines, [
    '1970-01-01T00:00:00.000Z INFO message\\u000aforged peer="x\\u2028y" n=2 ok=true',
  ]);
});

Deno.test("a log line, a refused name's error and the client's output escape the same characters", () => {
  // One from each kind; the last five were escaped by only some of the three.
  const unsafe = [
    "\u0007", // C0 (BEL)
    "\u009b", // C1 (CSI)
    "\u2028", // line separator
    "\u202e", // bidi override
    "\u2067", // bidi isolate
    "\u200b", // zero-width space
    "\ufeff", // byte-order mark
    "\u00ad", // soft hyphen
    "\u061c", // Arabic letter mark
    "\u180e", // Mongolian vowel separator
    "\u034f", // combining grapheme joiner
    "\u3164", // Hangul filler
  ];
  // Unassigned between the invisible operators and the isolates: names
  // may hold it (it is not in the deceptive set), so logs escape it.
  const logOnly = ["\u2065"];
  const escapedOf = (c: string) =>
    `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  const logged = (text: string) => {
    const lines: string[] = [];
    new Logger({ write: (l) => lines.push(l) }).info("a", { name: text });
    return lines[0];
  };
  const printed = (text: string) =>
    renderFollow({
      kind: "event",
      cursor: { epoch: "e", seq: 1 },
      timeMs: 0,
      topic: text,
      payload: new TextEncoder().encode(text),
      replayed: false,
    });
  const refused = (text: string) => {
    try {
      validateName(text);
    } catch (error) {
      return (error as Error).message;
    }
    return "";
  };
  for (const c of unsafe) {
    const escaped = escapedOf(c);
    const text = `x${c}y`;
    for (
      const [where, shown] of [
        ["log", logged(text)],
        ["error", refused(text)],
        ["client", printed(text)],
      ]
    ) {
      assert.ok(
        shown.includes(`x${escaped}y`),
        `${where}: ${escaped} in ${shown}`,
      );
      assert.ok(!shown.includes(c), `${where}: raw ${escaped}`);
    }
  }
  for (const c of logOnly) {
    const shown = `x${escapedOf(c)}y`;
    assert.ok(logged(`x${c}y`).includes(shown), logged(`x${c}y`));
    assert.ok(printed(`x${c}y`).includes(shown));
  }
});
