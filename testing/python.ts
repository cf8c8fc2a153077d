/**
 * The seed's own Python programs, runnable: Debian's python3-grpcio and
 * python3-grpc-tools under Debian's python3 (`.ci/run` installs them). Used
 * by the wire-compatibility tests and by the bench's unary comparison.
 *
 * @module
 */

import { join } from "node:path";
import { ROOT } from "./process.ts";

/** Debian's python3, which has the packages (a pyenv one may not). */
export const PYTHON = "/usr/bin/python3";

/** Where the seed's programs and proto live. */
export const SEED = join(ROOT, "tests", "seed");

/** Why the seed's Python cannot run here, or `undefined` when it can. */
export function pythonGrpcMissing(): string | undefined {
  try {
    const { success } = new Deno.Command(PYTHON, {
      args: ["-c", "import grpc, grpc_tools"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return success ? undefined : "python3 lacks grpc or grpc_tools";
  } catch {
    return `${PYTHON} not found`;
  }
}

/**
 * Generates the stubs from the seed's own proto (tests/seed/helloworld.proto)
 * into a new temporary directory and copies in the seed program `file` with
 * `from` replaced by `to` (its address). Returns the directory; the caller
 * removes it.
 */
export async function seedProgram(
  file: string,
  from: string,
  to: string,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "greeter_seed_" });
  const { success, stderr } = await new Deno.Command(PYTHON, {
    args: [
      "-m",
      "grpc_tools.protoc",
      `-I${SEED}`,
      `--python_out=${dir}`,
      `--grpc_python_out=${dir}`,
      join(SEED, "helloworld.proto"),
    ],
  }).output();
  if (!success) {
    throw new Error(`protoc failed: ${new TextDecoder().decode(stderr)}`);
  }
  const source = await Deno.readTextFile(join(SEED, file));
  if (!source.includes(from)) {
    throw new Error(`${file} no longer contains ${from}`);
  }
  await Deno.writeTextFile(join(dir, file), source.replaceAll(from, to));
  return dir;
}
