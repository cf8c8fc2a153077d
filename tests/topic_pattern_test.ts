import assert from "node:assert/strict";
import { InvalidArgumentError } from "../lib/errors.ts";
import { isPattern, TopicPattern } from "../lib/bus/topic_pattern.ts";

Deno.test("TopicPattern.matches(): * is one token, > one or more, $ topics never by wildcard", () => {
  const cases: [string, string, boolean][] = [
    ["news", "news", true],
    ["news", "news.sport", false],
    ["news.*", "news.sport", true],
    ["news.*", "news", false],
    ["news.*", "news.sport.today", false],
    ["news.>", "news.sport", true],
    ["news.>", "news.sport.today", true],
    ["news.>", "news", false],
    ["*.sport", "news.sport", true],
    ["*.sport", "news.weather", false],
    ["*", "news", true], // "*" alone: one token, as in NATS
    ["*", "news.sport", false],
    ["*", "news.sport.today", false],
    [">", "a.b", true],
    [">", "$presence", false],
    ["*", "$presence", false],
    ["$presence", "$presence", true],
    // No token is empty (NATS): a wildcard never stands for one.
    ["news.*", "news.", false],
    ["news.>", "news.", false],
    ["news.>", "news.a..b", false],
    ["*.news", ".news", false],
  ];
  for (const [pattern, topic, expected] of cases) {
    assert.equal(
      new TopicPattern(pattern).matches(topic),
      expected,
      `${pattern} ~ ${topic}`,
    );
  }
});

Deno.test("TopicPattern.covers() holds when every topic of the other is its own", () => {
  const cases: [string, string, boolean][] = [
    ["news.>", "news.*", true],
    ["news.>", "news.a.>", true],
    ["news.>", "news.a", true],
    ["news.*", "news.>", false],
    ["news.*", "news.*", true],
    ["news.a", "news.*", false],
    [">", "*", true],
    ["*", ">", false],
    ["*", "news", true],
    ["*", "*.sport", false],
    ["news.>", ">", false],
    [">", "$presence", false],
    ["$presence", "$presence", true],
    ["a.*.c", "a.b.c", true],
    ["a.*.c", "a.*.d", false],
  ];
  for (const [mine, theirs, expected] of cases) {
    assert.equal(
      new TopicPattern(mine).covers(new TopicPattern(theirs)),
      expected,
      `${mine} covers ${theirs}`,
    );
  }
});

Deno.test("TopicPattern refuses wildcards inside tokens and a > before the end", () => {
  for (
    const bad of [
      "news*",
      "news.>.x",
      "a.b>",
      "has space.*",
      "x".repeat(129),
      "news.*.",
      ".*",
      "a..*",
    ]
  ) {
    assert.throws(
      () => new TopicPattern(bad),
      (e: Error) =>
        e instanceof InvalidArgumentError &&
        /Invalid topic pattern/.test(e.message),
      bad,
    );
  }
  assert.equal(isPattern("news.*"), true);
  assert.equal(isPattern("news.>"), true);
  assert.equal(isPattern("news.sport"), false);
});
