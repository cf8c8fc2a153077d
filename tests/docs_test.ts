// The README and the pages under docs/ held to the program: their shape
// (a short README, a table of contents on each page), every link and
// anchor, every command line they show (parsed as the program parses it),
// every line of client output they show (against what the renderer
// prints), and the README's one-minute session, run as a person runs it.

import assert from "node:assert/strict";
import { parseClientArgs, parseServeArgs } from "../lib/cli/config.ts";
import {
  renderFollow,
  renderPublished,
  renderStreamInfo,
  renderSubscriber,
} from "../lib/cli/render.ts";
import {
  failure,
  failureLines,
  GRPC_CODES,
  RPC_EXIT_BASE,
  RPC_HINTS,
} from "../lib/cli/failure.ts";
import { ConfigError, RpcError } from "../lib/errors.ts";
import type { FollowMessage } from "../lib/client/follow.ts";
import {
  anchorOf,
  type DocBlock,
  docBlocks,
  docHeadings,
  docLinks,
  docPages,
  docRows,
  docText,
  resolveLink,
} from "../testing/docs.ts";
import { LineProcess, runTask } from "../testing/process.ts";
import { join } from "node:path";
import { ROOT } from "../testing/process.ts";
import { LEAVE_REASONS } from "../lib/bus/hub_items.ts";
import { numberedTokenLines } from "../lib/access/tokens.ts";
import { parseTokenLine } from "../lib/access/permissions.ts";
import { GreeterClient } from "../lib/client/client.ts";
import { Logger } from "../lib/log.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

const README_MAX_LINES = 300;

Deno.test("the README is under 300 lines, and the pages it points to exist", () => {
  const lines = docText("README.md").split("\n").length;
  assert.ok(
    lines < README_MAX_LINES,
    `README.md has ${lines} lines: move what a newcomer does not need to docs/`,
  );
  for (
    const page of [
      "docs/events.md",
      "docs/operations.md",
      "docs/instances.md",
      "docs/troubleshooting.md",
      "docs/library.md",
      "ARCHITECTURE.md",
    ]
  ) {
    assert.ok(
      docLinks("README.md").some((link) =>
        resolveLink("README.md", link.target) === page
      ),
      `README.md does not point to ${page}`,
    );
  }
});

