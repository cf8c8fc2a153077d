import assert from "node:assert/strict";
import { redactCredentials } from "../lib/grpc/workarounds/log_redaction.ts";

/**
 * Tokens are any run of non-blank characters: quotes and brackets too. Each
 * holds "zz9" after them, which must not be left.
 */
const TOKENS = ["s3cretzz9", 'ab"c]dzz9\\e', "x]zz9", 'q"zz9"', "zz9\\"];

Deno.test("redactCredentials() leaves no part of a token in a metadata dump, whatever the token holds", () => {
  for (const token of TOKENS) {
    for (
      const line of [
        `received headers ${
          JSON.stringify({ authorization: `Bearer ${token}`, te: "trailers" })
        }`,
        `metadata ${
          JSON.stringify({ Authorization: [`Bearer ${token}`], x: ["1"] })
        }`,
        `authorization: Bearer ${token} next`,
        `authorization=${token} next`,
      ]
    ) {
      const redacted = redactCredentials(line);
      assert.ok(
        !redacted.includes("zz9"),
        `${JSON.stringify(token)} left in ${redacted}`,
      );
      assert.match(redacted, /<redacted>/);
    }
  }
});

Deno.test("redactCredentials() keeps the rest of a metadata dump", () => {
  assert.equal(
    redactCredentials(
      `headers {"authorization":"Bearer ab\\"c]d","te":"trailers"}`,
    ),
    `headers {"authorization":["<redacted>"],"te":"trailers"}`,
  );
});
