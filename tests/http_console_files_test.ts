/** The console's files as the HTTP port serves them: types, policy, tags. */

import assert from "node:assert/strict";
import { join, relative, resolve, sep } from "node:path";
import {
  CONSOLE_DIR,
  ConsoleFiles,
  CONTENT_SECURITY_POLICY,
} from "../lib/http/console_files.ts";
import { ROOT } from "../testing/process.ts";

Deno.test("ConsoleFiles serves / and /console/NAME with their type, a strict policy on pages, and 304 for a known tag", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "index.html"), "<!doctype html><p>hi");
    await Deno.writeTextFile(join(dir, "console.js"), "export {};");
    await Deno.writeTextFile(join(dir, ".hidden.js"), "secret");
    await Deno.writeTextFile(join(dir, "notes.md"), "# not served");
    await Deno.mkdir(join(dir, "sub"));
    const files = await ConsoleFiles.load(dir);
    assert.equal(files.present, true);
    const get = (path: string, headers: HeadersInit = {}) =>
      files.answer(new Request(`http://h${path}`, { headers }), path);
    const page = get("/")!;
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(
      page.headers.get("content-security-policy"),
      CONTENT_SECURITY_POLICY,
    );
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(await page.text(), "<!doctype html><p>hi");
    const script = get("/console/console.js")!;
    assert.equal(
      script.headers.get("content-type"),
      "text/javascript; charset=utf-8",
    );
    assert.equal(script.headers.get("content-security-policy"), null);
    await script.body?.cancel();
    const again = get("/console/console.js", {
      "if-none-match": script.headers.get("etag")!,
    })!;
    assert.equal(again.status, 304);
    for (
      const path of [
        "/console/.hidden.js",
        "/console/notes.md",
        "/console/sub",
        "/console/../index.html",
        "/console.js",
        "/index.html",
      ]
    ) {
      assert.equal(get(path), undefined, path);
    }
    const head = files.answer(
      new Request("http://h/", { method: "HEAD" }),
      "/",
    )!;
    assert.equal(head.body, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ConsoleFiles without its folder serves nothing", async () => {
  const files = await ConsoleFiles.load("/nonexistent/console");
  assert.equal(files.present, false);
  assert.equal(files.answer(new Request("http://h/"), "/"), undefined);
});

Deno.test("deno task compile includes the console's folder (read at start), and every file the page loads is in it", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const compile: string = config.tasks.compile;
  const included = [...compile.matchAll(/--include[= ](\S+)/g)].map((m) =>
    resolve(ROOT, m[1])
  );
  assert.ok(
    included.some((path) =>
      CONSOLE_DIR === path || CONSOLE_DIR.startsWith(path + sep)
    ),
    `the compile task includes ${relative(ROOT, CONSOLE_DIR)}: ${compile}`,
  );
  const files = await ConsoleFiles.load();
  assert.equal(files.present, true);
  // The page, what it links, and what its scripts import, all served.
  const get = (name: string) =>
    files.answer(new Request(`http://h/console/${name}`), `/console/${name}`);
  const page = await files.answer(new Request("http://h/"), "/")!.text();
  const names = [...page.matchAll(/(?:src|href)="\/?console\/([^"]+)"/g)]
    .map((m) => m[1]);
  assert.ok(names.includes("console.js"), page);
  for (const name of names) {
    const file = get(name);
    assert.equal(file?.status, 200, `the page's ${name} is served`);
    if (!name.endsWith(".js")) continue;
    for (
      const [, imported] of (await file!.text()).matchAll(/from "\.\/([^"]+)"/g)
    ) {
      assert.equal(
        get(imported)?.status,
        200,
        `${name}'s ${imported} is served`,
      );
    }
  }
});
