// What reaches an instance through the engine from elsewhere, checked as a
// caller's input is (lib/server/engine_input.ts).
import assert from "node:assert/strict";
import {
  engineEventCheck,
  listedSubscription,
  refusalLog,
} from "../lib/server/engine_input.ts";
import { presencePayload } from "../lib/server/server_hub.ts";
import { Logger } from "../lib/log.ts";

const text = new TextEncoder();

Deno.test("engineEventCheck() takes what Publish takes and what instances write, and refuses the rest with a reason", () => {
  const check = engineEventCheck({
    maxPublishBytes: 16,
    maxMessageBytes: 1024,
  });
  const info = {
    id: 4294967297,
    name: "ann",
    topics: ["news"],
    since: 0,
    delivered: 0,
    dropped: 0,
    buffered: 0,
    labels: {},
  };
  const taken: [string, Uint8Array][] = [
    ["news", text.encode("sixteen bytes!!!")],
    ["a/b:c-d_e.f", new Uint8Array(0)],
    ["tick", new Uint8Array(0)],
    ["$presence", presencePayload({ action: "join", subscription: info })],
  ];
  for (const [topic, data] of taken) {
    assert.equal(check(topic, data), undefined, topic);
  }
  // What an instance writes on $presence, at its longest, is taken too.
  const long = presencePayload({
    action: "leave",
    subscription: {
      ...info,
      name: "n".repeat(256),
      topics: Array.from({ length: 64 }, (_, i) => `t${i}`),
    },
    reason: "slow-consumer",
  });
  assert.equal(
    engineEventCheck({ maxPublishBytes: 16, maxMessageBytes: 64 * 1024 })(
      "$presence",
      long,
    ),
    undefined,
  );
  const presence = (change: unknown) => text.encode(JSON.stringify(change));
  const join = { action: "join", subscription_id: 3, name: "x", topics: ["*"] };
  const refused: [string, Uint8Array, string, RegExp][] = [
    ["news", new Uint8Array(17), "size", /17 bytes, over this instance's 16/],
    ["tick", new Uint8Array(1), "tick", /a tick with a payload of 1 bytes/],
    [
      "$presence",
      new Uint8Array(513),
      "size",
      /over this instance's 512 \(--max-message-size, less 512\)/,
    ],
    ["", new Uint8Array(0), "topic", /topic "", which Publish refuses/],
    ["\u001b[2J", new Uint8Array(0), "topic", /topic "\\u001b\[2J"/],
    ["x".repeat(3000), new Uint8Array(0), "topic", /"x{160}"…/],
    ["$other", new Uint8Array(0), "topic", /Publish refuses/],
    ["$presence", text.encode("{"), "presence", /not JSON/],
    ["$presence", new Uint8Array([0xff]), "presence", /not JSON/],
    ["$presence", presence([]), "presence", /action "undefined"/],
    [
      "$presence",
      presence({ ...join, action: "hi" }),
      "presence",
      /action "hi"/,
    ],
    [
      "$presence",
      presence({ ...join, subscription_id: 1e18 }),
      "presence",
      /a \$presence join: subscription_id 1000000000000000000 is out of range/,
    ],
    [
      "$presence",
      presence({ ...join, name: "ro\u001bot" }),
      "presence",
      /a \$presence join: Name "ro\\u001bot" contains a control character/,
    ],
    [
      "$presence",
      presence({ ...join, topics: ["news.>", "\n"] }),
      "presence",
      /Invalid topic/,
    ],
    [
      "$presence",
      presence({ ...join, reason: "closed" }),
      "presence",
      /a \$presence join with reason "closed"/,
    ],
    [
      "$presence",
      presence({ ...join, action: "leave", reason: "forged" }),
      "presence",
      /reason "forged"/,
    ],
  ];
  for (const [topic, data, reason, detail] of refused) {
    const refusal = check(topic, data);
    assert.equal(refusal?.reason, reason, `${topic}: ${refusal?.detail}`);
    assert.match(refusal!.detail, detail, topic);
    assert.ok(!refusal!.detail.includes("\u001b"), "escaped");
  }
});

Deno.test("listedSubscription() takes an entry as this instance lists its own, and refuses names, topics and counts it would not", () => {
  const entry = {
    id: 4294967297,
    name: "ann",
    topics: ["news", "$presence"],
    since: 1,
    delivered: 2,
    dropped: 3,
    buffered: 4,
    labels: { peer: "10.0.0.1:5000" },
    extra: "dropped",
  };
  // No labels (peers stay with their instance), nothing unknown.
  const { extra: _, ...known } = entry;
  assert.deepEqual(listedSubscription(entry), { ...known, labels: {} });
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ id: 0 }, /id 0 is out of range/],
    [{ name: 7 }, /its name is missing/],
    [{ name: "\u001b[31mroot" }, /contains a control character/],
    [{ name: "x".repeat(257) }, /257 characters long/],
    [{ name: "an\u200bn" }, /U\+200B/],
    [{ topics: [] }, /its topics are missing/],
    [{ topics: Array(65).fill("t") }, /Too many topics \(65\)/],
    [{ topics: ["ok", "\u001b"] }, /Invalid topic/],
    [{ delivered: 1e18 }, /delivered 1000000000000000000 is not a safe/],
    [{ dropped: -1 }, /dropped -1/],
    [{ since: "0" }, /since 0 is not a safe integer/],
  ];
  for (const [fields, message] of refused) {
    assert.throws(
      () => listedSubscription({ ...entry, ...fields }),
      message,
      JSON.stringify(fields),
    );
  }
});

Deno.test("refusalLog() writes one line per reason per minute, then says how many more there were", () => {
  const lines: string[] = [];
  let now = 0;
  const log = new Logger({ write: (line) => lines.push(line), now: () => 0 });
  const refused = refusalLog(log, "Refused", { now: () => now });
  refused("size", "big");
  refused("size", "bigger");
  refused("topic", "odd");
  now += 60_000;
  refused("size", "biggest", { seq: 9 });
  assert.deepEqual(lines.map((line) => line.replace(/^\S+ /, "")), [
    'WARN Refused reason="size" detail="big"',
    'WARN Refused reason="topic" detail="odd"',
    'WARN Refused reason="size" detail="biggest" seq=9 moreSinceLastLine=1',
  ]);
});
