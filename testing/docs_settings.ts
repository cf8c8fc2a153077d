/**
 * Rewrites the settings tables of the documentation from the settings table
 * (`lib/cli/settings.ts`), which `tests/config_test.ts` holds them to:
 * `deno run --allow-read --allow-write testing/docs_settings.ts`, then
 * `deno fmt docs/`.
 *
 * @module
 */

import { join } from "node:path";
import { CLIENT_SETTINGS, SERVE_SETTINGS } from "../lib/cli/settings.ts";
import { markdownRows } from "../lib/cli/usage.ts";
import type { SettingTable } from "../lib/cli/setting.ts";
import { ROOT } from "./process.ts";

/** Where each settings table is shown: the page, the heading above it, the table. */
export const SETTINGS_TABLES: readonly {
  page: string;
  heading: string;
  table: SettingTable;
}[] = [
  {
    page: "docs/operations.md",
    heading: "### `deno task serve`",
    table: SERVE_SETTINGS,
  },
  {
    page: "docs/events.md",
    heading: "### `deno task client`",
    table: CLIENT_SETTINGS,
  },
];

/** `text` with the table after the line `heading` rebuilt from `table`. */
export function withTable(
  text: string,
  heading: string,
  table: SettingTable,
): string {
  const lines = text.split("\n");
  const at = lines.indexOf(heading);
  if (at < 0) throw new Error(`No heading ${heading}`);
  const start = lines.findIndex((l, i) => i > at && l.startsWith("|"));
  let end = lines.findIndex((l, i) => i > start && !l.startsWith("|"));
  if (end < 0) end = lines.length;
  const rows = markdownRows(table).map((row) => `| ${row.join(" | ")} |`);
  lines.splice(start + 2, end - start - 2, ...rows);
  return lines.join("\n");
}

if (import.meta.main) {
  for (const { page, heading, table } of SETTINGS_TABLES) {
    const path = join(ROOT, page);
    Deno.writeTextFileSync(
      path,
      withTable(Deno.readTextFileSync(path), heading, table),
    );
  }
}
