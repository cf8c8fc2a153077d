/**
 * Splitting a command line into flags and positionals with `node:util`
 * `parseArgs`, by a table of settings, with `-h/--help` added.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "../errors.ts";
import type { SettingTable } from "./setting.ts";

/** The flags and positionals of one command line. */
export interface SplitArgs {
  /** Flag values by flag name: a string, `true`, or a list. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Arguments that are not flags. */
  positionals: string[];
  /** `-h` or `--help` was given. */
  help: boolean;
}

type ParseOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

function parseOptions(table: SettingTable): ParseOptions {
  const options: ParseOptions = {
    help: { type: "boolean", short: "h" },
  };
  for (const setting of Object.values(table)) {
    if (setting.flag === undefined) continue;
    options[setting.flag] = {
      type: setting.kind.type === "boolean" ? "boolean" : "string",
      multiple: setting.kind.type === "list",
    };
  }
  return options;
}

/**
 * Splits `args` by the flags of `table`. Throws {@linkcode ConfigError} for
 * an unknown option, a missing value or a value given to a flag that takes
 * none.
 *
 * @example
 * ```ts
 * import { splitArgs } from "./args.ts";
 * import { boolean } from "./setting.ts";
 * const { values } = splitArgs(["--tls"], { tls: boolean({ flag: "tls", help: "" }) });
 * values.tls; // true
 * ```
 */
export function splitArgs(
  args: string[],
  table: SettingTable,
): SplitArgs {
  const options = parseOptions(table);
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
  const { help, ...values } = parsed.values;
  return {
    values: values as SplitArgs["values"],
    positionals: parsed.positionals,
    help: help === true,
  };
}
