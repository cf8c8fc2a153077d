import assert from "node:assert/strict";
import { PatternIndex } from "../lib/bus/pattern_index.ts";
import { mergeById } from "../lib/bus/id_index.ts";

/** The ids of the subscriptions whose patterns match `topic`, each pattern's in turn. */
function matched(index: PatternIndex<{ id: number }>, topic: string) {
  const ids: number[][] = [];
  index.match(topic.split("."), (subscribers) => {
    const found: number[] = [];
    subscribers.forEach((s) => found.push(s.id));
    ids.push(found);
  });
  return ids.sort((a, b) => a[0] - b[0]);
}

Deno.test("PatternIndex.match() follows * for one token, > for one or more, literals exactly", () => {
  const index = new PatternIndex<{ id: number }>();
  const patterns = ["news.*", "news.>", "*.sport", ">", "a.*.c", "news.a"];
  patterns.forEach((pattern, i) => index.add(pattern, { id: i + 1 }));
  assert.equal(index.size, 6);
  assert.deepEqual(matched(index, "news.sport"), [[1], [2], [3], [4]]);
  assert.deepEqual(matched(index, "news.a.b"), [[2], [4]]);
  assert.deepEqual(matched(index, "news"), [[4]]);
  assert.deepEqual(matched(index, "a.b.c"), [[4], [5]]);
  assert.deepEqual(matched(index, "news.a"), [[1], [2], [4], [6]]);
});

Deno.test("PatternIndex.delete() drops a pattern with its last subscription, and the branch it leaves empty", () => {
  const index = new PatternIndex<{ id: number }>();
  const [a, b, c] = [{ id: 1 }, { id: 2 }, { id: 3 }];
  index.add("x.*.y", a);
  index.add("x.*.y", b);
  index.add("x.>", c);
  index.delete("x.*.y", a);
  assert.equal(index.size, 2);
  assert.deepEqual(matched(index, "x.q.y"), [[2], [3]]);
  index.delete("x.*.y", b);
  index.delete("x.*.y", b); // twice: nothing
  index.delete("never.added", a);
  assert.equal(index.size, 1);
  assert.deepEqual(matched(index, "x.q.y"), [[3]]);
  index.delete("x.>", c);
  assert.equal(index.size, 0);
  assert.deepEqual(matched(index, "x.q.y"), []);
  // What was pruned can grow again.
  index.add("x.*.y", a);
  assert.deepEqual(matched(index, "x.q.y"), [[1]]);
});

Deno.test("PatternIndex: a subscription removed while the fan-out visits its pattern is not visited", () => {
  const index = new PatternIndex<{ id: number }>();
  const subs = Array.from({ length: 200 }, (_, i) => ({ id: i + 1 }));
  for (const s of subs) index.add("t.*", s);
  const visited: number[] = [];
  index.match(["t", "x"], (subscribers) =>
    subscribers.forEach((s) => {
      visited.push(s.id);
      // The first removes every other one, as a disconnect policy might.
      if (s.id === 1) {
        for (const other of subs.slice(1, 150)) index.delete("t.*", other);
      }
    }));
  assert.deepEqual(visited, [1, ...subs.slice(150).map((s) => s.id)]);
  assert.deepEqual(matched(index, "t.x")[0], [
    1,
    ...subs.slice(150).map((s) => s.id),
  ]);
});

Deno.test("mergeById() merges id orders in order, each id once", () => {
  const ids = (...list: number[]) => list.map((id) => ({ id })).values();
  assert.deepEqual(
    [...mergeById([ids(1, 5, 9), ids(), ids(2, 5, 10), ids(5), ids(3, 4)])]
      .map((s) => s.id),
    [1, 2, 3, 4, 5, 9, 10],
  );
  assert.deepEqual([...mergeById([])], []);
});
