// The console page's pure functions (lib/http/console/format.js), as the
// page imports them: payloads shown as text or base64, cursors, topics,
// URLs and refusals.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  clockTime,
  cursorText,
  eventsUrl,
  fromBase64,
  parseCursor,
  parseTopics,
  payloadBytes,
  refusal,
  SHOWN_CHARACTERS,
  showPayload,
  toBase64,
} from "../lib/http/console/format.js";

Deno.test("showPayload() shows UTF-8 as text, anything else as its base64, and an empty payload as empty", () => {
  assert.deepEqual(showPayload(toBase64(payloadBytes("héllo <b>"))), {
    kind: "text",
    text: "héllo <b>",
    bytes: 10,
    cut: false,
  });
  assert.deepEqual(showPayload("/w=="), {
    kind: "base64",
    text: "/w==",
    bytes: 1,
    cut: false,
  });
  // A truncated multi-byte character is not text.
  assert.equal(showPayload(toBase64(new Uint8Array([0xc3]))).kind, "base64");
  assert.deepEqual(showPayload(undefined), {
    kind: "empty",
    text: "",
    bytes: 0,
    cut: false,
  });
  assert.equal(showPayload("").kind, "empty");
});

Deno.test("showPayload() shows at most its limit of characters, and says it cut the rest", () => {
  const long = toBase64(payloadBytes("é".repeat(3000)));
  assert.deepEqual(showPayload(long), {
    kind: "text",
    text: "é".repeat(SHOWN_CHARACTERS),
    bytes: 6000,
    cut: true,
  });
  const binary = toBase64(new Uint8Array(30).fill(0xff));
  assert.deepEqual(showPayload(binary, 8), {
    kind: "base64",
    text: binary.slice(0, 8),
    bytes: 30,
    cut: true,
  });
});

Deno.test("toBase64() and fromBase64() round-trip large payloads and read URL-safe, unpadded base64", () => {
  const bytes = Uint8Array.from(
    { length: 100_000 },
    (_, i) => (i * 7919) % 251,
  );
  const text = toBase64(bytes);
  assert.equal(text, Buffer.from(bytes).toString("base64"));
  assert.deepEqual(fromBase64(text), bytes);
  assert.deepEqual(fromBase64("-_8"), new Uint8Array([0xfb, 0xff]));
  assert.deepEqual(payloadBytes("aGk", true), new Uint8Array([104, 105]));
  assert.throws(() => fromBase64("not base64!"), SyntaxError);
});

Deno.test("parseCursor() reads EPOCH:SEQ and nothing else; cursorText() writes it", () => {
  assert.deepEqual(parseCursor(" 9f2c:42 "), { epoch: "9f2c", seq: 42n });
  assert.deepEqual(
    parseCursor("9f2c:18446744073709551615")?.seq,
    2n ** 64n - 1n,
  );
  for (const bad of ["", "42", "9f2c:", "9f2c:-1", "a:b:1", "9f2c:4x"]) {
    assert.equal(parseCursor(bad), undefined, bad);
  }
  assert.equal(cursorText({ epoch: "9f2c", seq: "42" }), "9f2c:42");
  assert.equal(
    cursorText({ epoch: "9f2c" }),
    "9f2c:0",
    "seq 0 is omitted in proto JSON",
  );
});

Deno.test("parseTopics() splits on spaces and commas, dropping blanks and repeats", () => {
  assert.deepEqual(parseTopics(" tick, news  news,,$presence "), [
    "tick",
    "news",
    "$presence",
  ]);
  assert.deepEqual(parseTopics("  "), []);
});

Deno.test("eventsUrl() has one topic parameter per topic, relative to the page", () => {
  assert.equal(
    eventsUrl("http://h:8080/greeter/", {
      topics: ["tick", "a&b"],
      name: "ann",
      after: "e:4",
    }).href,
    "http://h:8080/greeter/v1/events?topic=tick&topic=a%26b&name=ann&last_event_id=e%3A4",
  );
  assert.equal(
    eventsUrl("http://h/", { topics: [] }).href,
    "http://h/v1/events",
  );
});

Deno.test("refusal() is one line: Connect's code and message, or the body's first line, or the status", () => {
  assert.equal(
    refusal(403, '{"code":"permission_denied","message":"No grant"}'),
    "403 permission_denied: No grant",
  );
  assert.equal(
    refusal(401, "Missing token: send one\nsecond line"),
    "401 Missing token: send one",
  );
  assert.equal(refusal(502, ""), "HTTP 502");
  assert.equal(refusal(400, "x".repeat(400)).length, 4 + 300 + 1);
});

Deno.test("clockTime() is HH:MM:SS.mmm of the local time, empty when not a time", () => {
  const at = new Date(2024, 0, 1, 9, 5, 7, 8).getTime();
  assert.equal(clockTime(String(at)), "09:05:07.008");
  assert.equal(clockTime("soon"), "");
});
