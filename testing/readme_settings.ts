/**
 * Rewrites the settings tables of README.md from the settings table
 * (`lib/cli/settings.ts`), which `tests/config_test.ts` holds them to:
 * `deno run --allow-read --allow-write testing/readme_settings.ts`, then
 * `deno fmt README.md`.
 *
 * @module
 */

import { join } from "node:path";
import { CLIENT_SETTINGS, SERVE_SETTINGS } from "../lib/cli/settings.ts";
import { markdownRows } from "../lib/cli/usage.ts";
import type { SettingTable } from "../lib/cli/setting.ts";
import { ROOT } from "./process.ts";

/** README.md with the table after `heading` rebuilt from `table`. */
export function withTable(
  readme: string,
  heading: string,
  table: SettingTable,
): string {
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README.md has no heading ${heading}`);
  const lines = readme.slice(at).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith("|"));
  const rows = markdownRows(table).map((row) => `| ${row.join(" | ")} |`);
  lines.splice(start + 2, end - start - 2, ...rows);
  return readme.slice(0, at) + lines.join("\n");
}

if (import.meta.main) {
  const path = join(ROOT, "README.md");
  let readme = Deno.readTextFileSync(path);
  readme = withTable(readme, "### `greeter serve`", SERVE_SETTINGS);
  readme = withTable(readme, "### `greeter client`", CLIENT_SETTINGS);
  Deno.writeTextFileSync(path, readme);
}
