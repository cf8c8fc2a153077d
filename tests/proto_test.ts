import assert from "node:assert/strict";
import { buf, BUF_MISSING } from "../testing/buf.ts";

if (BUF_MISSING) console.warn(`proto_test.ts ignored: ${BUF_MISSING}`);

Deno.test({
  name: "the protos pass buf lint (seed names excepted, see buf.yaml)",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    const out = await buf(["lint"]);
    assert.ok(out.success, out.stdout + out.stderr);
  },
});

Deno.test({
  name:
    "helloworld.proto is wire-compatible with the seed's (buf breaking, WIRE)",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    const out = await buf(["breaking", "protos", "--against", "tests/seed"]);
    assert.ok(out.success, out.stdout + out.stderr);
  },
});
