/**
 * The documentation as the tests read it: the README, `ARCHITECTURE.md` and
 * every page under `docs/`, their tables' cells, fenced blocks, headings and
 * links, so that `tests/docs_test.ts` and the tests of each feature can hold
 * what the pages say to what the program does.
 *
 * @module
 */

import { join, relative } from "node:path";
import { ROOT } from "./process.ts";

/** A page's path from the repository root, e.g. `docs/operations.md`. */
export type PagePath = string;

/** The README, `ARCHITECTURE.md` and every page under `docs/`, in that order. */
export function docPages(): PagePath[] {
  const pages = ["README.md", "ARCHITECTURE.md"];
  const docs = [...Deno.readDirSync(join(ROOT, "docs"))]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`)
    .sort();
  return [...pages, ...docs];
}

/** A page's text. */
export function docText(page: PagePath): string {
  return Deno.readTextFileSync(join(ROOT, page));
}

/**
 * The cells of the first Markdown table after the line `heading` in `page`
 * (the header and separator rows left out).
 */
export function docRows(page: PagePath, heading: string): string[][] {
  const lines = docText(page).split("\n");
  const at = lines.indexOf(heading);
  if (at < 0) throw new Error(`${page} has no line ${heading}`);
  const start = lines.findIndex((l, i) => i > at && l.startsWith("|"));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith("|"));
  return lines.slice(start + 2, end < 0 ? undefined : end).map((line) =>
    line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim())
  );
}

/** A fenced block of a page: its language and its text. */
export interface DocBlock {
  /** Where it is. */
  readonly page: PagePath;
  /** The fence's language (`sh`, `console`, `text`, `ts`…), or "". */
  readonly language: string;
  /** Its text, without the fences. */
  readonly text: string;
}

/** The fenced blocks of `pages` (every page by default), in order. */
export function docBlocks(
  language?: string,
  pages: PagePath[] = docPages(),
): DocBlock[] {
  const blocks: DocBlock[] = [];
  for (const page of pages) {
    for (const match of docText(page).matchAll(/^```(\w*)\n([^]*?)^```$/gm)) {
      if (language === undefined || match[1] === language) {
        blocks.push({ page, language: match[1], text: match[2] });
      }
    }
  }
  return blocks;
}

/** `text` without its fenced blocks (whose `#` lines are no headings). */
function prose(text: string): string {
  return text.replace(/^```[^]*?^```$/gm, "");
}

/** The headings of `page` (`##` and deeper), as `{ level, title }`. */
export function docHeadings(
  page: PagePath,
): { level: number; title: string }[] {
  return [...prose(docText(page)).matchAll(/^(#{1,6}) (.+)$/gm)].map((m) => ({
    level: m[1].length,
    title: m[2],
  }));
}

/**
 * The anchor GitHub gives a heading: lower case, punctuation other than `-`
 * and `_` dropped, spaces as `-`.
 *
 * @example
 * ```ts
 * import { anchorOf } from "./docs.ts";
 * anchorOf("The client's command line"); // "the-clients-command-line"
 * ```
 */
export function anchorOf(title: string): string {
  return title.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(
    /\s/g,
    "-",
  );
}

/** A link of a page: its text and where it points. */
export interface DocLink {
  readonly page: PagePath;
  readonly text: string;
  readonly target: string;
}

/** The Markdown links of `page` outside its fenced blocks. */
export function docLinks(page: PagePath): DocLink[] {
  return [...prose(docText(page)).matchAll(/\[([^\]]+)\]\(([^)\s]+)\)/g)].map(
    (m) => ({ page, text: m[1], target: m[2] }),
  );
}

/** `target` of a link on `page`, as a path from the repository root. */
export function resolveLink(page: PagePath, target: string): PagePath {
  const [path] = target.split("#");
  if (path === "") return page;
  return relative(ROOT, join(ROOT, page, "..", path));
}
