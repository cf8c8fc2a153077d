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