Deno.test("the README and every page under docs/ open with their contents, every section listed in order", () => {
  for (const page of docPages().filter((p) => p !== "ARCHITECTURE.md")) {
    const text = docText(page);
    const contents = text.match(/^## Contents\n\n((?:- .*\n)+)/m);
    assert.ok(contents, `${page} has no "## Contents" list`);
    const listed = [...contents[1].matchAll(/^- \[([^\]]+)\]\(#([^)]+)\)$/gm)]
      .map((m) => ({ title: m[1], anchor: m[2] }));
    const sections = docHeadings(page).filter((h) =>
      h.level === 2 && h.title !== "Contents"
    ).map((h) => h.title);
    assert.deepEqual(listed.map((l) => l.title), sections, page);
    for (const { title, anchor } of listed) {
      assert.equal(anchor, anchorOf(title), `${page}: ${title}`);
    }
  }
});

Deno.test("every link of the documentation reaches a file, and every anchor a heading", () => {
  for (const page of docPages()) {
    for (const link of docLinks(page)) {
      if (/^[a-z]+:/.test(link.target)) continue; // https:, mailto:
      const path = resolveLink(page, link.target);
      let isFile = false;
      try {
        isFile = Deno.statSync(join(ROOT, path)).isFile;
      } catch {
        // isFile stays false.
      }
      assert.ok(isFile, `${page}: [${link.text}](${link.target}): no file`);
      const anchor = link.target.split("#")[1];
      if (anchor === undefined || !path.endsWith(".md")) continue;
      const anchors = docHeadings(path).map((h) => anchorOf(h.title));
      assert.ok(
        anchors.includes(anchor),
        `${page}: [${link.text}](${link.target}): ${path} has no heading #${anchor} (it has ${
          anchors.join(", ")
        })`,
      );
    }
  }
});

/**
 * `line` split into words as a POSIX shell splits it (quotes, backslashes;
 * `$(…)` and `$VAR` kept as written), up to the first unquoted `|`, `&`,
 * `;`, `>`, `<` or comment. Leading `NAME=value` words are the command's
 * environment.
 */
function shellWords(
  line: string,
): { env: Record<string, string>; argv: string[] } {
  const words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  let depth = 0; // inside $( … )
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') word += line[++i];
      else word += c;
      continue;
    }
    if (depth > 0) {
      if (c === ")") depth--;
      if (c === "(") depth++;
      word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\") {
      word = (word ?? "") + line[++i];
    } else if (c === "$" && line[i + 1] === "(") {
      depth = 1;
      word = (word ?? "") + "$(";
      i++;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if ("|&;<>".includes(c) || (c === "#" && word === undefined)) {
      break;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split("=");
    env[name] = value.join("=");
  }
  return { env, argv: words };
}

/** A command line a page shows, with where it is. */
interface ShownCommand {
  readonly block: DocBlock;
  readonly line: string;
}

/** The command lines of the documentation's `sh` and `console` blocks. */
function shownCommands(): ShownCommand[] {
  const commands: ShownCommand[] = [];
  for (const block of [...docBlocks("sh"), ...docBlocks("console")]) {
    const lines = block.text.replace(/\\\n\s*/g, " ").split("\n");
    for (const raw of lines) {
      let line = raw;
      if (block.language === "console") {
        if (!line.startsWith("$ ")) continue;
        line = line.slice(2);
      }
      if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
      commands.push({ block, line });
    }
  }
  return commands;
}

/** `argv` as greeter's command and arguments, if it runs greeter. */
function greeterArgs(
  argv: string[],
): { command: "serve" | "client"; args: string[] } | undefined {
  let rest = argv;
  if (rest[0] === "npx" && rest[1] === "-y" && rest[2] === "deno@2.9.3") {
    rest = ["deno", ...rest.slice(3)];
  }
  if (rest[0] === "deno" && rest[1] === "task") {
    rest = rest.slice(2).filter((w) => w !== "-q" && w !== "--quiet");
  } else if (rest[0] === "./dist/greeter" || rest[0] === "greeter") {
    rest = rest.slice(1);
  } else {
    return undefined;
  }
  const [command, ...args] = rest;
  if (command !== "serve" && command !== "client") return undefined;
  return { command, args };
}

Deno.test("every greeter command line the documentation shows is one the program takes", () => {
  let checked = 0;
  // What `export NAME=value` set earlier in the same block.
  let exported: { block?: DocBlock; env: Record<string, string> } = { env: {} };
  for (const { block, line } of shownCommands()) {
    if (exported.block !== block) exported = { block, env: {} };
    const words = shellWords(line);
    if (words.argv[0] === "export") {
      for (const assignment of words.argv.slice(1)) {
        const [name, ...value] = assignment.split("=");
        exported.env[name] = value.join("=");
      }
      continue;
    }
    const env = { ...exported.env, ...words.env };
    const { argv } = words;
    const greeter = greeterArgs(argv);
    if (!greeter || argv.some((w) => w.includes("…"))) continue;
    const parse = greeter.command === "serve"
      ? parseServeArgs
      : parseClientArgs;
    try {
      parse(greeter.args, env);
    } catch (error) {
      assert.fail(
        `${block.page}: \`${line}\` is refused: ${(error as Error).message}`,
      );
    }
    checked++;
  }
  assert.ok(checked >= 15, `only ${checked} command lines found`);
});

Deno.test("the README runs the program one way: deno task", () => {
  let checked = 0;
  for (const { block, line } of shownCommands()) {
    if (block.page !== "README.md") continue;
    const { argv } = shellWords(line);
    // curl is a tool beside the program (it reads the HTTP port), not a way
    // to run it.
    if (argv[0] === "curl") continue;
    assert.deepEqual(argv.slice(0, 2), ["deno", "task"], line);
    checked++;
  }
  assert.ok(checked >= 7, `only ${checked} README commands`);
});

Deno.test("every task the documentation runs exists in deno.json", async () => {
  const { default: project } = await import("../deno.json", {
    with: { type: "json" },
  });
  const tasks = Object.keys(project.tasks);
  for (const { block, line } of shownCommands()) {
    const { argv } = shellWords(line);
    const at = argv.indexOf("task");
    if (argv[at - 1] !== "deno" && argv[at - 1] !== "deno@2.9.3") continue;
    const task = argv.slice(at + 1).find((w) => !w.startsWith("-"));
    assert.ok(
      task && tasks.includes(task),
      `${block.page}: \`${line}\` runs a task deno.json does not have`,
    );
  }
});

/**
 * What stays of a line of output once what changes from run to run is taken
 * out: cursors, times, quoted strings, numbers.
 */
function shape(line: string): string {
  return line
    .replace(/ not resumed \(.*\)$/, " not resumed (REASON)")
    .replace(/^(reconnecting .*?\(attempt \d+\)): .*$/, "$1: REASON")
    .replace(/ to [\w.:[\]-]+ in /, " to TARGET in ")
    .replace(/\b[0-9a-f]{16}:\d+\b|\bEPOCH:SEQ\b/g, "CURSOR")
    .replace(
      /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g,
      "INSTANT",
    )
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[+-]\d\d:\d\d)?/g, "TIME")
    .replace(/"([a-z_]+)":/g, "$1:") // a JSON object's keys, kept
    .replace(/"(?:[^"\\]|\\.)*"/g, "STRING")
    .replace(/\d+/g, "N");
}

