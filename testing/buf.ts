/**
 * The `buf` command (npm `@bufbuild/buf`), when installed: `.ci/run`
 * installs it; elsewhere the tests that need it report themselves ignored.
 *
 * @module
 */

import { ROOT } from "./process.ts";

function bufMissing(): string | undefined {
  try {
    const { success } = new Deno.Command("buf", { args: ["--version"] })
      .outputSync();
    return success ? undefined : "buf --version failed";
  } catch {
    return "buf is not installed (npm i -g @bufbuild/buf)";
  }
}

/** Why buf cannot run here, or undefined when it can. */
export const BUF_MISSING: string | undefined = bufMissing();

/** Runs `buf ARGS…` in the project root. */
export async function buf(
  args: string[],
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command("buf", { args, cwd: ROOT }).output();
  const text = new TextDecoder();
  return {
    success: out.success,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}
