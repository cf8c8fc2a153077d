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
 * Generates the stubs of the seed's own proto (tests/seed/helloworld.proto)
 * into a new temporary directory, with the Python program `source` as
 * `file` beside them. Returns the directory; the caller removes it.
 */
export async function pythonProgram(
  file: string,
  source: string,
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
    await Deno.remove(dir, { recursive: true });
    throw new Error(`protoc failed: ${new TextDecoder().decode(stderr)}`);
  }
  await Deno.writeTextFile(join(dir, file), source);
  return dir;
}

/**
 * The seed's program `file` with `from` replaced by `to` (its address),
 * beside the stubs ({@linkcode pythonProgram}). Returns the directory; the
 * caller removes it.
 */
export async function seedProgram(
  file: string,
  from: string,
  to: string,
): Promise<string> {
  const source = await Deno.readTextFile(join(SEED, file));
  if (!source.includes(from)) {
    throw new Error(`${file} no longer contains ${from}`);
  }
  return await pythonProgram(file, source.replaceAll(from, to));
}
