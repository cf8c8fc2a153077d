/**
 * A table of settings as people read it: the `--help` text, and the rows of
 * the settings tables of the documentation (which a test holds to the table).
 *
 * @module
 */

import type { Setting, SettingTable } from "./setting.ts";

const WIDTH = 80;
const INDENT = 23;

/** `left`, then `words` wrapped in a column of their own. */
function entry(left: string, words: string): string[] {
  const lines: string[] = [];
  let line: string;
  if (left.length <= INDENT - 2) line = left.padEnd(INDENT);
  else {
    lines.push(left);
    line = " ".repeat(INDENT);
  }
  let empty = true;
  for (const word of words.split(" ")) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = " ".repeat(INDENT);
      empty = true;
    }
    line += (empty ? "" : " ") + word;
    empty = false;
  }
  lines.push(line);
  return lines;
}

function shownDefault(setting: Setting<unknown>): string | undefined {
  if (setting.shownDefault !== undefined) return setting.shownDefault;
  const value = setting.default;
  if (value === undefined || value === false || value === "") return undefined;
  if (Array.isArray(value)) return undefined;
  return String(value);
}

function what(setting: Setting<unknown>, separator: string): string {
  let text = setting.help;
  if (setting.kind.type === "choice") {
    text += `: ${setting.kind.values.join(separator)}`;
  }
  if (setting.modes) {
    const noun = setting.modes.length > 1 ? "modes" : "mode";
    text += ` (${noun} ${setting.modes.join(", ")})`;
  }
  return text;
}

/** `--flag ARG`, as help and the documentation write it. */
function flagText(setting: Setting<unknown>): string {
  return `--${setting.flag}${setting.arg ? ` ${setting.arg}` : ""}`;
}

/**
 * The help text of a command: `head`, then one entry per flag of `table`
 * (what it does, its environment variable in brackets, its default), then
 * the settings read from the environment only.
 *
 * @example
 * ```ts
 * import { renderUsage } from "./usage.ts";
 * import { integer } from "./setting.ts";
 * const table = { port: integer({ flag: "port", arg: "PORT", help: "port to bind", min: 0, max: 65535, default: 50051 }) };
 * renderUsage("Usage: greeter serve [options]", table).includes("--port PORT"); // true
 * ```
 */
export function renderUsage(head: string, table: SettingTable): string {
  const lines = [head, "", "Options (environment variable in brackets):"];
  const envOnly: string[] = [];
  for (const setting of Object.values(table)) {
    const fallback = shownDefault(setting);
    const words = [
      what(setting, " | "),
      setting.flag !== undefined && setting.env && `[${setting.env}]`,
      fallback && `(default ${fallback})`,
    ].filter(Boolean).join(" ");
    if (setting.flag === undefined) {
      envOnly.push(...entry(`  ${setting.env}`, words));
      continue;
    }
    lines.push(...entry(`  ${flagText(setting)}`, words));
    for (const detail of setting.details ?? []) {
      lines.push(" ".repeat(INDENT + 2) + detail);
    }
  }
  lines.push(...entry("  -h, --help", "show this help"));
  lines.push(...entry("  --version", "print the version"));
  if (envOnly.length > 0) {
    lines.push("", "Environment only:", ...envOnly);
  }
  return lines.join("\n") + "\n";
}

/**
 * The documentation's rows for `table`: flag, environment variable, default and
 * what it does, one array of cell texts per setting.
 *
 * @example
 * ```ts
 * import { markdownRows } from "./usage.ts";
 * import { path } from "./setting.ts";
 * markdownRows({ tokenFile: path({ flag: "token-file", arg: "PATH", help: "tokens" }) });
 * // [["`--token-file PATH`", "`GREETER_TOKEN_FILE`", "", "tokens"]]
 * ```
 */
export function markdownRows(table: SettingTable): string[][] {
  return Object.values(table).map((setting) => [
    setting.flag === undefined ? "" : `\`${flagText(setting)}\``,
    setting.env === undefined ? "" : `\`${setting.env}\``,
    shownDefault(setting) ?? "",
    what(setting, ", "),
  ]);
}
