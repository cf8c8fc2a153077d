/** The contract's run-time descriptors, held to what `buf build` compiles. */

import assert from "node:assert/strict";
import { equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { loadRegistry } from "../lib/wire/descriptors.ts";
import { BUF_MISSING } from "../testing/buf.ts";
import { ROOT } from "../testing/process.ts";

if (BUF_MISSING) {
  console.warn(`wire_descriptors_test.ts ignored: ${BUF_MISSING}`);
}

Deno.test({
  name: "loadRegistry() describes helloworld.proto as buf compiles it",
  ignore: BUF_MISSING !== undefined,
  async fn() {
    const built = await new Deno.Command("buf", {
      args: [
        "build",
        "protos",
        "--path",
        "protos/helloworld.proto",
        "--exclude-source-info",
        "-o",
        "-",
      ],
      cwd: ROOT,
    }).output();
    assert.ok(built.success, new TextDecoder().decode(built.stderr));
    const fromBuf = fromBinary(FileDescriptorSetSchema, built.stdout).file
      .find((file) => file.name === "helloworld.proto")!;
    // buf writes an empty MethodOptions for `rpc X(...) returns (...) {}`.
    for (const service of fromBuf.service) {
      for (const method of service.method) {
        if (
          method.options &&
          toBinary(MethodOptionsSchema, method.options).length === 0
        ) method.options = undefined;
      }
    }
    const ours = loadRegistry().getFile("helloworld.proto")!.proto;
    assert.ok(
      equals(FileDescriptorProtoSchema, ours, fromBuf),
      "the run-time descriptors differ from buf's",
    );
  },
});
