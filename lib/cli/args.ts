/**
 * Splitting a command line into flags and positionals with `node:util`
 * `parseArgs`, by a table of settings, with `-h/--help` and `--version`
 * added, and an unknown option answered with the nearest flag.
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
  /** `--version` was given. */
  version: boolean;
}

type ParseOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

function parseOptions(table: SettingTable): ParseOptions {
  const options: ParseOptions = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
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
 * Optimal string alignment distance: edits (insert, delete, substitute,
 * swap two neighbours) that turn `a` into `b`.
 */
export function editDistance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i || j),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate nearest to `word`, when close enough to be a typo of it: at
 * most one edit per three letters, and never more than two.
 *
 * @example
 * ```ts
 * import { nearest } from "./args.ts";
 * nearest("prot", ["port", "host"]); // "port"
 * nearest("nope", ["port", "host"]); // undefined
 * ```
 */
export function nearest(
  word: string,
  candidates: Iterable<string>,
): string | undefined {
  const limit = Math.max(1, Math.min(2, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** The message for the first option in `args` that `options` lacks. */
function unknownOption(
  args: string[],
  options: ParseOptions,
  others: { command: string; table: SettingTable } | undefined,
): string | undefined {
  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== "option" || token.name in options) continue;
    const isShort = !token.rawName.startsWith("--");
    if (isShort && Object.values(options).some((o) => o.short === token.name)) {
      continue;
    }
    const message = `Unknown option "${token.rawName}"`;
    const hint = isShort
      ? undefined
      : nearest(token.name, Object.keys(options));
    if (hint !== undefined) return `${message}; did you mean "--${hint}"?`;
    const elsewhere = others &&
      Object.values(others.table).some((s) => s.flag === token.name);
    return elsewhere
      ? `${message} (it is an option of greeter ${others.command})`
      : message;
  }
}

/**
 * Splits `args` by the flags of `table`. Throws {@linkcode ConfigError} for
 * an unknown option (naming the nearest flag, or the other subcommand that
 * has it), a missing value or a value given to a flag that takes none.
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
  others?: { command: string; table: SettingTable },
): SplitArgs {
  const options = parseOptions(table);
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
      ? unknownOption(args, options, others)
      : undefined;
    throw new ConfigError(message ?? (error as Error).message, {
      cause: error,
    });
  }
  const { help, version, ...values } = parsed.values;
  return {
    values: values as SplitArgs["values"],
    positionals: parsed.positionals,
    help: help === true,
    version: version === true,
  };
}