/** Whether `line` has the shape of `shown`, where `…` in `shown` stands for anything. */
function sameShape(shown: string, line: string): boolean {
  const parts = shape(shown).split("…").map((part) =>
    part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  );
  return new RegExp(`^${parts.join(".*")}$`).test(shape(line));
}

/** What the client prints for each kind of subscribe message, as the renderer prints it. */
function renderedSamples(): string[] {
  const cursor = { epoch: "609f41c9091a0682", seq: 5 };
  const payload = new TextEncoder().encode("first");
  const presence = new TextEncoder().encode(
    '{"action":"join","subscription_id":3,"name":"ann","topics":["news"]}',
  );
  const messages: FollowMessage[] = [
    {
      kind: "subscribed",
      subscriptionId: 1,
      cursor,
      recovered: false,
      reason: "",
      heartbeatIntervalMs: 15000,
    },
    {
      kind: "subscribed",
      subscriptionId: 1,
      cursor,
      after: cursor,
      recovered: true,
      reason: "",
      heartbeatIntervalMs: 15000,
    },
    {
      kind: "subscribed",
      subscriptionId: 1,
      cursor,
      after: cursor,
      recovered: false,
      reason: "the server restarted",
      heartbeatIntervalMs: 15000,
    },
    {
      kind: "event",
      cursor,
      topic: "news",
      timeMs: 0,
      payload,
      replayed: false,
    },
    {
      kind: "event",
      cursor,
      topic: "news",
      timeMs: 0,
      payload,
      replayed: true,
    },
    {
      kind: "event",
      cursor,
      topic: "$presence",
      timeMs: 0,
      payload: presence,
      replayed: false,
    },
    { kind: "heartbeat", cursor, timeMs: 0 },
    {
      kind: "gap",
      fromSeq: 2,
      toSeq: 8,
      missed: 7,
      reason: "slow-consumer",
    },
    {
      kind: "goodbye",
      code: 14,
      reason: "The server is shutting down",
      reconnect: true,
      reconnectAfterMs: 2186,
    },
    {
      kind: "reconnecting",
      attempt: 1,
      delayMs: 2186,
      reason: "goodbye: The server is shutting down",
    },
    {
      kind: "reconnecting",
      attempt: 1,
      delayMs: 113,
      reason: "localhost:50051: UNAVAILABLE: No connection established",
      target: "localhost:50052",
    },
  ];
  const lines = messages.flatMap((message) =>
    (["text", "json"] as const).map((format) =>
      renderFollow(message, { format, now: 6 })
    )
  );
  const failed = failure(
    new RpcError(
      "UNAVAILABLE",
      "No connection established. Last error: write EPIPE",
      "localhost:50051",
    ),
    { tls: true },
  );
  lines.push(...failureLines(failed, "json"), ...failureLines(failed, "text"));
  const usage = failure(new ConfigError('Unknown option "--topik"'));
  lines.push(...failureLines(usage, "json"));
  for (const format of ["text", "json"] as const) {
    lines.push(renderPublished(format, "news", cursor));
    lines.push(renderStreamInfo(format, {
      epoch: cursor.epoch,
      store: "memory",
      firstSeq: 1,
      lastSeq: 18,
      events: 18,
      bytes: 2326,
      firstTimeMs: 0,
      lastTimeMs: 0,
    }));
    lines.push(renderSubscriber(format, {
      subscriptionId: 1,
      name: "ann",
      topics: ["news"],
      topicCount: 1,
      sinceMs: 0,
      delivered: 2,
      dropped: 0,
    }));
  }
  return lines;
}

