import assert from "node:assert/strict";
import { LineWriter } from "../lib/cli/stdout.ts";

Deno.test("LineWriter.write() writes whole lines, a chunk at a time if need be", () => {
  const written: number[] = [];
  const out = new LineWriter({
    writeSync: (data) => (written.push(...data.subarray(0, 2)), 2),
  });
  out.write("abc");
  assert.equal(new TextDecoder().decode(new Uint8Array(written)), "abc\n");
  assert.equal(out.closed.aborted, false);
});

Deno.test("LineWriter.write() aborts closed once the reader has gone, and writes nothing more", () => {
  let calls = 0;
  const out = new LineWriter({
    writeSync: () => {
      calls++;
      throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
    },
  });
  out.write("one");
  assert.equal(out.closed.aborted, true);
  out.write("two");
  assert.equal(calls, 1);
});

Deno.test("LineWriter.write() throws any other failure", () => {
  const out = new LineWriter({
    writeSync: () => {
      throw new Deno.errors.BadResource("Bad resource ID");
    },
  });
  assert.throws(() => out.write("x"), Deno.errors.BadResource);
  assert.equal(out.closed.aborted, false);
});
