/** The console's files as the HTTP port serves them: types, policy, tags. */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConsoleFiles,
  CONTENT_SECURITY_POLICY,
} from "../lib/http/console_files.ts";

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