/** The lines of client output the documentation shows, by what they start with. */
const RENDERED =
  /^(\^C)?(subscribed|event|heartbeat|gap|goodbye|reconnecting|subscriber)\b|^(published|stream): |^\{"kind":/;

/**
 * What the client leaves out of grpc-js' errors (`tidyDetails()` in
 * lib/client/client.ts): a doubled "Error: ", the time of the last
 * attempt, an empty resolution note. A page that shows them shows an older
 * client.
 */
const UNTIDY =
  /Last error: Error: | \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\)|Resolution note:/;

Deno.test("every line of subscribe output the documentation shows has the shape the client prints", () => {
  const samples = renderedSamples();
  let checked = 0;
  for (const block of [...docBlocks("console"), ...docBlocks("text")]) {
    for (const line of block.text.split("\n")) {
      if (!RENDERED.test(line) && !line.startsWith("error: ")) continue;
      assert.doesNotMatch(line, UNTIDY, `${block.page}: ${line}`);
      if (!RENDERED.test(line)) continue;
      assert.ok(
        samples.some((sample) => sameShape(line, sample)),
        `${block.page}: this line is not what the client prints:\n${line}\nit prints lines such as:\n${
          samples.join("\n")
        }`,
      );
      checked++;
    }
  }
  // Inline examples, in backquotes: `{"kind":"event",…}`, `gap: …`.
  for (const page of docPages()) {
    const prose = docText(page).replace(/^```[^]*?^```$/gm, "");
    for (const [, code] of prose.matchAll(/`([^`\n]+)`/g)) {
      // `event: gap` is a server-sent event's field (docs/http.md), not a
      // line of the client's (nor is `event:`): one plain word at most.
      if (!RENDERED.test(code) || !/[:=]/.test(code)) continue;
      if (/^\w+:( [\w-]+)?$/.test(code)) continue;
      assert.doesNotMatch(code, UNTIDY, `${page}: ${code}`);
      assert.ok(
        samples.some((sample) => sameShape(code, sample)),
        `${page}: not what the client prints: ${code}`,
      );
      checked++;
    }
  }
  assert.ok(checked >= 15, `only ${checked} lines checked`);
});

/** The console blocks of the README's section `title`, as commands and the lines they print. */
function readmeSession(title: string): { command: string; output: string[] }[] {
  const text = docText("README.md");
  const start = text.indexOf(`## ${title}\n`);
  const end = text.indexOf("\n## ", start + 1);
  const steps: { command: string; output: string[] }[] = [];
  for (
    const [, block] of text.slice(start, end).matchAll(
      /```console\n([^]*?)```/g,
    )
  ) {
    // A block that starts with output goes on with the previous command's.
    if (!block.startsWith("$ ")) steps.push({ command: "", output: [] });
    for (const line of block.trimEnd().split("\n")) {
      if (line.startsWith("$ ")) {
        steps.push({ command: line.slice(2), output: [] });
      } else steps.at(-1)!.output.push(line);
    }
  }
  return steps;
}

/** Spawns a command the README shows, in a process group of its own. */
function spawnShown(command: string, target: string): LineProcess {
  const { env, argv } = shellWords(command);
  assert.equal(argv[0], "deno", command);
  return new LineProcess(argv.slice(1), {
    env: { ...env, GREETER_TARGET: target },
    group: true,
  });
}

function assertShapes(shown: string[], printed: string[], what: string) {
  assert.equal(
    printed.length,
    shown.length,
    `${what} printed:\n${printed.join("\n")}\nthe README shows:\n${
      shown.join("\n")
    }`,
  );
  shown.forEach((line, i) =>
    assert.ok(
      sameShape(line, printed[i]),
      `${what} printed:\n${printed[i]}\nthe README shows:\n${line}`,
    )
  );
}

Deno.test({
  name:
    "the README's one-minute session, run as it is written: serve, subscribe, publish, Ctrl-C, publish, resume, then the stream mode; the server warns of nothing",
  async fn() {
    // The server as "Run it" starts it, on a free port.
    const [serveLine] = docBlocks("sh", ["README.md"])[0].text.split("\n");
    const { argv } = shellWords(serveLine);
    assert.deepEqual(argv, ["deno", "task", "serve"]);
    await using server = new LineProcess(["task", "-q", "serve"], {
      env: { GREETER_PORT: "0" },
      group: true,
    });
    const [, port] = await server.waitForLine(
      "stderr",
      /Starting server on 127\.0\.0\.1:(\d+)/,
    );
    const target = `127.0.0.1:${port}`;
    const [logBlock] = docBlocks("text", ["README.md"]);
    assertShapes(
      logBlock.text.trimEnd().split("\n"),
      server.stderr.slice(0, 1),
      "deno task serve",
    );

    const steps = readmeSession("One minute: publish, subscribe, stop, resume");
    const subscribe = steps.shift()!;
    assert.match(subscribe.command, /--mode subscribe/);
    await using subscriber = spawnShown(subscribe.command, target);
    await subscriber.waitForLine("stdout", /^subscribed:/);
    assertShapes(subscribe.output, subscriber.stdout, subscribe.command);

    // Two publishes, then what the subscriber printed, then Ctrl-C.
    for (const step of steps.splice(0, 2)) {
      await using publisher = spawnShown(step.command, target);
      assert.equal(
        (await publisher.exit()).code,
        0,
        publisher.stderr.join("\n"),
      );
      assertShapes(step.output, publisher.stdout, step.command);
    }
    const received = steps.shift()!;
    assert.equal(received.command, "", "the subscriber's output follows");
    const printedSoFar = received.output.filter((l) => !l.startsWith("^C"));
    await subscriber.waitForLine("stdout", /payload="second"/);
    assertShapes(
      printedSoFar,
      subscriber.stdout.slice(1),
      "the subscriber",
    );
    subscriber.signalGroup("SIGINT");
    assert.equal(
      (await subscriber.exit()).code,
      0,
      subscriber.stderr.join("\n"),
    );
    const last = subscriber.stderr.find((l) => l.startsWith("last cursor: "));
    assert.ok(last, subscriber.stderr.join("\n"));
    const shownLast = received.output.find((l) => l.startsWith("^C"))!;
    assert.ok(sameShape(shownLast.slice(2), last), last);
    const cursor = last.slice("last cursor: ".length);
    // Ctrl-C cancelled the call, and the server says so.
    await server.waitForLine(
      "stderr",
      /client "you" is leaving\. .* reason="client-cancelled"$/,
    );

    // Publish while nobody listens, then resume from the cursor printed.
    for (const step of steps) {
      const shownCursor = step.command.match(/--after (\S+)/)?.[1];
      const command = shownCursor
        ? step.command.replace(shownCursor, cursor)
        : step.command;
      await using process = spawnShown(command, target);
      if (shownCursor) {
        await process.waitForLine("stdout", /payload="third"/);
        process.signalGroup("SIGINT");
      }
      assert.equal((await process.exit()).code, 0, process.stderr.join("\n"));
      assertShapes(step.output, process.stdout, command);
    }

    // "What the client does": the tutorial's stream, --count 2.
    const [stream] = readmeSession("What the client does");
    assert.match(stream.command, /--mode stream --count 2/);
    await using streamer = spawnShown(stream.command, target);
    assert.equal((await streamer.exit()).code, 0, streamer.stderr.join("\n"));
    assertShapes(stream.output, streamer.stdout, stream.command);

    server.signalGroup("SIGINT");
    assert.equal((await server.exit()).code, 0);
    // Nothing a newcomer did not cause: no warning, no error.
    assert.deepEqual(
      server.stderr.filter((line) => / (WARN|ERROR) /.test(line)),
      [],
    );
  },
});

Deno.test("a first run prints no notice about npm build scripts: deno.json decides every package that has some", async () => {
  const { default: project } = await import("../deno.json", {
    with: { type: "json" },
  });
  const lock = JSON.parse(docText("deno.lock"));
  const withScripts = Object.entries(
    lock.npm as Record<string, { scripts?: boolean }>,
  ).filter(([, entry]) => entry.scripts).map(([id]) =>
    `npm:${id.replace(/@[^@]+$/, "")}`
  );
  assert.ok(withScripts.length > 0, "protobufjs has a postinstall script");
  const decided = [
    ...project.allowScripts.deny,
    ...(project.allowScripts as { allow?: string[] }).allow ?? [],
  ];
  for (const name of withScripts) {
    assert.ok(
      decided.includes(name),
      `${name} has npm lifecycle scripts: deny them in deno.json's allowScripts (or allow them, saying why), or a first run says "Ignored build scripts"`,
    );
  }
});

Deno.test("docs/troubleshooting.md's exit statuses and hints are the ones the client gives", () => {
  const rows = docRows(
    "docs/troubleshooting.md",
    "The statuses a failed call exits with:",
  );
  assert.deepEqual(
    rows.map(([exit, status]) => [Number(exit), status.replaceAll("`", "")]),
    Object.entries(GRPC_CODES).filter(([, code]) => code > 0).map((
      [name, code],
    ) => [RPC_EXIT_BASE + code, name]),
  );
  const hints = docRows("docs/troubleshooting.md", "## Errors").map((row) =>
    row[1].replace(/^`|`$/g, "")
  );
  assert.deepEqual(
    [...hints].sort(),
    RPC_HINTS.map((h) => h.hint).filter((hint, i, all) =>
      all.indexOf(hint) === i
    ).sort(),
    "every hint the client gives is in the table, as it gives it",
  );
});

Deno.test("docs/troubleshooting.md names every reason a subscription ends with, and no other", () => {
  const reasons = docRows(
    "docs/troubleshooting.md",
    "## Why a subscription ended",
  ).map(([reason]) => reason.replace(/^`|`$/g, ""));
  assert.deepEqual([...reasons].sort(), [...LEAVE_REASONS].sort());
});

Deno.test("docs/operations.md's token file is one the server reads, granting what its comments and the rules below it say", () => {
  const block = docBlocks("text", ["docs/operations.md"]).find((b) =>
    b.text.startsWith("# ops: everything")
  );
  assert.ok(block, "docs/operations.md shows a token file");
  // The page shortens its tokens ("9c1e…41"); the file holds them whole.
  const lines = numberedTokenLines(block.text.replaceAll("…", "0123456789"));
  const [ops, feed, dashboard] = lines.map(({ text, line }) =>
    parseTokenLine(text, line).permissions
  );
  assert.equal(lines.length, 3);
  assert.equal(ops.all, true);
  assert.equal(feed.mayPublish("news.sport.today"), true);
  assert.equal(feed.mayPublish("weather"), false);
  assert.equal(feed.maySubscribe("news.sport"), false);
  assert.equal(feed.metrics, false);
  // subscribe:news.* covers news.sport but not news.sport.today.
  assert.equal(dashboard.maySubscribe("news.sport"), true);
  assert.equal(dashboard.maySubscribe("news.sport.today"), false);
  assert.equal(dashboard.maySubscribe("$presence"), true);
  assert.equal(dashboard.mayPublish("news.sport"), false);
  assert.equal(dashboard.metrics, true);
});

Deno.test("docs/operations.md's log lines, text and JSON, are the ones the server writes when a client subscribes", async () => {
  const [text, json] = ["2026-11-24T", '{"time":'].map((start) =>
    docBlocks("text", ["docs/operations.md"]).find((b) =>
      b.text.startsWith(start) && b.text.includes("subscribed.")
    )!.text.trimEnd()
  );
  for (const format of ["text", "json"] as const) {
    const lines: string[] = [];
    await using t = await startTestServer({
      intervalMs: 3_600_000,
      heartbeatMs: 3_600_000,
      log: new Logger({ format, write: (line) => lines.push(line) }),
    });
    using client = new GreeterClient(t.target);
    const stream = client.subscribe("you", { topics: ["news", "tick"] });
    await stream.next();
    await waitFor(
      "the subscribed line",
      () => lines.some((l) => l.includes("subscribed.")),
    );
    await stream.return(undefined);
    const line = lines.find((l) => l.includes("subscribed."))!;
    if (format === "text") {
      assert.ok(
        sameShape(text, line),
        `the server writes:\n${line}\ndocs/operations.md shows:\n${text}`,
      );
    } else {
      const shown = JSON.parse(json);
      const written = JSON.parse(line);
      assert.deepEqual(Object.keys(shown), Object.keys(written), line);
      for (const key of ["level", "msg", "name", "subscription", "topics"]) {
        assert.deepEqual(shown[key], written[key], `${key} in ${line}`);
      }
    }
  }
});

/** The paths ARCHITECTURE.md's map names, and the folders whose files it lists. */
function architectureMap(): { paths: string[]; listed: Set<string> } {
  const map = docText("ARCHITECTURE.md").match(
    /^## The map\n\n```text\n([^]*?)^```$/m,
  );
  assert.ok(map, "ARCHITECTURE.md has no map");
  const paths: string[] = [];
  const listed = new Set<string>();
  let folders: string[] = [];
  for (const line of map[1].split("\n")) {
    // A name, indented two spaces a level; a description's continuation
    // lines are indented past every name.
    const entry = line.match(/^( {0,22})(\S+)/);
    if (!entry) continue;
    folders = folders.slice(0, entry[1].length / 2);
    const path = folders.join("") + entry[2];
    if (folders.length > 0) listed.add(folders.join(""));
    if (path.endsWith("/")) folders.push(entry[2]);
    paths.push(path);
  }
  return { paths, listed };
}

Deno.test("ARCHITECTURE.md's map names files that exist, and every module of a folder it lists", () => {
  const { paths, listed } = architectureMap();
  assert.ok(paths.length > 80, `only ${paths.length} paths in the map`);
  for (const path of paths) {
    let exists = false;
    try {
      Deno.statSync(join(ROOT, path));
      exists = true;
    } catch {
      // exists stays false.
    }
    assert.ok(exists, `ARCHITECTURE.md's map names ${path}, which is gone`);
  }
  for (const folder of listed) {
    if (!folder.startsWith("lib/")) continue;
    for (const entry of Deno.readDirSync(join(ROOT, folder))) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      assert.ok(
        paths.includes(folder + entry.name),
        `ARCHITECTURE.md's map lists ${folder} but not ${entry.name}: add a line saying what it is`,
      );
    }
  }
});

const OPENSSL = ["/usr/bin/openssl", "/bin/openssl"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name:
    "docs/operations.md's local CA recipe, run as written: its server takes its certificates and requires the client's, its client is answered",
  ignore: OPENSSL === undefined,
  async fn() {
    const block = docBlocks("sh", ["docs/operations.md"]).find((b) =>
      b.text.includes("openssl req -x509")
    );
    assert.ok(block, "docs/operations.md shows how to make a local CA");
    const lines = block.text.trimEnd().split("\n");
    const recipe = lines.filter((l) => !l.startsWith("deno task"));
    const [serveLine, clientLine] = lines.filter((l) =>
      l.startsWith("deno task")
    );
    const dir = await Deno.makeTempDir();
    try {
      const made = await new Deno.Command("bash", {
        args: ["-e", "-c", recipe.join("\n")],
        cwd: dir,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
      // The server as shown, on a free port, started where the files are.
      const serve = shellWords(serveLine).argv.slice(2);
      assert.equal(serve[0], "serve");
      await using server = new LineProcess([
        "task",
        "-q",
        "--config",
        join(ROOT, "deno.json"),
        ...serve,
        "--port",
        "0",
      ], { cwd: dir, group: true });
      const [, port] = await server.waitForLine(
        "stderr",
        /Starting server on 127\.0\.0\.1:(\d+)/,
      );
      // The client as shown, at that port; --mode hello to be short.
      const client = shellWords(clientLine).argv.slice(3).map((word) =>
        word.replace(/:50051$/, `:${port}`)
      );
      const answered = await runTask("client", [...client, "--mode", "hello"], {
        cwd: dir,
      });
      assert.equal(answered.code, 0, answered.stderr);
      assert.equal(answered.stdout, "Greeter client received: Hello, you!\n");
      // Without its certificate the server refuses it, with the hint.
      const anonymous = client.filter((w, i) =>
        !["--tls-cert", "--tls-key"].includes(w) &&
        !["--tls-cert", "--tls-key"].includes(client[i - 1])
      );
      const refused = await runTask(
        "client",
        [...anonymous, "--mode", "hello"],
        {
          cwd: dir,
        },
      );
      assert.equal(refused.code, 64 + 14, refused.stderr);
      assert.match(
        refused.stderr,
        /^hint: the server likely wants a client certificate/m,
      );
      server.signalGroup("SIGINT");
      assert.equal((await server.exit()).code, 0, server.stderr.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
