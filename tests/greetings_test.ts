import assert from "node:assert/strict";
import {
  formatLocalTime,
  helloMessage,
  tickMessage,
  validateName,
} from "../lib/greetings.ts";

Deno.test("helloMessage() and tickMessage() say what the seed says", () => {
  assert.equal(helloMessage("you"), "Hello, you!");
  const time = new Date(2024, 0, 2, 3, 4, 5);
  assert.equal(tickMessage("you", time), "hello you, it's 2024-01-02 03:04:05");
  assert.equal(
    formatLocalTime(new Date(1999, 11, 31, 23, 59, 9)),
    "1999-12-31 23:59:09",
  );
});

Deno.test("validateName() counts characters, not UTF-16 units", () => {
  assert.equal(validateName("😀".repeat(256)), "😀".repeat(256));
  assert.throws(() => validateName("😀".repeat(257)), /257 characters long/);
  assert.throws(() => validateName("a\u2028b"), /control character/);
});

Deno.test("validateName() refuses bidi controls and invisible characters, naming the one found", () => {
  for (
    const [name, found] of [
      ["eve\u202eexe.txt", "U+202E"], // right-to-left override
      ["\u2066ann", "U+2066"], // left-to-right isolate
      ["an\u200bn", "U+200B"], // zero-width space
      ["ann\ufeff", "U+FEFF"], // zero-width no-break space
      ["\u200dann", "U+200D"], // a joiner that joins nothing
      ["a\u200cb", "U+200C"],
    ] as const
  ) {
    assert.throws(
      () => validateName(name),
      new RegExp(
        `contains ${
          found.replace("+", "\\+")
        }, an invisible or text-direction character`,
      ),
      name,
    );
  }
  // Scripts and emoji that need joiners keep them.
  for (
    const name of [
      "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
      "👨\u200d👩\u200d👧",
    ]
  ) {
    assert.equal(validateName(name), name);
  }
});
